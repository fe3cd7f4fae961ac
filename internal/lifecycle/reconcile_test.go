package lifecycle

import (
	"reflect"
	"strings"
	"testing"
)

func openMR(iid int64, head string, mod ...func(*MergeRequest)) MergeRequest {
	mr := MergeRequest{IID: iid, State: "opened", SourceBranch: "feature/x", TargetBranch: "main",
		SourceProjectID: proj, TargetProjectID: proj, HeadSHA: head, UpdatedAt: t2}
	for _, m := range mod {
		m(&mr)
	}
	return mr
}

func TestReconcile(t *testing.T) {
	main := branchEnv("main", StateActive, shaA, shaA)
	tests := []struct {
		name   string
		opt    func(*Options)
		remote RemoteState
		envs   map[string]Env
		want   []Action // Reasons are checked to be set and to start with "reconcile: "
	}{
		{
			name:   "nothing to do when every environment matches GitLab",
			remote: RemoteState{Branches: map[string]string{"main": shaA}, OpenMRs: []MergeRequest{openMR(5, shaB)}, Tags: map[string]string{"v1": shaA}, MergeRequestsListed: true, TagsListed: true},
			envs:   envs(main, mrEnv(StateActive, shaB, t2), tagEnv(StateActive, shaA, shaA)),
		},
		{
			name:   "branches without environments get them with fetch-branches, the default branch's active",
			remote: RemoteState{Branches: map[string]string{"main": shaA, "feature/x": shaB}},
			envs:   envs(),
			want: []Action{
				{Type: ActionCreate, Env: "feature/x", Kind: KindBranch, Ref: "feature/x", Parent: "main", SHA: shaB, SeenSHAs: []string{shaB}},
				{Type: ActionCreate, Env: "main", Kind: KindBranch, Ref: "main", SHA: shaA, Activate: true, SeenSHAs: []string{shaA}},
			},
		},
		{
			name:   "branches without environments stay so without fetch-branches",
			opt:    func(o *Options) { o.FetchBranches = false },
			remote: RemoteState{Branches: map[string]string{"main": shaA, "feature/x": shaB}},
			envs:   envs(),
		},
		{
			name:   "a branch whose environment was deleted gets a new one (GitLab is the truth)",
			remote: RemoteState{Branches: map[string]string{"main": shaA, "feature/x": shaB}},
			envs:   envs(main, branchEnv("feature/x", StateDeleted, shaB, shaB)),
			want: []Action{
				{Type: ActionCreate, Env: "feature/x", Kind: KindBranch, Ref: "feature/x", Parent: "main", SHA: shaB, SeenSHAs: []string{shaB}},
			},
		},
		{
			name:   "environments of deleted branches are deleted with prune-branches, never the default branch's",
			remote: RemoteState{Branches: map[string]string{}},
			envs:   envs(main, branchEnv("feature/x", StateInactive, shaB, shaB), branchEnv("gone", StateDeleted, shaC, shaC)),
			want: []Action{
				{Type: ActionDelete, Env: "feature/x", Kind: KindBranch, Ref: "feature/x"},
			},
		},
		{
			name:   "environments of deleted branches are kept without prune-branches",
			opt:    func(o *Options) { o.PruneBranches = false },
			remote: RemoteState{Branches: map[string]string{"main": shaA}},
			envs:   envs(main, branchEnv("feature/x", StateActive, shaB, shaB)),
		},
		{
			name:   "heads are brought up to date: deployed when active, recorded when inactive",
			remote: RemoteState{Branches: map[string]string{"main": shaB, "feature/x": shaC, "feature/y": shaA}},
			envs:   envs(main, branchEnv("feature/x", StateInactive, shaB, shaB), branchEnv("feature/y", StateFailed, shaC, shaA, shaB, shaC)),
			want: []Action{
				{Type: ActionUpdateHead, Env: "feature/x", Kind: KindBranch, Ref: "feature/x", Parent: "main", SHA: shaC, SeenSHAs: []string{shaC}},
				// A head GitLab reports is deployed even if seen before: a force-push back.
				{Type: ActionDeploy, Env: "feature/y", Kind: KindBranch, Ref: "feature/y", Parent: "main", SHA: shaA, SeenSHAs: []string{shaA}},
				{Type: ActionDeploy, Env: "main", Kind: KindBranch, Ref: "main", SHA: shaB, SeenSHAs: []string{shaB}},
			},
		},
		{
			name:   "open merge requests without environments get them as on open",
			remote: RemoteState{Branches: map[string]string{"main": shaA}, OpenMRs: []MergeRequest{openMR(5, shaB)}, MergeRequestsListed: true},
			envs:   envs(main),
			want: []Action{
				{Type: ActionCreate, Env: "mr-5", Kind: KindMR, Ref: "feature/x", Parent: "main", SHA: shaB, Activate: true,
					CloneParentData: true, MRIID: 5, MRUpdatedAt: t2, SeenSHAs: []string{shaB}},
			},
		},
		{
			name: "open merge requests that would not be built on open get no environment",
			remote: RemoteState{Branches: map[string]string{"main": shaA}, OpenMRs: []MergeRequest{
				openMR(5, shaB, func(m *MergeRequest) { m.Draft = true }),
				openMR(6, shaB, func(m *MergeRequest) { m.SourceProjectID = fork }),
			}, MergeRequestsListed: true},
			envs: envs(main),
		},
		{
			name:   "an open merge request listed before its environment's last event is left alone",
			remote: RemoteState{Branches: map[string]string{"main": shaA}, OpenMRs: []MergeRequest{openMR(5, shaB, func(m *MergeRequest) { m.UpdatedAt = t1 })}, MergeRequestsListed: true},
			envs:   envs(main, mrEnv(StateDeleted, shaB, t2)),
		},
		{
			name:   "merge request environments follow the head",
			remote: RemoteState{Branches: map[string]string{"main": shaA}, OpenMRs: []MergeRequest{openMR(5, shaC, func(m *MergeRequest) { m.UpdatedAt = t3 })}, MergeRequestsListed: true},
			envs:   envs(main, mrEnv(StateActive, shaB, t2)),
			want: []Action{
				{Type: ActionDeploy, Env: "mr-5", Kind: KindMR, Ref: "feature/x", Parent: "main", SHA: shaC, MRIID: 5, MRUpdatedAt: t3, SeenSHAs: []string{shaC}},
			},
		},
		{
			name:   "environments of closed merge requests are deleted",
			remote: RemoteState{Branches: map[string]string{"main": shaA}, OpenMRs: []MergeRequest{openMR(6, shaB)}, MergeRequestsListed: true},
			envs: envs(main, mrEnv(StateActive, shaB, t2),
				Env{Name: "mr-6", Kind: KindMR, State: StateActive, HeadSHA: shaB, MRUpdatedAt: t2}), // no MRIID stored: the name tells
			want: []Action{
				{Type: ActionDelete, Env: "mr-5", Kind: KindMR, Ref: "feature/x", MRIID: 5, MRUpdatedAt: t2},
			},
		},
		{
			name:   "environments of deleted tags are deleted and moved tags deployed; new tags wait for their push",
			remote: RemoteState{Branches: map[string]string{"main": shaA}, Tags: map[string]string{"v2": shaB, "v3": shaC}, TagsListed: true},
			envs: envs(main, tagEnv(StateActive, shaA, shaA),
				Env{Name: "tag-v2", Kind: KindTag, Ref: "v2", Parent: "main", State: StateActive, HeadSHA: shaA}),
			want: []Action{
				{Type: ActionDelete, Env: "tag-v1", Kind: KindTag, Ref: "v1"},
				{Type: ActionDeploy, Env: "tag-v2", Kind: KindTag, Ref: "v2", Parent: "main", SHA: shaB, SeenSHAs: []string{shaB}},
			},
		},
		{
			name:   "with build-merge-requests off and no listing read, merge request environments are kept",
			opt:    func(o *Options) { o.BuildMergeRequests = false },
			remote: RemoteState{Branches: map[string]string{"main": shaA}},
			envs:   envs(main, mrEnv(StateActive, shaB, t2)),
		},
		{
			name:   "with build-merge-requests off, a listed merge request environment still follows its close",
			opt:    func(o *Options) { o.BuildMergeRequests = false },
			remote: RemoteState{Branches: map[string]string{"main": shaA}, OpenMRs: []MergeRequest{openMR(6, shaC)}, MergeRequestsListed: true},
			envs:   envs(main, mrEnv(StateActive, shaB, t2)),
			want: []Action{
				{Type: ActionDelete, Env: "mr-5", Kind: KindMR, Ref: "feature/x", MRIID: 5, MRUpdatedAt: t2},
			},
		},
		{
			name:   "with build-tags off and no listing read, tag environments are kept",
			opt:    func(o *Options) { o.BuildTags = "" },
			remote: RemoteState{Branches: map[string]string{"main": shaA}},
			envs:   envs(main, tagEnv(StateActive, shaA, shaA)),
		},
		{
			name:   "with build-tags off, a listed tag environment still follows its tag",
			opt:    func(o *Options) { o.BuildTags = "" },
			remote: RemoteState{Branches: map[string]string{"main": shaA}, Tags: map[string]string{"v1": shaB}, TagsListed: true},
			envs:   envs(main, tagEnv(StateActive, shaA, shaA)),
			want: []Action{
				{Type: ActionDeploy, Env: "tag-v1", Kind: KindTag, Ref: "v1", Parent: "main", SHA: shaB, SeenSHAs: []string{shaB}},
			},
		},
		{
			name:   "a branch named like a merge request environment does not replace it",
			remote: RemoteState{Branches: map[string]string{"main": shaA, "mr-5": shaC}, OpenMRs: []MergeRequest{openMR(5, shaB)}, MergeRequestsListed: true},
			envs:   envs(main, mrEnv(StateActive, shaB, t2)),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opt := baseOptions()
			if tt.opt != nil {
				tt.opt(&opt)
			}
			got := Reconcile(opt, tt.remote, tt.envs)
			for i := range got {
				if !strings.HasPrefix(got[i].Reason, "reconcile: ") {
					t.Errorf("action %d: Reason %q does not say it came from reconcile", i, got[i].Reason)
				}
				got[i].Reason = ""
			}
			if len(got) == 0 && len(tt.want) == 0 {
				return
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Reconcile =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

// Options that are off gate creation only, so reconcile must read the
// listings that the environments which exist need.
func TestListingsFollowWhatExists(t *testing.T) {
	off := baseOptions()
	off.BuildMergeRequests, off.BuildTags = false, ""
	for _, tt := range []struct {
		name      string
		opt       Options
		envs      map[string]Env
		mrs, tags bool
	}{
		{"options on: both listings", baseOptions(), envs(), true, true},
		{"options off and nothing of those kinds: neither", off, envs(branchEnv("main", StateActive, shaA)), false, false},
		{"options off with a merge request environment: merge requests", off, envs(mrEnv(StateActive, shaB, t2)), true, false},
		{"options off with a tag environment: tags", off, envs(tagEnv(StateInactive, shaA)), false, true},
		{"tombstones need no listing", off, envs(mrEnv(StateDeleted, shaB, t2), tagEnv(StateDeleted, shaA)), false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if mrs, tags := Listings(tt.opt, tt.envs); mrs != tt.mrs || tags != tt.tags {
				t.Errorf("Listings = %v, %v; want %v, %v", mrs, tags, tt.mrs, tt.tags)
			}
		})
	}
}

// Map iteration order is random; the result must not be.
func TestReconcileIsDeterministic(t *testing.T) {
	remote := RemoteState{Branches: map[string]string{}, Tags: map[string]string{}, TagsListed: true}
	state := envs()
	for _, b := range []string{"a", "b", "c", "d", "e", "f", "g", "h", "main"} {
		remote.Branches[b] = shaA
		state["old-"+b] = branchEnv("old-"+b, StateActive, shaB, shaB)
	}
	for i := int64(1); i <= 12; i++ {
		remote.OpenMRs = append(remote.OpenMRs, openMR(i, shaC))
	}
	first := Reconcile(baseOptions(), remote, state)
	if len(first) != 9+9+12 {
		t.Fatalf("got %d actions, want 30", len(first))
	}
	for i := 1; i < len(first); i++ {
		if first[i-1].Env >= first[i].Env {
			t.Fatalf("actions not sorted by unique environment name: %q then %q", first[i-1].Env, first[i].Env)
		}
	}
	for range 20 {
		if again := Reconcile(baseOptions(), remote, state); !reflect.DeepEqual(again, first) {
			t.Fatal("Reconcile returned a different result for the same input")
		}
	}
}

// After a reconcile is applied, a second one has nothing left to do.
func TestReconcileConverges(t *testing.T) {
	remote := RemoteState{
		Branches:            map[string]string{"main": shaB, "feature/x": shaC},
		OpenMRs:             []MergeRequest{openMR(5, shaD)},
		Tags:                map[string]string{},
		MergeRequestsListed: true, TagsListed: true,
	}
	state := envs(branchEnv("main", StateActive, shaA, shaA), branchEnv("gone", StateInactive, shaA, shaA), tagEnv(StateActive, shaA, shaA))
	apply(state, Reconcile(baseOptions(), remote, state))
	if again := Reconcile(baseOptions(), remote, state); len(again) != 0 {
		t.Errorf("second reconcile still acts: %+v", again)
	}
	if state["gone"].State != StateDeleted || state["feature/x"].HeadSHA != shaC || state["mr-5"].HeadSHA != shaD {
		t.Errorf("reconcile left %+v", state)
	}
}

func TestValidBuildTags(t *testing.T) {
	for _, ok := range []string{"", "v*", "release-[0-9]*", "*"} {
		if err := ValidBuildTags(ok); err != nil {
			t.Errorf("ValidBuildTags(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"v[", "[", `v\`} {
		err := ValidBuildTags(bad)
		if err == nil || !strings.Contains(err.Error(), "build_tags") || !strings.Contains(err.Error(), "path.Match") {
			t.Errorf("ValidBuildTags(%q) = %v, want an error naming build_tags and the syntax", bad, err)
		}
	}
}
