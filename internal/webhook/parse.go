package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/tidwall/gjson"
	gitlab "gitlab.com/gitlab-org/api/client-go/v2"

	"github.com/glenv/glenv/internal/lifecycle"
)

// This file is the edge where GitLab's webhook payloads become the plain
// lifecycle.Event the lifecycle decides on: all JSON and client-go decoding
// of payloads lives here.

// ParseEvent reads a webhook delivery. The error is non-nil only when the
// body is not a JSON object (the caller answers 400). Unknown or
// uninteresting events give lifecycle.KindOther; a push, tag push or merge request
// whose needed fields are missing or mistyped gives lifecycle.KindOther with Invalid
// set. It never panics.
func ParseEvent(eventHeader string, body []byte) (lifecycle.Event, error) {
	if trimmed := bytes.TrimLeft(body, " \t\r\n"); len(trimmed) == 0 || trimmed[0] != '{' {
		return lifecycle.Event{}, errors.New("webhook body is not a JSON object")
	}
	// One pass validates the body; the look-ups after it stop at the fields
	// they need, which GitLab writes before the commits that make a push
	// large. encoding/json walked each body four times here (a validating
	// scan before each of two decodes): 230 µs of CPU per 8 KB push.
	if !gjson.ValidBytes(body) {
		return lifecycle.Event{}, errors.New("webhook body is not a JSON object: it is not valid JSON")
	}
	return parseValid(eventHeader, body), nil
}

// ParseStoredEvent is ParseEvent for a body the receiver stored: it
// checked the body whole before the 202 (checkBody), so the validating
// pass is not made again for each delivery processed (8 µs of CPU per 8 KB
// push). A body that is not a JSON object (retention dropped it, or it was
// stored some other way) is still an error; gjson reads anything else
// without panicking.
func ParseStoredEvent(eventHeader string, body []byte) (lifecycle.Event, error) {
	if trimmed := bytes.TrimLeft(body, " \t\r\n"); len(trimmed) == 0 || trimmed[0] != '{' {
		return lifecycle.Event{}, errors.New("webhook body is not a JSON object")
	}
	return parseValid(eventHeader, body), nil
}

// ParseStored is ParseStoredEvent for a body held as a string, as the store
// reads it, without copying it: the parsers only read the body, and what
// they keep of it (gjson.GetBytes, encoding/json) they copy. The copy
// []byte(body) was one more allocation of a whole body (8 KB for a push)
// per processed delivery (BenchmarkProcessDelivery's memory profile).
func ParseStored(eventHeader, body string) (lifecycle.Event, error) {
	return ParseStoredEvent(eventHeader, unsafe.Slice(unsafe.StringData(body), len(body)))
}

// parseValid reads a valid JSON object's event.
func parseValid(eventHeader string, body []byte) lifecycle.Event {
	var objectKind string
	if k := gjson.GetBytes(body, "object_kind"); k.Type == gjson.String {
		objectKind = k.Str // absent or mistyped: use the header
	}

	ev := lifecycle.Event{Kind: kindOf(eventHeader, objectKind), ObjectKind: objectKind}
	if ev.ObjectKind == "" {
		ev.ObjectKind = eventHeader
	}
	var invalid string
	switch ev.Kind {
	case lifecycle.KindOther:
		return ev
	case lifecycle.KindPush, lifecycle.KindTagPush:
		invalid = parsePush(&ev, body)
	case lifecycle.KindMergeRequest:
		invalid = parseMergeRequest(&ev, body)
	}
	if invalid != "" {
		return lifecycle.Event{Kind: lifecycle.KindOther, ObjectKind: ev.ObjectKind, ProjectID: ev.ProjectID, Invalid: invalid}
	}
	return ev
}

// kindOf trusts the header GitLab sends; system hooks and header-less
// deliveries (tests, proxies) fall back to object_kind.
func kindOf(header, objectKind string) lifecycle.Kind {
	switch {
	case strings.EqualFold(header, string(gitlab.EventTypePush)):
		return lifecycle.KindPush
	case strings.EqualFold(header, string(gitlab.EventTypeTagPush)):
		return lifecycle.KindTagPush
	case strings.EqualFold(header, string(gitlab.EventTypeMergeRequest)):
		return lifecycle.KindMergeRequest
	case header == "", strings.EqualFold(header, string(gitlab.EventTypeSystemHook)), strings.EqualFold(header, string(gitlab.EventTypeServiceHook)):
		switch lifecycle.Kind(objectKind) {
		case lifecycle.KindPush, lifecycle.KindTagPush, lifecycle.KindMergeRequest:
			return lifecycle.Kind(objectKind)
		}
	}
	return lifecycle.KindOther
}

var clientGoType = map[lifecycle.Kind]gitlab.EventType{
	lifecycle.KindPush:         gitlab.EventTypePush,
	lifecycle.KindTagPush:      gitlab.EventTypeTagPush,
	lifecycle.KindMergeRequest: gitlab.EventTypeMergeRequest,
}

// parseClientGo decodes with client-go's types, which document the payload.
// They reject the whole payload when any field has an unexpected type (e.g.
// approvals_before_merge is a string there but a number from GitLab),
// so callers fall back to a decoder of only the fields used here.
func parseClientGo(kind lifecycle.Kind, body []byte) (event any, err error) {
	defer func() {
		// Third-party decoding of untrusted input: a panic must not take the receiver down.
		if r := recover(); r != nil {
			event, err = nil, fmt.Errorf("client-go panicked: %v", r)
		}
	}()
	return gitlab.ParseWebhook(clientGoType[kind], body)
}

// pushFields are the fields used from push and tag push payloads.
// project.default_branch is Project#hook_attrs (app/models/project.rb in
// GitLab), which Gitlab::DataBuilder::Push and merge request hook data
// (app/models/merge_request.rb, #hook_attrs via DataBuilder) embed whole.
type pushFields struct {
	ProjectID int64 `json:"project_id"`
	Project   struct {
		ID            int64  `json:"id"`
		DefaultBranch string `json:"default_branch"`
	} `json:"project"`
	Ref    string `json:"ref"`
	Before string `json:"before"`
	After  string `json:"after"`
}

// parsePush reads only the fields it needs: pushes are the hot path (up to
// 20 commits each) and client-go's full decode cost more than all of
// glenv's own work on them. TestLenientDecoderAgreesWithClientGo keeps
// readPush and client-go in step.
func parsePush(ev *lifecycle.Event, body []byte) string {
	p, msg := readPush(body)
	if msg != "" {
		return msg
	}
	ev.ProjectID, ev.DefaultBranch = p.ProjectID, p.Project.DefaultBranch
	if ev.ProjectID == 0 {
		ev.ProjectID = p.Project.ID
	}
	prefix := "refs/heads/"
	if ev.Kind == lifecycle.KindTagPush {
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

// readPush fills pushFields from a valid JSON body as encoding/json would
// (null or absent leaves a field empty; a mistyped one is named, in
// encoding/json's words), in one look-up per field.
func readPush(body []byte) (pushFields, string) {
	var p pushFields
	r := gjson.GetManyBytes(body, "project_id", "project", "ref", "before", "after")
	msgs := []string{
		lenientInt(r[0], "project_id", &p.ProjectID),
		lenientString(r[2], "ref", &p.Ref),
		lenientString(r[3], "before", &p.Before),
		lenientString(r[4], "after", &p.After),
	}
	switch project := r[1]; {
	case project.IsObject():
		f := project.Get("id")
		g := project.Get("default_branch")
		msgs = append(msgs, lenientInt(f, "project.id", &p.Project.ID), lenientString(g, "project.default_branch", &p.Project.DefaultBranch))
	case project.Exists() && project.Type != gjson.Null:
		msgs = append(msgs, mistyped("project", project, "object"))
	}
	for _, m := range msgs {
		if m != "" {
			return p, m
		}
	}
	return p, ""
}

func lenientString(r gjson.Result, field string, to *string) string {
	switch r.Type {
	case gjson.Null:
	case gjson.String:
		*to = r.Str
	default:
		return mistyped(field, r, "string")
	}
	return ""
}

func lenientInt(r gjson.Result, field string, to *int64) string {
	switch r.Type {
	case gjson.Null:
	case gjson.Number:
		v, err := strconv.ParseInt(r.Raw, 10, 64)
		if err != nil {
			return fmt.Sprintf("%s: got JSON number %s, want int64", field, r.Raw)
		}
		*to = v
	default:
		return mistyped(field, r, "int64")
	}
	return ""
}

// mistyped says what encoding/json's UnmarshalTypeError says.
func mistyped(field string, r gjson.Result, want string) string {
	got := "object"
	switch {
	case r.Type == gjson.String:
		got = "string"
	case r.Type == gjson.Number:
		got = "number"
	case r.Type == gjson.True, r.Type == gjson.False:
		got = "bool"
	case r.IsArray():
		got = "array"
	}
	return fmt.Sprintf("%s: got JSON %s, want %s", field, got, want)
}

// mergeRequestFields are the fields used from merge request payloads.
type mergeRequestFields struct {
	Project struct {
		ID            int64  `json:"id"`
		DefaultBranch string `json:"default_branch"`
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
	f.Project.ID, f.Project.DefaultBranch = e.Project.ID, e.Project.DefaultBranch
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

func parseMergeRequest(ev *lifecycle.Event, body []byte) string {
	var f mergeRequestFields
	e, _ := parseClientGo(ev.Kind, body)
	if me, ok := e.(*gitlab.MergeEvent); ok {
		f = fromClientGoMerge(me)
	} else if msg := decodeLenient(body, &f); msg != "" {
		return msg
	}
	o := f.ObjectAttributes
	ev.ProjectID, ev.DefaultBranch = f.Project.ID, f.Project.DefaultBranch
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
	ev.MR = &lifecycle.MergeRequest{
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
