package lifecycle

import (
	"fmt"
	"path"
	"time"

	"github.com/glenv/glenv/internal/gitsha"
)

// Decide returns what to do about one webhook event given the integration's
// options and its current environments (tombstones included), keyed by name.
// It returns exactly one action today; a slice leaves room for events that
// touch several environments. The rules are DESIGN.md "Lifecycle rules".
func Decide(ev Event, opt Options, envs map[string]Env) []Action {
	return []Action{decide(ev, opt, envs)}
}

func decide(ev Event, opt Options, envs map[string]Env) Action {
	if ev.Kind != KindOther && opt.ProjectID != 0 && ev.ProjectID != 0 && ev.ProjectID != opt.ProjectID {
		// A group or system hook pointed at glenv sends other projects' events.
		return ignore(Action{}, fmt.Sprintf("%s event for project %d, but the integration follows project %d: recorded, no effect", ev.Kind, ev.ProjectID, opt.ProjectID))
	}
	switch ev.Kind {
	case KindPush:
		return decidePush(ev, opt, envs)
	case KindTagPush:
		return decideTag(ev, opt, envs)
	case KindMergeRequest:
		if ev.MR != nil {
			return decideMergeRequest(*ev.MR, opt, envs)
		}
		return ignore(Action{}, "merge request event without merge request data: recorded, no effect")
	}
	if ev.ObjectKind == "" {
		ev.ObjectKind = "unknown"
	}
	if ev.Invalid != "" {
		return ignore(Action{}, fmt.Sprintf("%s event not understood (%s): recorded, no effect", ev.ObjectKind, ev.Invalid))
	}
	return ignore(Action{}, fmt.Sprintf("%s event: recorded, no effect", ev.ObjectKind))
}

func ignore(a Action, reason string) Action {
	return Action{Type: ActionIgnore, Env: a.Env, Kind: a.Kind, Ref: a.Ref, MRIID: a.MRIID, Reason: reason}
}

// lookup returns the environment called name. taken is set when that name
// belongs to an environment of another kind (branch "mr-1" vs merge request
// !1), which must never be overwritten.
func lookup(envs map[string]Env, name string, kind EnvKind) (env Env, live bool, taken string) {
	env, exists := envs[name]
	if exists && env.Kind != kind {
		return env, false, fmt.Sprintf("the name %s is taken by a %s environment", name, kindWords[env.Kind])
	}
	return env, exists && !env.Deleted(), ""
}

var kindWords = map[EnvKind]string{KindBranch: "branch", KindMR: "merge request", KindTag: "tag"}

func decidePush(ev Event, opt Options, envs map[string]Env) Action {
	name := ev.Ref
	a := Action{Env: name, Kind: KindBranch, Ref: name}
	env, live, taken := lookup(envs, name, KindBranch)
	if taken != "" {
		return ignore(a, fmt.Sprintf("push to %s: %s: no effect", name, taken))
	}
	if isZeroSHA(ev.After) {
		return decideBranchDeleted(ev, opt, a, env, live)
	}
	what := fmt.Sprintf("push to %s (%s)", name, gitsha.Short(ev.After))
	if isZeroSHA(ev.Before) {
		what = fmt.Sprintf("branch %s created (%s)", name, gitsha.Short(ev.After))
	}
	if live {
		return advance(a, env, ev.Before, ev.After, what)
	}
	if !opt.FetchBranches {
		return ignore(a, what+": no environment and fetch-branches is off")
	}
	if env.Deleted() && env.seen(ev.After) {
		return ignore(a, what+": stale, its commit was already applied to the deleted environment")
	}
	if !isZeroSHA(ev.Before) {
		what += " with no environment (missed events heal)"
	}
	return createBranch(a, opt, ev.After, shas(ev.Before, ev.After), what)
}

// createBranch creates a branch environment: the default branch's is active
// with no parent, every other starts inactive below the default branch.
func createBranch(a Action, opt Options, sha string, seen []string, what string) Action {
	a.Type, a.SHA, a.SeenSHAs = ActionCreate, sha, seen
	if a.Env == opt.DefaultBranch {
		a.Activate = true
		a.Reason = what + ": environment created active (default branch)"
		return a
	}
	a.Parent = opt.DefaultBranch
	a.Reason = fmt.Sprintf("%s: environment created inactive (parent %s)", what, opt.DefaultBranch)
	return a
}

// advance moves a live branch or tag environment to after. A push is the
// successor of the head when its before is the head (this admits a
// force-push back to an older commit); otherwise it is stale when either of
// its SHAs was already applied; otherwise events were missed and it is the
// newest news.
//
// A create (before all zeros) on a live environment is never applied: it is
// a late or duplicate delivery, since anything applied since came after it.
// The rare exception, a branch deleted and recreated while its environment
// was kept, catches up with the next push or reconcile.
func advance(a Action, env Env, before, after, what string) Action {
	var stale string
	switch {
	case after == env.HeadSHA:
		stale = what + ": environment already at this head"
	case isZeroSHA(before):
		stale = fmt.Sprintf("%s: stale, the environment already exists at %s", what, gitsha.Short(env.HeadSHA))
	case before != env.HeadSHA && (env.seen(after) || env.seen(before)):
		stale = fmt.Sprintf("%s: stale, the environment has moved on to %s", what, gitsha.Short(env.HeadSHA))
	}
	if stale != "" {
		// A stale push's commits are older than the head: remembering them
		// keeps the pushes before it out too, whatever order they come in.
		a = ignore(a, stale)
		a.SeenSHAs = unseen(env, before, after)
		return a
	}
	a.SHA, a.SeenSHAs, a.Parent = after, shas(before, after), env.Parent
	if env.Activated() {
		a.Type, a.Reason = ActionDeploy, what+": deploying the new head"
		return a
	}
	a.Type = ActionUpdateHead
	a.Reason = fmt.Sprintf("%s: environment %s, head recorded without deploying", what, env.State)
	return a
}

func decideBranchDeleted(ev Event, opt Options, a Action, env Env, live bool) Action {
	what := "branch " + a.Env + " deleted"
	switch {
	case !opt.PruneBranches:
		return ignore(a, what+": prune-branches is off, environment kept")
	case a.Env == opt.DefaultBranch:
		return ignore(a, what+": the default branch's environment is never deleted")
	}
	return deleteRef(a, env, live, ev.Before, what)
}

// deleteRef deletes a branch or tag environment. A deletion at a head the
// environment has since left is stale: the ref was recreated meanwhile.
func deleteRef(a Action, env Env, live bool, before, what string) Action {
	switch {
	case !live:
		return ignore(a, what+": no environment")
	case before != env.HeadSHA && env.seen(before):
		return ignore(a, fmt.Sprintf("%s: stale, the environment has moved on to %s", what, gitsha.Short(env.HeadSHA)))
	}
	a.Type, a.SeenSHAs, a.Reason = ActionDelete, shas(before), what+": environment deleted"
	return a
}

func decideTag(ev Event, opt Options, envs map[string]Env) Action {
	tag := ev.Ref
	a := Action{Env: TagName(tag), Kind: KindTag, Ref: tag}
	env, live, taken := lookup(envs, a.Env, KindTag)
	if taken != "" {
		return ignore(a, fmt.Sprintf("tag %s pushed: %s: no effect", tag, taken))
	}
	if isZeroSHA(ev.After) {
		// Deleted with the tag, whatever build-tags says now.
		return deleteRef(a, env, live, ev.Before, "tag "+tag+" deleted")
	}
	what := fmt.Sprintf("tag %s pushed (%s)", tag, gitsha.Short(ev.After))
	if live {
		// The tag was moved. Options gate creation only (see Listings): an
		// existing environment follows its tag whatever build-tags says now.
		return advance(a, env, ev.Before, ev.After, what)
	}
	if opt.BuildTags == "" {
		return ignore(a, what+": build-tags is off")
	}
	match, err := path.Match(opt.BuildTags, tag)
	if err != nil {
		return ignore(a, fmt.Sprintf("%s: build-tags %q is not a valid glob (%v)", what, opt.BuildTags, err))
	}
	if !match {
		return ignore(a, fmt.Sprintf("%s: does not match build-tags %q", what, opt.BuildTags))
	}
	if env.Deleted() && env.seen(ev.After) {
		return ignore(a, what+": stale, its commit was already applied to the deleted environment")
	}
	return createTag(a, opt, ev.After, shas(ev.Before, ev.After), what)
}

// createTag creates a tag environment active. DESIGN.md gives tags no
// parent; glenv uses the default branch, whose data a release preview wants.
func createTag(a Action, opt Options, sha string, seen []string, what string) Action {
	a.Type, a.SHA, a.SeenSHAs, a.Activate = ActionCreate, sha, seen, true
	a.Parent = opt.DefaultBranch
	a.CloneParentData = opt.DefaultBranch != ""
	a.Reason = fmt.Sprintf("%s: environment created active (parent %s)", what, opt.DefaultBranch)
	return a
}

var mrActionPast = map[string]string{
	"open": "opened", "reopen": "reopened", "update": "updated", "close": "closed", "merge": "merged",
}

func decideMergeRequest(mr MergeRequest, opt Options, envs map[string]Env) Action {
	a := Action{Env: MRName(mr.IID), Kind: KindMR, Ref: mr.SourceBranch, Parent: mr.TargetBranch, MRIID: mr.IID, Fork: isFork(mr, opt)}
	what := fmt.Sprintf("merge request !%d %s", mr.IID, mr.Action)
	if past, ok := mrActionPast[mr.Action]; ok {
		what = fmt.Sprintf("merge request !%d %s", mr.IID, past)
	} else {
		// approved, unapproved, approval, unapproval and anything new.
		return ignore(a, what+": recorded, no effect")
	}
	env, live, taken := lookup(envs, a.Env, KindMR)
	if taken != "" {
		return ignore(a, what+": "+taken+": no effect")
	}
	if !mr.UpdatedAt.IsZero() && mr.UpdatedAt.Before(env.MRUpdatedAt) {
		return ignore(a, fmt.Sprintf("%s: stale, updated at %s, before the last event applied (%s)",
			what, mr.UpdatedAt.Format(time.RFC3339), env.MRUpdatedAt.Format(time.RFC3339)))
	}
	a.MRUpdatedAt = later(mr.UpdatedAt, env.MRUpdatedAt)

	if mr.Action == "close" || mr.Action == "merge" {
		if !live {
			return ignore(a, what+": no environment")
		}
		a.Type, a.Reason = ActionDelete, what+": environment deleted"
		return a
	}
	if mr.State != "" && mr.State != "opened" {
		return ignore(a, fmt.Sprintf("%s: merge request is %s, no effect", what, mr.State))
	}
	if mr.Action == "update" && mr.WasDraft && !mr.Draft {
		what = fmt.Sprintf("merge request !%d marked ready", mr.IID)
	}
	if live {
		// Draft status and options gate creation only (see Listings): an
		// existing environment (e.g. one turned draft again) keeps following its head.
		return followMergeRequest(a, env, mr, what)
	}
	if why := notBuilt(mr, opt); why != "" {
		return ignore(a, what+": "+why)
	}
	if mr.Action == "update" && !(mr.WasDraft && !mr.Draft) {
		what += " with no environment (missed events heal)"
	}
	return createMergeRequest(a, opt, mr, what)
}

// notBuilt says why a merge request gets no environment, or "" if it does.
func notBuilt(mr MergeRequest, opt Options) string {
	switch {
	case !opt.BuildMergeRequests:
		return "build-merge-requests is off"
	case mr.Draft && !opt.BuildDraftMergeRequests:
		return "draft, and build-draft-merge-requests is off"
	case isFork(mr, opt) && !opt.BuildForks:
		return fmt.Sprintf("from a fork (project %d), and build-forks is off", mr.SourceProjectID)
	}
	return ""
}

func isFork(mr MergeRequest, opt Options) bool {
	return mr.SourceProjectID != mr.TargetProjectID || (opt.ProjectID != 0 && mr.SourceProjectID != opt.ProjectID)
}

func createMergeRequest(a Action, opt Options, mr MergeRequest, what string) Action {
	a.Type, a.SHA, a.SeenSHAs, a.Activate = ActionCreate, mr.HeadSHA, shas(mr.HeadSHA), true
	a.CloneParentData = opt.MergeRequestsCloneParentData
	data := "empty data"
	if a.CloneParentData {
		data = "data cloned from the parent"
	}
	a.Reason = fmt.Sprintf("%s: environment created active at %s (parent %s, %s)", what, gitsha.Short(mr.HeadSHA), mr.TargetBranch, data)
	return a
}

// followMergeRequest brings a live merge request environment to the MR's
// head. The ordering mark is stored even when the head is unchanged, so a
// later-delivered older close cannot delete a reopened environment.
func followMergeRequest(a Action, env Env, mr MergeRequest, what string) Action {
	a.SHA, a.SeenSHAs = mr.HeadSHA, shas(mr.HeadSHA)
	switch {
	case mr.HeadSHA == "" || mr.HeadSHA == env.HeadSHA:
		if !a.MRUpdatedAt.After(env.MRUpdatedAt) {
			return ignore(a, what+": environment already at this head")
		}
		a.Type, a.SHA = ActionUpdateHead, env.HeadSHA
		a.Reason = what + ": environment already at this head, ordering mark advanced"
	case env.Activated():
		a.Type, a.Reason = ActionDeploy, fmt.Sprintf("%s: deploying the new head %s", what, gitsha.Short(mr.HeadSHA))
	default:
		a.Type = ActionUpdateHead
		a.Reason = fmt.Sprintf("%s: environment %s, head %s recorded without deploying", what, env.State, gitsha.Short(mr.HeadSHA))
	}
	return a
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
