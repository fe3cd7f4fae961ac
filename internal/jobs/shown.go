package jobs

import (
	"github.com/glenv/glenv/internal/lifecycle"
	"github.com/glenv/glenv/internal/store"
)

// shownInGitLab reports whether a transition changes anything GitLab shows
// of the environment, and so needs a feedback sync (internal/feedback).
// GitLab shows a deploy's commit status and deployment, a merge request's
// note, and the GitLab environment glenv created, stopped or deleted. An
// environment created just now (created: it had no row before) that starts
// no job has none of these unless it is a merge request's (its note shows
// every state). Skipping its sync matters: a push creating a branch is the
// commonest webhook, and its sync was a job insert, a lease, four reads and
// three writes that sent GitLab nothing.
func shownInGitLab(created bool, kind string, o lifecycle.Outcome) bool {
	nothingShown := created && o.Starts == "" && !o.Tombstone && o.State == store.StateInactive &&
		kind != string(lifecycle.KindMR)
	return !nothingShown
}
