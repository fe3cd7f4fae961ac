package lifecycle

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	gitlab "gitlab.com/gitlab-org/api/client-go/v2"
)

// Kind is the kind of webhook event, as far as environments care.
type Kind string

const (
	KindPush         Kind = "push"
	KindTagPush      Kind = "tag_push"
	KindMergeRequest Kind = "merge_request"
	KindOther        Kind = "other"
)

// Event is the part of a GitLab webhook delivery that decisions need.
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

// ParseEvent reads a webhook delivery. The error is non-nil only when the
// body is not a JSON object (the caller answers 400). Unknown or
// uninteresting events give KindOther; a push, tag push or merge request
// whose needed fields are missing or mistyped gives KindOther with Invalid
// set. It never panics.
func ParseEvent(eventHeader string, body []byte) (Event, error) {
	// One struct with a single field: the decoder skips the rest of the body
	// without building a map of it (bodies reach megabytes).
	var top struct {
		ObjectKind json.RawMessage `json:"object_kind"`
	}
	if trimmed := bytes.TrimLeft(body, " \t\r\n"); len(trimmed) == 0 || trimmed[0] != '{' {
		return Event{}, errors.New("webhook body is not a JSON object")
	}
	if err := json.Unmarshal(body, &top); err != nil {
		return Event{}, fmt.Errorf("webhook body is not a JSON object: %w", err)
	}
	var objectKind string
	_ = json.Unmarshal(top.ObjectKind, &objectKind) // absent or mistyped: use the header

	ev := Event{Kind: kindOf(eventHeader, objectKind), ObjectKind: objectKind}
	if ev.ObjectKind == "" {
		ev.ObjectKind = eventHeader
	}
	var invalid string
	switch ev.Kind {
	case KindOther:
		return ev, nil
	case KindPush, KindTagPush:
		invalid = parsePush(&ev, body)
	case KindMergeRequest:
		invalid = parseMergeRequest(&ev, body)
	}
	if invalid != "" {
		return Event{Kind: KindOther, ObjectKind: ev.ObjectKind, ProjectID: ev.ProjectID, Invalid: invalid}, nil
	}
	return ev, nil
}

// kindOf trusts the header GitLab sends; system hooks and header-less
// deliveries (tests, proxies) fall back to object_kind.
func kindOf(header, objectKind string) Kind {
	switch {
	case strings.EqualFold(header, string(gitlab.EventTypePush)):
		return KindPush
	case strings.EqualFold(header, string(gitlab.EventTypeTagPush)):
		return KindTagPush
	case strings.EqualFold(header, string(gitlab.EventTypeMergeRequest)):
		return KindMergeRequest
	case header == "", strings.EqualFold(header, string(gitlab.EventTypeSystemHook)), strings.EqualFold(header, string(gitlab.EventTypeServiceHook)):
		switch Kind(objectKind) {
		case KindPush, KindTagPush, KindMergeRequest:
			return Kind(objectKind)
		}
	}
	return KindOther
}

var clientGoType = map[Kind]gitlab.EventType{
	KindPush:         gitlab.EventTypePush,
	KindTagPush:      gitlab.EventTypeTagPush,
	KindMergeRequest: gitlab.EventTypeMergeRequest,
}

// parseClientGo decodes with client-go's types, which document the payload.
// They reject the whole payload when any field has an unexpected type (e.g.
// approvals_before_merge is a string there but a number from GitLab),
// so callers fall back to a decoder of only the fields used here.
func parseClientGo(kind Kind, body []byte) (event any, err error) {
	defer func() {
		// Third-party decoding of untrusted input: a panic must not take the receiver down.
		if r := recover(); r != nil {
			event, err = nil, fmt.Errorf("client-go panicked: %v", r)
		}
	}()
	return gitlab.ParseWebhook(clientGoType[kind], body)
}

// pushFields are the fields used from push and tag push payloads.
type pushFields struct {
	ProjectID int64 `json:"project_id"`
	Project   struct {
		ID int64 `json:"id"`
	} `json:"project"`
	Ref    string `json:"ref"`
	Before string `json:"before"`
	After  string `json:"after"`
}

// parsePush decodes only the five fields it needs: pushes are the hot path
// (up to 20 commits each) and client-go's full decode cost more than all of
// glenv's own work on them. TestClientGoAndLenientAgree keeps both in step.
func parsePush(ev *Event, body []byte) string {
	var p pushFields
	if msg := decodeLenient(body, &p); msg != "" {
		return msg
	}
	ev.ProjectID = p.ProjectID
	if ev.ProjectID == 0 {
		ev.ProjectID = p.Project.ID
	}
	prefix := "refs/heads/"
	if ev.Kind == KindTagPush {
		prefix = "refs/tags/"
	}
	ref, ok := strings.CutPrefix(p.Ref, prefix)
	switch {
	case p.Ref == "":
		return "ref: missing"
	case !ok || ref == "":
		return fmt.Sprintf("ref: %q does not start with %s", p.Ref, prefix)
	case p.Before == "":
		return "before: missing"
	case p.After == "":
		return "after: missing"
	}
	ev.Ref, ev.Before, ev.After = ref, p.Before, p.After
	return ""
}

// mergeRequestFields are the fields used from merge request payloads.
type mergeRequestFields struct {
	Project struct {
		ID int64 `json:"id"`
	} `json:"project"`
	ObjectAttributes struct {
		IID             int64  `json:"iid"`
		Action          string `json:"action"`
		State           string `json:"state"`
		SourceBranch    string `json:"source_branch"`
		TargetBranch    string `json:"target_branch"`
		SourceProjectID int64  `json:"source_project_id"`
		TargetProjectID int64  `json:"target_project_id"`
		LastCommit      struct {
			ID string `json:"id"`
		} `json:"last_commit"`
		OldRev         string `json:"oldrev"`
		Draft          bool   `json:"draft"`
		WorkInProgress bool   `json:"work_in_progress"`
		UpdatedAt      string `json:"updated_at"`
		Title          string `json:"title"`
		URL            string `json:"url"`
	} `json:"object_attributes"`
	Changes struct {
		Draft struct {
			Previous bool `json:"previous"`
		} `json:"draft"`
		Title struct {
			Previous string `json:"previous"`
		} `json:"title"`
	} `json:"changes"`
}

func fromClientGoMerge(e *gitlab.MergeEvent) mergeRequestFields {
	var f mergeRequestFields
	a, o := &f.ObjectAttributes, e.ObjectAttributes
	f.Project.ID = e.Project.ID
	a.IID, a.Action, a.State = o.IID, o.Action, o.State
	a.SourceBranch, a.TargetBranch = o.SourceBranch, o.TargetBranch
	a.SourceProjectID, a.TargetProjectID = o.SourceProjectID, o.TargetProjectID
	a.LastCommit.ID, a.OldRev = o.LastCommit.ID, o.OldRev
	a.Draft, a.WorkInProgress = o.Draft, o.WorkInProgress
	a.UpdatedAt, a.Title, a.URL = o.UpdatedAt, o.Title, o.URL
	f.Changes.Draft.Previous = e.Changes.Draft.Previous
	f.Changes.Title.Previous = e.Changes.Title.Previous
	return f
}

func parseMergeRequest(ev *Event, body []byte) string {
	var f mergeRequestFields
	e, _ := parseClientGo(ev.Kind, body)
	if me, ok := e.(*gitlab.MergeEvent); ok {
		f = fromClientGoMerge(me)
	} else if msg := decodeLenient(body, &f); msg != "" {
		return msg
	}
	o := f.ObjectAttributes
	ev.ProjectID = f.Project.ID
	if ev.ProjectID == 0 {
		ev.ProjectID = o.TargetProjectID
	}
	if o.IID <= 0 {
		return "object_attributes.iid: missing"
	}
	if o.Action == "" {
		return "object_attributes.action: missing"
	}
	if o.Action == "open" || o.Action == "reopen" || o.Action == "update" {
		switch {
		case o.SourceBranch == "":
			return "object_attributes.source_branch: missing"
		case o.TargetBranch == "":
			return "object_attributes.target_branch: missing"
		case o.LastCommit.ID == "":
			return "object_attributes.last_commit.id: missing"
		}
	}
	ev.MR = &MergeRequest{
		IID:             o.IID,
		Action:          o.Action,
		State:           o.State,
		SourceBranch:    o.SourceBranch,
		TargetBranch:    o.TargetBranch,
		SourceProjectID: o.SourceProjectID,
		TargetProjectID: o.TargetProjectID,
		HeadSHA:         o.LastCommit.ID,
		OldRev:          o.OldRev,
		Draft:           o.Draft || o.WorkInProgress,
		WasDraft:        f.Changes.Draft.Previous || isDraftTitle(f.Changes.Title.Previous),
		UpdatedAt:       parseTime(o.UpdatedAt),
		Title:           o.Title,
		URL:             o.URL,
	}
	ev.Ref = o.SourceBranch
	return ""
}

// decodeLenient fills only the fields of v, ignoring all others; null
// leaves a field empty. It returns which field was mistyped, if one was.
func decodeLenient(body []byte, v any) string {
	err := json.NewDecoder(bytes.NewReader(body)).Decode(v)
	if err == nil {
		return ""
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("%s: got JSON %s, want %s", te.Field, te.Value, te.Type)
	}
	return err.Error()
}

// isDraftTitle matches GitLab's draft title prefixes, case-insensitively.
func isDraftTitle(title string) bool {
	t := strings.ToLower(strings.TrimSpace(title))
	for _, p := range []string{"draft:", "[draft]", "(draft)", "wip:"} {
		if strings.HasPrefix(t, p) {
			return true
		}
	}
	return false
}

// GitLab writes webhook times as "2017-09-15 16:52:00 UTC"; its docs and
// the API use RFC 3339, and deployment hooks a numeric offset.
var timeLayouts = []string{time.RFC3339Nano, "2006-01-02 15:04:05 MST", "2006-01-02 15:04:05 -0700", "2006-01-02 15:04:05.999999999 MST"}

// parseTime returns the zero time when s is empty or unreadable; Decide then
// skips the updated_at ordering check for that event.
func parseTime(s string) time.Time {
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}
