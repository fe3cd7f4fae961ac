package jobs

import (
	"testing"

	"github.com/glenv/glenv/internal/lifecycle"
	"github.com/glenv/glenv/internal/store"
)

func TestShownInGitLab(t *testing.T) {
	inactive := lifecycle.Outcome{State: store.StateInactive}
	deploying := lifecycle.Outcome{State: store.StateBuilding, Starts: store.ActivityDeploy}
	for _, tc := range []struct {
		name    string
		created bool
		kind    lifecycle.EnvKind
		o       lifecycle.Outcome
		want    bool
	}{
		{"a branch environment created inactive shows nothing in GitLab", true, lifecycle.KindBranch, inactive, false},
		{"a tag environment created inactive shows nothing in GitLab", true, lifecycle.KindTag, inactive, false},
		{"a merge request's environment has a note even when inactive", true, lifecycle.KindMR, inactive, true},
		{"a created environment that deploys gets a commit status", true, lifecycle.KindBranch, deploying, true},
		{"an existing environment made inactive may have a GitLab environment to stop", false, lifecycle.KindBranch, inactive, true},
		{"a deleted environment's GitLab environment is removed", false, lifecycle.KindBranch,
			lifecycle.Outcome{State: store.StateDeleted, Tombstone: true}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := shownInGitLab(tc.created, string(tc.kind), tc.o); got != tc.want {
				t.Fatalf("shownInGitLab = %v, want %v", got, tc.want)
			}
		})
	}
}
