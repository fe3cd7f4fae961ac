package lifecycle

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

const (
	shaA    = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	shaB    = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	shaC    = "cccccccccccccccccccccccccccccccccccccccc"
	shaD    = "dddddddddddddddddddddddddddddddddddddddd"
	proj    = 7
	fork    = 99
	zeroSHA = "0000000000000000000000000000000000000000"
)

var (
	t1 = time.Date(2025, 1, 1, 10, 0, 0, 0, time.UTC)
	t2 = t1.Add(time.Minute)
	t3 = t2.Add(time.Minute)
)

// baseOptions turns everything on but drafts and forks, as most rows need.
func baseOptions() Options {
	return Options{DefaultBranch: "main", ProjectID: proj, FetchBranches: true, PruneBranches: true,
		BuildMergeRequests: true, MergeRequestsCloneParentData: true, BuildTags: "v*"}
}

func push(ref, before, after string) Event {
	return Event{Kind: KindPush, ObjectKind: "push", ProjectID: proj, Ref: ref, Before: before, After: after}
}

func tagPush(tag, before, after string) Event {
	return Event{Kind: KindTagPush, ObjectKind: "tag_push", ProjectID: proj, Ref: tag, Before: before, After: after}
}

func mrEvent(action string, mod ...func(*MergeRequest)) Event {
	mr := MergeRequest{IID: 5, Action: action, State: "opened", SourceBranch: "feature/x", TargetBranch: "main",
		SourceProjectID: proj, TargetProjectID: proj, HeadSHA: shaB, UpdatedAt: t2}
	switch action {
	case "close":
		mr.State = "closed"
	case "merge":
		mr.State = "merged"
	}
	for _, m := range mod {
		m(&mr)
	}
	return Event{Kind: KindMergeRequest, ObjectKind: "merge_request", ProjectID: proj, Ref: mr.SourceBranch, MR: &mr}
}

func branchEnv(name, state, head string, seen ...string) Env {
	parent := "main"
	if name == "main" {
		parent = ""
	}
	return Env{Name: name, Kind: KindBranch, Ref: name, Parent: parent, HeadSHA: head, State: state, SeenSHAs: seen}
}

func mrEnv(state, head string, mark time.Time) Env {
	return Env{Name: "mr-5", Kind: KindMR, Ref: "feature/x", Parent: "main", HeadSHA: head, State: state,
		MRIID: 5, MRUpdatedAt: mark, SeenSHAs: []string{head}}
}

func tagEnv(state, head string, seen ...string) Env {
	return Env{Name: "tag-v1", Kind: KindTag, Ref: "v1", Parent: "main", HeadSHA: head, State: state, SeenSHAs: seen}
}

func envs(list ...Env) map[string]Env {
	m := map[string]Env{}
	for _, e := range list {
		m[e.Name] = e
	}
	return m
}

type decideTest struct {
	name       string
	ev         Event
	opt        func(*Options)
	envs       map[string]Env
	want       Action // Reason is checked with wantReason instead
	wantReason string
}

func runDecide(t *testing.T, tests []decideTest) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opt := baseOptions()
			if tt.opt != nil {
				tt.opt(&opt)
			}
			got := Decide(tt.ev, opt, tt.envs)
			if len(got) != 1 {
				t.Fatalf("Decide returned %d actions, want 1: %+v", len(got), got)
			}
			a := got[0]
			if a.Reason == "" || !strings.Contains(a.Reason, tt.wantReason) {
				t.Errorf("Reason = %q, want it to contain %q", a.Reason, tt.wantReason)
			}
			a.Reason = ""
			if !reflect.DeepEqual(a, tt.want) {
				t.Errorf("Decide =\n%+v\nwant\n%+v", a, tt.want)
			}
		})
	}
}

func TestDecideBranches(t *testing.T) {
	main := branchEnv("main", StateActive, shaA, shaA)
	runDecide(t, []decideTest{
		{
			name: "push creating a branch creates an inactive environment below the default branch",
			ev:   push("feature/x", zeroSHA, shaA), envs: envs(main),
			want:       Action{Type: ActionCreate, Env: "feature/x", Kind: KindBranch, Ref: "feature/x", Parent: "main", SHA: shaA, SeenSHAs: []string{shaA}},
			wantReason: "branch feature/x created (aaaaaaaa): environment created inactive (parent main)",
		},
		{
			name: "push creating the default branch creates its environment active with no parent",
			ev:   push("main", zeroSHA, shaA), envs: envs(),
			want:       Action{Type: ActionCreate, Env: "main", Kind: KindBranch, Ref: "main", SHA: shaA, Activate: true, SeenSHAs: []string{shaA}},
			wantReason: "created active (default branch)",
		},
		{
			name: "push creating a branch without fetch-branches is ignored",
			ev:   push("feature/x", zeroSHA, shaA), envs: envs(main), opt: func(o *Options) { o.FetchBranches = false },
			want:       Action{Type: ActionIgnore, Env: "feature/x", Kind: KindBranch, Ref: "feature/x"},
			wantReason: "fetch-branches is off",
		},
		{
			name: "push to a branch with an active environment deploys the new head",
			ev:   push("feature/x", shaA, shaB), envs: envs(branchEnv("feature/x", StateActive, shaA, shaA)),
			want:       Action{Type: ActionDeploy, Env: "feature/x", Kind: KindBranch, Ref: "feature/x", Parent: "main", SHA: shaB, SeenSHAs: []string{shaA, shaB}},
			wantReason: "deploying the new head",
		},
		{
			name: "push to a branch with a failed environment deploys the new head",
			ev:   push("feature/x", shaA, shaB), envs: envs(branchEnv("feature/x", StateFailed, shaA, shaA)),
			want: Action{Type: ActionDeploy, Env: "feature/x", Kind: KindBranch, Ref: "feature/x", Parent: "main", SHA: shaB, SeenSHAs: []string{shaA, shaB}},
		},
		{
			name: "push to a branch with a building environment deploys the new head, superseding the build",
			ev:   push("feature/x", shaA, shaB), envs: envs(branchEnv("feature/x", StateBuilding, shaA, shaA)),
			want: Action{Type: ActionDeploy, Env: "feature/x", Kind: KindBranch, Ref: "feature/x", Parent: "main", SHA: shaB, SeenSHAs: []string{shaA, shaB}},
		},
		{
			name: "push to a branch with a paused environment deploys the new head",
			ev:   push("feature/x", shaA, shaB), envs: envs(branchEnv("feature/x", StatePaused, shaA, shaA)),
			want: Action{Type: ActionDeploy, Env: "feature/x", Kind: KindBranch, Ref: "feature/x", Parent: "main", SHA: shaB, SeenSHAs: []string{shaA, shaB}},
		},
		{
			name: "push to a branch with an inactive environment records the head without deploying",
			ev:   push("feature/x", shaA, shaB), envs: envs(branchEnv("feature/x", StateInactive, shaA, shaA)),
			want:       Action{Type: ActionUpdateHead, Env: "feature/x", Kind: KindBranch, Ref: "feature/x", Parent: "main", SHA: shaB, SeenSHAs: []string{shaA, shaB}},
			wantReason: "environment inactive, head recorded without deploying",
		},
		{
			name: "push to a branch with a stopping environment records the head without deploying",
			ev:   push("feature/x", shaA, shaB), envs: envs(branchEnv("feature/x", StateStopping, shaA, shaA)),
			want: Action{Type: ActionUpdateHead, Env: "feature/x", Kind: KindBranch, Ref: "feature/x", Parent: "main", SHA: shaB, SeenSHAs: []string{shaA, shaB}},
		},
		{
			name: "push to a branch with no environment creates it inactive (missed events heal)",
			ev:   push("feature/x", shaA, shaB), envs: envs(main),
			want:       Action{Type: ActionCreate, Env: "feature/x", Kind: KindBranch, Ref: "feature/x", Parent: "main", SHA: shaB, SeenSHAs: []string{shaA, shaB}},
			wantReason: "with no environment (missed events heal): environment created inactive (parent main)",
		},
		{
			name: "push to the default branch with no environment creates it active",
			ev:   push("main", shaA, shaB), envs: envs(),
			want: Action{Type: ActionCreate, Env: "main", Kind: KindBranch, Ref: "main", SHA: shaB, Activate: true, SeenSHAs: []string{shaA, shaB}},
		},
		{
			name: "push to a branch with no environment and fetch-branches off is ignored",
			ev:   push("feature/x", shaA, shaB), envs: envs(main), opt: func(o *Options) { o.FetchBranches = false },
			want: Action{Type: ActionIgnore, Env: "feature/x", Kind: KindBranch, Ref: "feature/x"},
		},
		{
			name: "push to a branch whose environment exists deploys even with fetch-branches off",
			ev:   push("main", shaA, shaB), envs: envs(main), opt: func(o *Options) { o.FetchBranches = false },
			want: Action{Type: ActionDeploy, Env: "main", Kind: KindBranch, Ref: "main", SHA: shaB, SeenSHAs: []string{shaA, shaB}},
		},
		{
			name: "push deleting a branch removes its environment",
			ev:   push("feature/x", shaB, zeroSHA), envs: envs(branchEnv("feature/x", StateActive, shaB, shaA, shaB)),
			want:       Action{Type: ActionDelete, Env: "feature/x", Kind: KindBranch, Ref: "feature/x", SeenSHAs: []string{shaB}},
			wantReason: "branch feature/x deleted: environment deleted",
		},
		{
			name: "push deleting a branch without prune-branches keeps its environment",
			ev:   push("feature/x", shaB, zeroSHA), envs: envs(branchEnv("feature/x", StateActive, shaB, shaB)),
			opt:        func(o *Options) { o.PruneBranches = false },
			want:       Action{Type: ActionIgnore, Env: "feature/x", Kind: KindBranch, Ref: "feature/x"},
			wantReason: "prune-branches is off",
		},
		{
			name: "push deleting the default branch never removes its environment",
			ev:   push("main", shaA, zeroSHA), envs: envs(main),
			want:       Action{Type: ActionIgnore, Env: "main", Kind: KindBranch, Ref: "main"},
			wantReason: "never deleted",
		},
		{
			name: "push deleting a branch with no environment is ignored",
			ev:   push("feature/x", shaB, zeroSHA), envs: envs(main),
			want: Action{Type: ActionIgnore, Env: "feature/x", Kind: KindBranch, Ref: "feature/x"},
		},
		{
			name: "push to a branch named like a merge request environment leaves that environment alone",
			ev:   push("mr-5", shaA, shaB), envs: envs(mrEnv(StateActive, shaA, t1)),
			want:       Action{Type: ActionIgnore, Env: "mr-5", Kind: KindBranch, Ref: "mr-5"},
			wantReason: "taken by a merge request environment",
		},
	})
}

func TestDecideMergeRequests(t *testing.T) {
	draft := func(m *MergeRequest) { m.Draft = true }
	created := Action{Type: ActionCreate, Env: "mr-5", Kind: KindMR, Ref: "feature/x", Parent: "main", SHA: shaB,
		Activate: true, CloneParentData: true, MRIID: 5, MRUpdatedAt: t2, SeenSHAs: []string{shaB}}
	ignored := Action{Type: ActionIgnore, Env: "mr-5", Kind: KindMR, Ref: "feature/x", MRIID: 5}
	deployed := Action{Type: ActionDeploy, Env: "mr-5", Kind: KindMR, Ref: "feature/x", Parent: "main", SHA: shaB,
		MRIID: 5, MRUpdatedAt: t2, SeenSHAs: []string{shaB}}
	deleted := Action{Type: ActionDelete, Env: "mr-5", Kind: KindMR, Ref: "feature/x", Parent: "main", MRIID: 5, MRUpdatedAt: t2}
	with := func(a Action, f func(*Action)) Action { f(&a); return a }

	runDecide(t, []decideTest{
		{
			name: "MR open creates an activated environment with the parent's data, deploying the MR head",
			ev:   mrEvent("open"), envs: envs(),
			want: created, wantReason: "merge request !5 opened: environment created active at bbbbbbbb (parent main, data cloned from the parent)",
		},
		{
			name: "MR open without merge-requests-clone-parent-data starts with empty data",
			ev:   mrEvent("open"), envs: envs(), opt: func(o *Options) { o.MergeRequestsCloneParentData = false },
			want: with(created, func(a *Action) { a.CloneParentData = false }), wantReason: "empty data",
		},
		{
			name: "MR reopen recreates the environment its close deleted",
			ev:   mrEvent("reopen", func(m *MergeRequest) { m.UpdatedAt = t3 }), envs: envs(mrEnv(StateDeleted, shaA, t2)),
			want: with(created, func(a *Action) { a.MRUpdatedAt = t3 }), wantReason: "reopened",
		},
		{
			name: "MR open without build-merge-requests is ignored",
			ev:   mrEvent("open"), envs: envs(), opt: func(o *Options) { o.BuildMergeRequests = false },
			want: ignored, wantReason: "build-merge-requests is off",
		},
		{
			name: "draft MR open is ignored without build-draft-merge-requests",
			ev:   mrEvent("open", draft), envs: envs(),
			want: ignored, wantReason: "draft, and build-draft-merge-requests is off",
		},
		{
			name: "draft MR open with build-draft-merge-requests creates the environment",
			ev:   mrEvent("open", draft), envs: envs(), opt: func(o *Options) { o.BuildDraftMergeRequests = true },
			want: created,
		},
		{
			name: "MR open from a fork is ignored without build-forks",
			ev:   mrEvent("open", func(m *MergeRequest) { m.SourceProjectID = fork }), envs: envs(),
			want: ignored, wantReason: "from a fork (project 99), and build-forks is off",
		},
		{
			name: "MR open from a fork with build-forks creates the environment, marked a fork's",
			ev:   mrEvent("open", func(m *MergeRequest) { m.SourceProjectID = fork }), envs: envs(), opt: func(o *Options) { o.BuildForks = true },
			want: with(created, func(a *Action) { a.Fork = true }),
		},
		{
			name: "MR whose source and target project is not the integration's counts as a fork",
			ev:   mrEvent("open", func(m *MergeRequest) { m.SourceProjectID, m.TargetProjectID = fork, fork }), envs: envs(),
			want: ignored, wantReason: "from a fork",
		},
		{
			name: "MR open with an environment deploys the head when it changed",
			ev:   mrEvent("open"), envs: envs(mrEnv(StateActive, shaA, t1)),
			want: deployed, wantReason: "deploying the new head bbbbbbbb",
		},
		{
			name: "MR open with an environment at the same head does nothing",
			ev:   mrEvent("open"), envs: envs(mrEnv(StateActive, shaB, t2)),
			want: ignored, wantReason: "already at this head",
		},
		{
			name: "MR marked ready creates the environment",
			ev:   mrEvent("update", func(m *MergeRequest) { m.WasDraft = true }), envs: envs(),
			want: created, wantReason: "merge request !5 marked ready: environment created",
		},
		{
			name: "MR turned draft again keeps its environment (ready → draft is not a close)",
			ev:   mrEvent("update", func(m *MergeRequest) { m.Draft = true; m.UpdatedAt = t3 }), envs: envs(mrEnv(StateActive, shaB, t2)),
			want: Action{Type: ActionUpdateHead, Env: "mr-5", Kind: KindMR, Ref: "feature/x", Parent: "main", SHA: shaB,
				MRIID: 5, MRUpdatedAt: t3, SeenSHAs: []string{shaB}},
			wantReason: "ordering mark advanced",
		},
		{
			name: "draft MR with an environment still deploys new commits",
			ev:   mrEvent("update", draft, func(m *MergeRequest) { m.OldRev = shaA }), envs: envs(mrEnv(StateActive, shaA, t1)),
			want: deployed,
		},
		{
			name: "MR update with new commits deploys the new head",
			ev:   mrEvent("update", func(m *MergeRequest) { m.OldRev = shaA }), envs: envs(mrEnv(StateActive, shaA, t1)),
			want: deployed, wantReason: "merge request !5 updated: deploying the new head",
		},
		{
			name: "MR update with new commits on an inactive environment records the head without deploying",
			ev:   mrEvent("update", func(m *MergeRequest) { m.OldRev = shaA }), envs: envs(mrEnv(StateInactive, shaA, t1)),
			want: with(deployed, func(a *Action) { a.Type = ActionUpdateHead }), wantReason: "recorded without deploying",
		},
		{
			name: "MR update with no environment creates it (missed events heal)",
			ev:   mrEvent("update", func(m *MergeRequest) { m.OldRev = shaA }), envs: envs(),
			want: created, wantReason: "with no environment (missed events heal)",
		},
		{
			name: "draft MR update with no environment is ignored",
			ev:   mrEvent("update", draft, func(m *MergeRequest) { m.OldRev = shaA }), envs: envs(),
			want: ignored, wantReason: "draft",
		},
		{
			name: "MR update of a closed merge request is ignored",
			ev:   mrEvent("update", func(m *MergeRequest) { m.State = "closed" }), envs: envs(mrEnv(StateDeleted, shaA, t1)),
			want: ignored, wantReason: "merge request is closed",
		},
		{
			name: "MR close deletes its environment",
			ev:   mrEvent("close"), envs: envs(mrEnv(StateActive, shaB, t1)),
			want: deleted, wantReason: "merge request !5 closed: environment deleted",
		},
		{
			name: "MR merge deletes its environment",
			ev:   mrEvent("merge"), envs: envs(mrEnv(StateInactive, shaB, t1)),
			want: deleted, wantReason: "merged",
		},
		{
			name: "MR close with no environment is ignored",
			ev:   mrEvent("close"), envs: envs(),
			want: ignored, wantReason: "no environment",
		},
		{
			name: "MR approved is recorded with no effect",
			ev:   mrEvent("approved"), envs: envs(mrEnv(StateActive, shaA, t1)),
			want: ignored, wantReason: "merge request !5 approved: recorded, no effect",
		},
		{
			name: "MR unapproved is recorded with no effect",
			ev:   mrEvent("unapproved"), envs: envs(), want: ignored, wantReason: "recorded, no effect",
		},
		{
			name: "MR approval is recorded with no effect",
			ev:   mrEvent("approval"), envs: envs(), want: ignored, wantReason: "recorded, no effect",
		},
		{
			name: "MR unapproval is recorded with no effect",
			ev:   mrEvent("unapproval"), envs: envs(), want: ignored, wantReason: "recorded, no effect",
		},
		{
			name: "MR whose environment name is taken by a branch leaves that branch alone",
			ev:   mrEvent("open"), envs: envs(branchEnv("mr-5", StateActive, shaA, shaA)),
			want: ignored, wantReason: "taken by a branch environment",
		},
	})
}

func TestDecideTags(t *testing.T) {
	runDecide(t, []decideTest{
		{
			name: "tag push matching build-tags creates an active environment",
			ev:   tagPush("v1", zeroSHA, shaA), envs: envs(),
			want: Action{Type: ActionCreate, Env: "tag-v1", Kind: KindTag, Ref: "v1", Parent: "main", SHA: shaA,
				Activate: true, CloneParentData: true, SeenSHAs: []string{shaA}},
			wantReason: "tag v1 pushed (aaaaaaaa): environment created active (parent main)",
		},
		{
			name: "tag push not matching build-tags is ignored",
			ev:   tagPush("release-1", zeroSHA, shaA), envs: envs(),
			want: Action{Type: ActionIgnore, Env: "tag-release-1", Kind: KindTag, Ref: "release-1"}, wantReason: `does not match build-tags "v*"`,
		},
		{
			name: "tag push with build-tags off is ignored",
			ev:   tagPush("v1", zeroSHA, shaA), envs: envs(), opt: func(o *Options) { o.BuildTags = "" },
			want: Action{Type: ActionIgnore, Env: "tag-v1", Kind: KindTag, Ref: "v1"}, wantReason: "build-tags is off",
		},
		{
			name: "tag push with an invalid build-tags glob is ignored",
			ev:   tagPush("v1", zeroSHA, shaA), envs: envs(), opt: func(o *Options) { o.BuildTags = "v[" },
			want: Action{Type: ActionIgnore, Env: "tag-v1", Kind: KindTag, Ref: "v1"}, wantReason: "not a valid glob",
		},
		{
			name: "tag deletion deletes its environment, even with build-tags off",
			ev:   tagPush("v1", shaA, zeroSHA), envs: envs(tagEnv(StateActive, shaA, shaA)), opt: func(o *Options) { o.BuildTags = "" },
			want: Action{Type: ActionDelete, Env: "tag-v1", Kind: KindTag, Ref: "v1", SeenSHAs: []string{shaA}}, wantReason: "tag v1 deleted: environment deleted",
		},
		{
			name: "a moved tag's environment follows it even with build-tags off (options gate creation only)",
			ev:   tagPush("v1", shaA, shaB), envs: envs(tagEnv(StateActive, shaA, shaA)), opt: func(o *Options) { o.BuildTags = "" },
			want:       Action{Type: ActionDeploy, Env: "tag-v1", Kind: KindTag, Ref: "v1", Parent: "main", SHA: shaB, SeenSHAs: []string{shaA, shaB}},
			wantReason: "tag v1 pushed (bbbbbbbb): deploying the new head",
		},
		{
			name: "tag deletion with no environment is ignored",
			ev:   tagPush("v1", shaA, zeroSHA), envs: envs(),
			want: Action{Type: ActionIgnore, Env: "tag-v1", Kind: KindTag, Ref: "v1"}, wantReason: "no environment",
		},
		{
			name: "tag moved to another commit deploys it",
			ev:   tagPush("v1", shaA, shaB), envs: envs(tagEnv(StateActive, shaA, shaA)),
			want: Action{Type: ActionDeploy, Env: "tag-v1", Kind: KindTag, Ref: "v1", Parent: "main", SHA: shaB, SeenSHAs: []string{shaA, shaB}},
		},
	})
}

func TestDecideOtherEvents(t *testing.T) {
	for _, kind := range []string{"pipeline", "build", "deployment", "note", "issue", "emoji", "something_new"} {
		got := Decide(Event{Kind: KindOther, ObjectKind: kind}, baseOptions(), envs())
		if len(got) != 1 || got[0].Type != ActionIgnore || got[0].Reason != kind+" event: recorded, no effect" {
			t.Errorf("%s event: got %+v, want one ignore recorded with no effect", kind, got)
		}
	}
	got := Decide(Event{Kind: KindOther, ObjectKind: "push", Invalid: "ref: missing"}, baseOptions(), envs())
	if got[0].Type != ActionIgnore || !strings.Contains(got[0].Reason, "not understood (ref: missing)") {
		t.Errorf("invalid push: got %+v, want an ignore that says why", got)
	}
	got = Decide(push("feature/x", zeroSHA, shaA).withProject(8), baseOptions(), envs())
	if got[0].Type != ActionIgnore || !strings.Contains(got[0].Reason, "project 8, but the integration follows project 7") {
		t.Errorf("other project's push: got %+v, want ignored", got)
	}
}

func (ev Event) withProject(id int64) Event { ev.ProjectID = id; return ev }
