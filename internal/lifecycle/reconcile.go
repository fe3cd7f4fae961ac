package lifecycle

import (
	"cmp"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/glenv/glenv/internal/gitsha"
)

// RemoteState is what GitLab's API says now. A listing that was read must
// be complete: an empty one means "there are none" and deletes the
// environments of that kind. A listing not read (its Listed flag false)
// says nothing, and the environments of that kind are left alone.
type RemoteState struct {
	Branches map[string]string // branch name → head SHA; always listed
	OpenMRs  []MergeRequest
	Tags     map[string]string // tag name → SHA
	// MergeRequestsListed and TagsListed say OpenMRs and Tags were read
	// (see Listings for when they must be).
	MergeRequestsListed, TagsListed bool
}

// Options that are off, one rule for webhooks and reconcile: an option that
// is off (fetch-branches, build-merge-requests, build-draft-merge-requests,
// build-forks, build-tags) only stops glenv from creating environments.
// Environments that exist keep following GitLab whatever the options say
// now: a new head deploys, and they are deleted when their merge request
// closes or merges, or their tag is deleted. Only prune-branches, itself an
// option about deleting, keeps branch environments whose branch is gone.

// Listings says which listings a reconcile must read so that it can follow
// the environments that exist under the rule above: merge requests when
// they are built or some merge request environment lives, tags likewise.
func Listings(opt Options, envs map[string]Env) (mergeRequests, tags bool) {
	mergeRequests, tags = opt.BuildMergeRequests, opt.BuildTags != ""
	for _, e := range envs {
		if e.Deleted() {
			continue
		}
		mergeRequests = mergeRequests || e.Kind == KindMR
		tags = tags || e.Kind == KindTag
	}
	return mergeRequests, tags
}

// Reconcile returns the actions that make the environments match GitLab
// after missed or lost webhooks, sorted by environment name, at most one per
// environment and never ignore actions (nothing to log when all is well).
//
// The remote state is trusted over SeenSHAs, which only guard against late
// webhooks: it is how a force-push back to an old commit whose event was
// lost gets deployed. Callers load envs before listing GitLab, so a listing
// is never older than the environments it is compared with. Merge request
// environments still honour MRUpdatedAt, which the listing carries.
//
// Tags that match build-tags but have no environment are not created: a
// new glob would otherwise deploy every old release; tag pushes create them.
func Reconcile(opt Options, remote RemoteState, envs map[string]Env) []Action {
	var out []Action
	add := func(a Action) {
		if a.Type != "" && a.Type != ActionIgnore {
			out = append(out, a)
		}
	}
	for branch, sha := range remote.Branches {
		add(reconcileBranch(opt, branch, sha, envs))
	}
	open := make(map[int64]bool, len(remote.OpenMRs))
	for _, mr := range remote.OpenMRs {
		open[mr.IID] = true
		add(reconcileMergeRequest(opt, mr, envs))
	}
	for name, env := range envs {
		if env.Deleted() {
			continue
		}
		switch env.Kind {
		case KindBranch:
			if _, ok := remote.Branches[name]; !ok && opt.PruneBranches && name != opt.DefaultBranch {
				add(removal(name, env, fmt.Sprintf("reconcile: branch %s no longer exists: environment deleted", name)))
			}
		case KindMR:
			if iid := mrIID(name, env); remote.MergeRequestsListed && !open[iid] {
				add(removal(name, env, fmt.Sprintf("reconcile: merge request !%d is no longer open: environment deleted", iid)))
			}
		case KindTag:
			if !remote.TagsListed {
				continue
			}
			tag := tagOf(name, env)
			if sha, ok := remote.Tags[tag]; !ok {
				add(removal(name, env, fmt.Sprintf("reconcile: tag %s no longer exists: environment deleted", tag)))
			} else if sha != env.HeadSHA {
				add(catchUp(Action{Env: name, Kind: KindTag, Ref: tag, Parent: env.Parent}, env, sha,
					fmt.Sprintf("reconcile: tag %s is at %s", tag, gitsha.Short(sha))))
			}
		}
	}
	slices.SortStableFunc(out, func(a, b Action) int { return cmp.Compare(a.Env, b.Env) })
	return out
}

func reconcileBranch(opt Options, branch, sha string, envs map[string]Env) Action {
	a := Action{Env: branch, Kind: KindBranch, Ref: branch}
	env, live, taken := lookup(envs, branch, KindBranch)
	what := fmt.Sprintf("reconcile: branch %s is at %s", branch, gitsha.Short(sha))
	switch {
	case taken != "":
		return Action{}
	case live && env.HeadSHA == sha:
		return Action{}
	case live:
		a.Parent = env.Parent
		return catchUp(a, env, sha, what)
	case !opt.FetchBranches:
		return Action{}
	}
	return createBranch(a, opt, sha, shas(sha), what+" with no environment")
}

func reconcileMergeRequest(opt Options, mr MergeRequest, envs map[string]Env) Action {
	a := Action{Env: MRName(mr.IID), Kind: KindMR, Ref: mr.SourceBranch, Parent: mr.TargetBranch, MRIID: mr.IID, Fork: isFork(mr, opt)}
	env, live, taken := lookup(envs, a.Env, KindMR)
	if taken != "" || (!mr.UpdatedAt.IsZero() && mr.UpdatedAt.Before(env.MRUpdatedAt)) {
		return Action{}
	}
	a.MRUpdatedAt = later(mr.UpdatedAt, env.MRUpdatedAt)
	what := fmt.Sprintf("reconcile: merge request !%d is open at %s", mr.IID, gitsha.Short(mr.HeadSHA))
	if live {
		if mr.HeadSHA == "" || mr.HeadSHA == env.HeadSHA {
			return Action{}
		}
		return catchUp(a, env, mr.HeadSHA, what)
	}
	if notBuilt(mr, opt) != "" {
		return Action{}
	}
	return createMergeRequest(a, opt, mr, what+" with no environment")
}

// catchUp moves a live environment to sha: deployed when activated, else recorded.
func catchUp(a Action, env Env, sha, what string) Action {
	a.SHA, a.SeenSHAs = sha, shas(sha)
	if env.Activated() {
		a.Type, a.Reason = ActionDeploy, what+": deploying it"
		return a
	}
	a.Type, a.Reason = ActionUpdateHead, fmt.Sprintf("%s: environment %s, head recorded without deploying", what, env.State)
	return a
}

func removal(name string, env Env, reason string) Action {
	return Action{Type: ActionDelete, Env: name, Kind: env.Kind, Ref: env.Ref, MRIID: env.MRIID, MRUpdatedAt: env.MRUpdatedAt, Reason: reason}
}

// mrIID falls back to the name so an environment stored without its iid is
// not mistaken for a closed merge request.
func mrIID(name string, env Env) int64 {
	if env.MRIID != 0 {
		return env.MRIID
	}
	n, _ := strconv.ParseInt(strings.TrimPrefix(name, "mr-"), 10, 64)
	return n
}

func tagOf(name string, env Env) string {
	if env.Ref != "" {
		return env.Ref
	}
	return strings.TrimPrefix(name, "tag-")
}

// ValidBuildTags reports whether pattern can be used as build-tags.
func ValidBuildTags(pattern string) error {
	if _, err := path.Match(pattern, ""); err != nil {
		return fmt.Errorf("build_tags %q is not a valid glob (path.Match syntax, e.g. \"v*\"): %w", pattern, err)
	}
	return nil
}
