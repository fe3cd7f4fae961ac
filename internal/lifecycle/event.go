package lifecycle

import "time"

// Kind is the kind of webhook event, as far as environments care.
type Kind string

const (
	KindPush         Kind = "push"
	KindTagPush      Kind = "tag_push"
	KindMergeRequest Kind = "merge_request"
	KindOther        Kind = "other"
)

// Event is the part of a GitLab webhook delivery that decisions need. The
// edge (internal/webhook) decodes payloads into it; the lifecycle never
// reads JSON.
type Event struct {
	Kind Kind
	// ObjectKind is the payload's object_kind, or the X-Gitlab-Event header
	// when the payload has none.
	ObjectKind string
	ProjectID  int64
	// Ref is the branch or tag name, without refs/heads/ or refs/tags/.
	Ref string
	// Before and After are the push's SHAs; 40 zeros mean none.
	Before, After string
	MR            *MergeRequest
	// DefaultBranch is project.default_branch as the payload reports it
	// ("" when absent): GitLab sends it with every push and merge request,
	// so a renamed default branch is noticed with the next event.
	DefaultBranch string
	// Invalid says why a push, tag push or merge request payload could not
	// be used, naming the field; Kind is then KindOther. Such deliveries are
	// still recorded and answered 2xx, because GitLab disables hooks that
	// keep failing and loses what is sent meanwhile.
	Invalid string
}

// MergeRequest is a merge request as a webhook or the API reports it.
type MergeRequest struct {
	IID int64
	// Action is open, close, reopen, update, merge, approved, unapproved,
	// approval or unapproval; empty when listed from the API.
	Action string
	// State is opened, closed, merged or locked.
	State                            string
	SourceBranch, TargetBranch       string
	SourceProjectID, TargetProjectID int64
	HeadSHA                          string // last_commit.id
	OldRev                           string // set when the update changed code
	Draft                            bool
	// WasDraft reports that the merge request was a draft before this event
	// (changes.draft.previous, or a previous title with a draft prefix);
	// WasDraft && !Draft is the draft → ready transition.
	WasDraft  bool
	UpdatedAt time.Time
	Title     string
	URL       string
}
