package lifecycle

import (
	"slices"
	"testing"
	"time"

	"github.com/glenv/glenv/internal/gitsha"
)

// apply is the store's side of the contract, enough to replay deliveries.
func apply(envs map[string]Env, acts []Action) {
	for _, a := range acts {
		e, exists := envs[a.Env]
		switch a.Type {
		case ActionIgnore:
			if !exists || len(a.SeenSHAs) == 0 {
				continue
			}
		case ActionCreate:
			e = Env{Name: a.Env, Kind: a.Kind, Ref: a.Ref, Parent: a.Parent, MRIID: a.MRIID, State: StateInactive, SeenSHAs: e.SeenSHAs}
			if a.Activate {
				e.State = StateActive
			}
			e.HeadSHA = a.SHA
		case ActionDeploy, ActionUpdateHead:
			e.HeadSHA = a.SHA
		case ActionDelete:
			e.State = StateDeleted
		}
		if !a.MRUpdatedAt.IsZero() {
			e.MRUpdatedAt = a.MRUpdatedAt
		}
		for _, s := range a.SeenSHAs {
			if !slices.Contains(e.SeenSHAs, s) {
				e.SeenSHAs = append(e.SeenSHAs, s)
			}
		}
		envs[a.Env] = e
	}
}

func TestDecideOrdering(t *testing.T) {
	runDecide(t, []decideTest{
		{
			name: "a push whose commit was already applied is stale",
			ev:   push("feature/x", shaA, shaB), envs: envs(branchEnv("feature/x", StateActive, shaC, shaA, shaB, shaC)),
			want:       Action{Type: ActionIgnore, Env: "feature/x", Kind: KindBranch, Ref: "feature/x"},
			wantReason: "stale, the environment has moved on to cccccccc",
		},
		{
			name: "a push of the current head again deploys nothing",
			ev:   push("feature/x", shaA, shaB), envs: envs(branchEnv("feature/x", StateActive, shaB, shaA, shaB)),
			want:       Action{Type: ActionIgnore, Env: "feature/x", Kind: KindBranch, Ref: "feature/x"},
			wantReason: "already at this head", // both SHAs seen: nothing to learn
		},
		{
			name: "a force-push back to an older commit deploys it (its before is the head)",
			ev:   push("feature/x", shaC, shaA), envs: envs(branchEnv("feature/x", StateActive, shaC, shaA, shaB, shaC)),
			want: Action{Type: ActionDeploy, Env: "feature/x", Kind: KindBranch, Ref: "feature/x", Parent: "main", SHA: shaA, SeenSHAs: []string{shaC, shaA}},
		},
		{
			name: "a push after missed events deploys (none of its commits were seen)",
			ev:   push("feature/x", shaC, shaD), envs: envs(branchEnv("feature/x", StateActive, shaA, shaA)),
			want: Action{Type: ActionDeploy, Env: "feature/x", Kind: KindBranch, Ref: "feature/x", Parent: "main", SHA: shaD, SeenSHAs: []string{shaC, shaD}},
		},
		{
			name: "a late branch create on a live environment is stale",
			ev:   push("feature/x", zeroSHA, shaA), envs: envs(branchEnv("feature/x", StateActive, shaC, shaB, shaC)),
			want:       Action{Type: ActionIgnore, Env: "feature/x", Kind: KindBranch, Ref: "feature/x", SeenSHAs: []string{shaA}},
			wantReason: "stale, the environment already exists",
		},
		{
			name: "a late branch create whose commit the deleted environment saw is ignored",
			ev:   push("feature/x", zeroSHA, shaA), envs: envs(branchEnv("feature/x", StateDeleted, shaA, shaA)),
			want:       Action{Type: ActionIgnore, Env: "feature/x", Kind: KindBranch, Ref: "feature/x"},
			wantReason: "stale, its commit was already applied to the deleted environment",
		},
		{
			name: "a branch recreated at a new commit gets its environment back",
			ev:   push("feature/x", zeroSHA, shaC), envs: envs(branchEnv("feature/x", StateDeleted, shaA, shaA)),
			want: Action{Type: ActionCreate, Env: "feature/x", Kind: KindBranch, Ref: "feature/x", Parent: "main", SHA: shaC, SeenSHAs: []string{shaC}},
		},
		{
			name: "a late branch deletion after the branch was recreated is ignored",
			ev:   push("feature/x", shaA, zeroSHA), envs: envs(branchEnv("feature/x", StateActive, shaC, shaA, shaC)),
			want:       Action{Type: ActionIgnore, Env: "feature/x", Kind: KindBranch, Ref: "feature/x"},
			wantReason: "stale",
		},
		{
			name: "a late tag deletion after the tag was recreated is ignored",
			ev:   tagPush("v1", shaA, zeroSHA), envs: envs(tagEnv(StateActive, shaC, shaA, shaC)),
			want: Action{Type: ActionIgnore, Env: "tag-v1", Kind: KindTag, Ref: "v1"}, wantReason: "stale",
		},
		{
			name: "an MR event older than the last one applied is ignored",
			ev:   mrEvent("update", func(m *MergeRequest) { m.UpdatedAt = t1; m.HeadSHA = shaA }), envs: envs(mrEnv(StateActive, shaB, t2)),
			want:       Action{Type: ActionIgnore, Env: "mr-5", Kind: KindMR, Ref: "feature/x", MRIID: 5},
			wantReason: "stale, updated at 2025-01-01T10:00:00Z, before the last event applied (2025-01-01T10:01:00Z)",
		},
		{
			name: "a late open never revives an environment deleted by a later close",
			ev:   mrEvent("open", func(m *MergeRequest) { m.UpdatedAt = t1 }), envs: envs(mrEnv(StateDeleted, shaB, t2)),
			want: Action{Type: ActionIgnore, Env: "mr-5", Kind: KindMR, Ref: "feature/x", MRIID: 5}, wantReason: "stale",
		},
		{
			name: "a late close never deletes an environment reopened later",
			ev:   mrEvent("close", func(m *MergeRequest) { m.UpdatedAt = t2 }), envs: envs(mrEnv(StateActive, shaB, t3)),
			want: Action{Type: ActionIgnore, Env: "mr-5", Kind: KindMR, Ref: "feature/x", MRIID: 5}, wantReason: "stale",
		},
		{
			name: "an MR event without a readable updated_at still deploys nothing twice",
			ev:   mrEvent("update", func(m *MergeRequest) { m.UpdatedAt = time.Time{} }),
			envs: envs(mrEnv(StateActive, shaB, t2)),
			want: Action{Type: ActionIgnore, Env: "mr-5", Kind: KindMR, Ref: "feature/x", MRIID: 5}, wantReason: "already at this head",
		},
	})
}

// Replays deliveries through Decide and apply, as the webhook worker would.
func TestDeliveryOrders(t *testing.T) {
	opt := baseOptions()
	tests := []struct {
		name       string
		start      map[string]Env
		deliveries []Event
		env        string
		wantHead   string
		wantState  string
		wantDeploy int // deploy actions plus creates that activate
	}{
		{
			name:       "the same push delivered twice deploys once",
			start:      envs(branchEnv("feature/x", StateActive, shaA, shaA)),
			deliveries: []Event{push("feature/x", shaA, shaB), push("feature/x", shaA, shaB)},
			env:        "feature/x", wantHead: shaB, wantState: StateActive, wantDeploy: 1,
		},
		{
			name:  "pushes delivered newest first end at the newest head",
			start: envs(),
			deliveries: []Event{push("feature/x", shaC, shaD), push("feature/x", shaB, shaC), push("feature/x", shaA, shaB),
				push("feature/x", zeroSHA, shaA)},
			env: "feature/x", wantHead: shaD, wantState: StateInactive,
		},
		{
			name:       "a create delivered after the first push does not move the environment back",
			start:      envs(),
			deliveries: []Event{push("main", shaA, shaB), push("main", zeroSHA, shaA)},
			env:        "main", wantHead: shaB, wantState: StateActive, wantDeploy: 1,
		},
		{
			name:       "a branch deleted and recreated, delivered out of order, keeps the recreated branch",
			start:      envs(),
			deliveries: []Event{push("feature/x", zeroSHA, shaA), push("feature/x", zeroSHA, shaC), push("feature/x", shaA, zeroSHA)},
			env:        "feature/x", wantHead: shaA, wantState: StateDeleted,
			// The recreate arrived before the delete it follows: it is taken as a
			// late create, and the delete then applies; reconcile restores it.
		},
		{
			name:       "the same MR open delivered twice deploys once",
			start:      envs(),
			deliveries: []Event{mrEvent("open"), mrEvent("open")},
			env:        "mr-5", wantHead: shaB, wantState: StateActive, wantDeploy: 1,
		},
		{
			name:  "MR open, close, reopen delivered in reverse leave the environment live",
			start: envs(),
			deliveries: []Event{
				mrEvent("reopen", func(m *MergeRequest) { m.UpdatedAt = t3 }),
				mrEvent("close", func(m *MergeRequest) { m.UpdatedAt = t2 }),
				mrEvent("open", func(m *MergeRequest) { m.UpdatedAt = t1 }),
			},
			env: "mr-5", wantHead: shaB, wantState: StateActive, wantDeploy: 1,
		},
		{
			name:  "MR open, reopen delivered before the close in between still end live",
			start: envs(),
			deliveries: []Event{
				mrEvent("open", func(m *MergeRequest) { m.UpdatedAt = t1 }),
				mrEvent("reopen", func(m *MergeRequest) { m.UpdatedAt = t3 }),
				mrEvent("close", func(m *MergeRequest) { m.UpdatedAt = t2 }),
			},
			env: "mr-5", wantHead: shaB, wantState: StateActive, wantDeploy: 1,
		},
		{
			name:  "MR commits delivered out of order end at the newest head",
			start: envs(),
			deliveries: []Event{
				mrEvent("open", func(m *MergeRequest) { m.UpdatedAt, m.HeadSHA = t1, shaA }),
				mrEvent("update", func(m *MergeRequest) { m.UpdatedAt, m.HeadSHA, m.OldRev = t3, shaC, shaB }),
				mrEvent("update", func(m *MergeRequest) { m.UpdatedAt, m.HeadSHA, m.OldRev = t2, shaB, shaA }),
			},
			env: "mr-5", wantHead: shaC, wantState: StateActive, wantDeploy: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			state := tt.start
			deploys := 0
			for _, ev := range tt.deliveries {
				acts := Decide(ev, opt, state)
				for _, a := range acts {
					if a.Type == ActionDeploy || (a.Type == ActionCreate && a.Activate) {
						deploys++
					}
				}
				apply(state, acts)
			}
			e := state[tt.env]
			if e.HeadSHA != tt.wantHead || e.State != tt.wantState || deploys != tt.wantDeploy {
				t.Errorf("got head %s, state %s, %d deploys; want %s, %s, %d", gitsha.Short(e.HeadSHA), e.State, deploys,
					gitsha.Short(tt.wantHead), tt.wantState, tt.wantDeploy)
			}
		})
	}
}
