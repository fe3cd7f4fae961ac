// Package lifecycle holds glenv's decisions about environments, and only
// decisions: what a push, tag or merge request does (Decide), what a
// reconcile with GitLab repairs (Reconcile), and the environment state
// machine every state change goes through (Transition). It performs no
// I/O, reads no clock, decodes no payload (internal/webhook turns webhooks
// into Events) and holds no state; internal/jobs stores the outcomes and
// carries out their effects.
package lifecycle

import (
	"fmt"
	"time"

	"github.com/glenv/glenv/internal/gitsha"
)

// Options are an integration's settings that shape its environments.
type Options struct {
	DefaultBranch string
	// ProjectID is the integration's GitLab project; 0 means unknown and
	// turns off the project and fork checks that compare against it.
	ProjectID                    int64
	FetchBranches                bool
	PruneBranches                bool
	BuildMergeRequests           bool
	BuildDraftMergeRequests      bool
	MergeRequestsCloneParentData bool
	BuildForks                   bool
	// BuildTags is a path.Match glob for tag names; "" turns tags off.
	BuildTags string
}

// EnvKind says what an environment follows.
type EnvKind string

const (
	KindBranch EnvKind = "branch"
	KindMR     EnvKind = "mr"
	KindTag    EnvKind = "tag"
)

// Environment states (DESIGN.md "Model").
const (
	StateInactive  = "inactive"
	StateBuilding  = "building"
	StateDeploying = "deploying"
	StateActive    = "active"
	StateFailed    = "failed"
	StatePaused    = "paused"
	StateStopping  = "stopping"
	StateDeleted   = "deleted"
)

// Env is the current state of one environment. Deleted environments stay as
// tombstones so their ordering marks keep late events from reviving them.
type Env struct {
	Name    string
	Kind    EnvKind
	Ref     string // branch, MR source branch or tag
	Parent  string
	HeadSHA string
	State   string
	MRIID   int64
	// MRUpdatedAt is the updated_at of the newest merge request event applied.
	MRUpdatedAt time.Time
	// SeenSHAs holds every before/after SHA already applied to this environment.
	SeenSHAs []string
}

// Activated reports whether the environment runs code, so a new head is
// deployed rather than only recorded. A failed or paused environment was
// activated by someone and stays so; a stopping one is on its way out.
func (e Env) Activated() bool {
	switch e.State {
	case StateBuilding, StateDeploying, StateActive, StateFailed, StatePaused:
		return true
	}
	return false
}

// Deleted reports whether e is a tombstone.
func (e Env) Deleted() bool { return e.State == StateDeleted }

func (e Env) seen(sha string) bool {
	if isZeroSHA(sha) {
		return false
	}
	for _, s := range e.SeenSHAs {
		if s == sha {
			return true
		}
	}
	return false
}

// ActionType is what a worker does for an action.
type ActionType string

const (
	// ActionCreate creates the environment, or revives a tombstone. With
	// Activate it also builds and deploys SHA; there is no separate deploy.
	ActionCreate ActionType = "create"
	// ActionDeploy builds and deploys SHA on an activated environment.
	ActionDeploy ActionType = "deploy"
	// ActionDelete deletes the environment, leaving a tombstone.
	ActionDelete ActionType = "delete"
	// ActionUpdateHead records SHA (and the ordering marks) without deploying.
	ActionUpdateHead ActionType = "update_head"
	// ActionIgnore changes nothing but the seen set: a stale push may carry
	// SeenSHAs, older commits it revealed. Reason says why, for the activity log.
	ActionIgnore ActionType = "ignore"
)

// Action is one decision about one environment.
type Action struct {
	Type   ActionType
	Env    string
	Kind   EnvKind
	Ref    string
	Parent string
	SHA    string
	// Activate creates the environment active (build + deploy) rather than inactive.
	Activate bool
	// CloneParentData copies Parent's data into the environment when it is created active.
	CloneParentData bool
	MRIID           int64
	// Fork: a merge request from another project than the integration's
	// (build-forks). Its code never gets glenv's variables, secrets or the
	// parent's data (DESIGN: "never given to fork code").
	Fork bool
	// MRUpdatedAt is the new ordering mark to store for a merge request environment.
	MRUpdatedAt time.Time
	// SeenSHAs are added to the environment's seen set.
	SeenSHAs []string
	// Reason says why, in words for the activity log; always set.
	Reason string
}

// MRName is the environment name of merge request iid.
func MRName(iid int64) string { return fmt.Sprintf("mr-%d", iid) }

// TagName is the environment name of a tag.
func TagName(tag string) string { return "tag-" + tag }

// isZeroSHA reports GitLab's "no commit" marker.
func isZeroSHA(sha string) bool { return gitsha.IsZero(sha) }

// shas lists the real SHAs among its arguments, once each, for SeenSHAs.
func shas(list ...string) []string {
	var out []string
	for _, s := range list {
		if s == "" || isZeroSHA(s) {
			continue
		}
		dup := false
		for _, o := range out {
			dup = dup || o == s
		}
		if !dup {
			out = append(out, s)
		}
	}
	return out
}

// unseen lists the real SHAs among its arguments that env has not seen.
func unseen(env Env, list ...string) []string {
	var out []string
	for _, s := range shas(list...) {
		if !env.seen(s) {
			out = append(out, s)
		}
	}
	return out
}
