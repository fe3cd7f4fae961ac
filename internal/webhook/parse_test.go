package webhook

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	gitlab "gitlab.com/gitlab-org/api/client-go/v2"

	"github.com/glenv/glenv/internal/lifecycle"
)

const (
	fixtureHead = "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"
	fixtureDir  = "testdata/webhooks" // copies of gitlab/webhooks
	zeroSHA     = "0000000000000000000000000000000000000000"
)

// fixtureMR is what every merge_request_*.json fixture holds apart from its
// action and state: the files differ only there.
func fixtureMR(action, state string) *lifecycle.MergeRequest {
	return &lifecycle.MergeRequest{
		IID: 1, Action: action, State: state,
		SourceBranch: "ms-viewport", TargetBranch: "master",
		SourceProjectID: 14, TargetProjectID: 14,
		HeadSHA:   fixtureHead,
		WasDraft:  true, // changes.draft: true → false in every file
		UpdatedAt: time.Date(2013, 12, 3, 17, 23, 34, 0, time.UTC),
		Title:     "MS-Viewport",
		URL:       "http://example.com/diaspora/merge_requests/1",
	}
}

var fixtureTests = []struct {
	file, header string
	want         lifecycle.Event
}{
	{"push.json", "Push Hook", lifecycle.Event{Kind: lifecycle.KindPush, ObjectKind: "push", ProjectID: 15, DefaultBranch: "master", Ref: "master",
		Before: "95790bf891e76fee5e1747ab589903a6a1f80f22", After: fixtureHead}},
	{"push_branch_created.json", "Push Hook", lifecycle.Event{Kind: lifecycle.KindPush, ObjectKind: "push", ProjectID: 15, DefaultBranch: "master", Ref: "ms-viewport",
		Before: zeroSHA, After: fixtureHead}},
	{"push_branch_created_no_commits.json", "Push Hook", lifecycle.Event{Kind: lifecycle.KindPush, ObjectKind: "push", ProjectID: 15, DefaultBranch: "master", Ref: "ms-viewport",
		Before: zeroSHA, After: fixtureHead}},
	{"tag_push.json", "Tag Push Hook", lifecycle.Event{Kind: lifecycle.KindTagPush, ObjectKind: "tag_push", ProjectID: 1, DefaultBranch: "master", Ref: "v1.0.0",
		Before: zeroSHA, After: "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7"}},
	{"merge_request_open.json", "Merge Request Hook", mrFixtureEvent("open", "opened")},
	{"merge_request_update.json", "Merge Request Hook", mrFixtureEvent("update", "opened")}, // no oldrev in this file
	{"merge_request_close.json", "Merge Request Hook", mrFixtureEvent("close", "closed")},
	{"merge_request_approved.json", "Merge Request Hook", mrFixtureEvent("approved", "opened")},
	{"merge_request_unapproved.json", "Merge Request Hook", mrFixtureEvent("unapproved", "opened")},
	{"merge_request_approval.json", "Merge Request Hook", mrFixtureEvent("approval", "opened")},
	{"merge_request_unapproval.json", "Merge Request Hook", mrFixtureEvent("unapproval", "opened")},
	{"pipeline.json", "Pipeline Hook", lifecycle.Event{Kind: lifecycle.KindOther, ObjectKind: "pipeline"}},
	{"job.json", "Job Hook", lifecycle.Event{Kind: lifecycle.KindOther, ObjectKind: "build"}},
	{"deployment.json", "Deployment Hook", lifecycle.Event{Kind: lifecycle.KindOther, ObjectKind: "deployment"}},
}

func mrFixtureEvent(action, state string) lifecycle.Event {
	// project.id (1) and target_project_id (14) disagree in GitLab's example payload.
	return lifecycle.Event{Kind: lifecycle.KindMergeRequest, ObjectKind: "merge_request", ProjectID: 1, DefaultBranch: "master", Ref: "ms-viewport", MR: fixtureMR(action, state)}
}

func readFixture(t testing.TB, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureDir, file))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseEventFixtures(t *testing.T) {
	for _, tt := range fixtureTests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := ParseEvent(tt.header, readFixture(t, tt.file))
			if err != nil {
				t.Fatalf("ParseEvent: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseEvent =\n%+v\nwant\n%+v", describe(got), describe(tt.want))
			}
		})
	}
}

// Every fixture file must have a row above, so a new one cannot go untested.
func TestEveryFixtureIsTested(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(fixtureDir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	tested := map[string]bool{}
	for _, tt := range fixtureTests {
		tested[tt.file] = true
	}
	for _, f := range files {
		if !tested[filepath.Base(f)] {
			t.Errorf("fixture %s has no row in fixtureTests", filepath.Base(f))
		}
	}
}

// The fallback decoder must read the same fields as client-go does when
// client-go succeeds, or events would change meaning with one odd field.
func TestLenientDecoderAgreesWithClientGo(t *testing.T) {
	for _, tt := range fixtureTests {
		kind := tt.want.Kind
		if kind == lifecycle.KindOther {
			continue
		}
		body := readFixture(t, tt.file)
		e, err := parseClientGo(kind, body)
		if err != nil {
			t.Errorf("%s: client-go cannot parse it: %v", tt.file, err)
			continue
		}
		switch e := e.(type) {
		case *gitlab.MergeEvent:
			var lenient mergeRequestFields
			if msg := decodeLenient(body, &lenient); msg != "" {
				t.Fatalf("%s: %s", tt.file, msg)
			}
			if got := fromClientGoMerge(e); !reflect.DeepEqual(got, lenient) {
				t.Errorf("%s: client-go %+v, lenient %+v", tt.file, got, lenient)
			}
		case *gitlab.PushEvent, *gitlab.TagEvent:
			lenient, msg := readPush(body)
			if msg != "" {
				t.Fatalf("%s: %s", tt.file, msg)
			}
			var std pushFields // encoding/json, which client-go's types go through
			if msg := decodeLenient(body, &std); msg != "" || !reflect.DeepEqual(std, lenient) {
				t.Errorf("%s: encoding/json %+v (%s), readPush %+v", tt.file, std, msg, lenient)
			}
			want := clientGoPush(e)
			if lenient.Ref != want.Ref || lenient.Before != want.Before || lenient.After != want.After || lenient.ProjectID != want.ProjectID {
				t.Errorf("%s: client-go %+v, readPush %+v", tt.file, want, lenient)
			}
		default:
			t.Errorf("%s: unexpected client-go type %T", tt.file, e)
		}
	}
}

// patch returns the fixture with top-level or object_attributes keys replaced.
func patch(t *testing.T, file string, top, attrs map[string]any) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(readFixture(t, file), &m); err != nil {
		t.Fatal(err)
	}
	for k, v := range top {
		m[k] = v
	}
	if oa, ok := m["object_attributes"].(map[string]any); ok {
		for k, v := range attrs {
			oa[k] = v
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseEventRejectsBodiesThatAreNotObjects(t *testing.T) {
	for _, body := range []string{"", "not json", "[1,2]", "null", `"push"`, "42", `{"a":`, `{} {}`} {
		if ev, err := ParseEvent("Push Hook", []byte(body)); err == nil {
			t.Errorf("ParseEvent(%q) = %+v, nil; want an error (answered 400)", body, ev)
		}
	}
}

func TestParseEventIsLenient(t *testing.T) {
	tests := []struct {
		name, header string
		body         []byte
		check        func(t *testing.T, ev lifecycle.Event)
	}{
		{"unknown event type is other, named by object_kind", "Emoji Hook", []byte(`{"object_kind":"emoji","x":null}`),
			wantOther("emoji", "")},
		{"event without object_kind is named by its header", "Feature Flag Hook", []byte(`{}`),
			wantOther("Feature Flag Hook", "")},
		{"note on a merge request is other", "Note Hook", []byte(`{"object_kind":"note","object_attributes":{"noteable_type":"MergeRequest"}}`),
			wantOther("note", "")},
		{"push without a header is recognised by object_kind", "", readFixture(t, "push.json"),
			func(t *testing.T, ev lifecycle.Event) { wantKind(t, ev, lifecycle.KindPush) }},
		{"system hook carrying a merge request is recognised", "System Hook", readFixture(t, "merge_request_open.json"),
			func(t *testing.T, ev lifecycle.Event) { wantKind(t, ev, lifecycle.KindMergeRequest) }},
		{"empty push object names the missing ref", "Push Hook", []byte(`{}`),
			wantOther("Push Hook", "ref: missing")},
		{"mistyped ref is named", "Push Hook", patch(t, "push.json", map[string]any{"ref": 5}, nil),
			wantOther("push", "ref")},
		{"tag ref in a push hook is not a branch", "Push Hook", patch(t, "push.json", map[string]any{"ref": "refs/tags/v1"}, nil),
			wantOther("push", "does not start with refs/heads/")},
		{"missing after is named", "Push Hook", patch(t, "push.json", map[string]any{"after": nil}, nil),
			wantOther("push", "after: missing")},
		{"commit timestamps client-go cannot read do not matter", "Push Hook",
			patch(t, "push.json", map[string]any{"commits": []any{map[string]any{"timestamp": "2011-12-12 14:27:31 UTC"}}}, nil),
			func(t *testing.T, ev lifecycle.Event) {
				wantKind(t, ev, lifecycle.KindPush)
				wantEq(t, ev.Ref, "master")
			}},
		{"null project_id falls back to project.id", "Push Hook", patch(t, "push.json", map[string]any{"project_id": nil}, nil),
			func(t *testing.T, ev lifecycle.Event) { wantEq(t, ev.ProjectID, int64(15)) }},
		{"merge request with a numeric approvals_before_merge still parses", "Merge Request Hook",
			patch(t, "merge_request_open.json", nil, map[string]any{"approvals_before_merge": 2}),
			func(t *testing.T, ev lifecycle.Event) {
				wantKind(t, ev, lifecycle.KindMergeRequest)
				wantEq(t, ev.MR.IID, int64(1))
			}},
		{"string iid is named", "Merge Request Hook", patch(t, "merge_request_open.json", nil, map[string]any{"iid": "1"}),
			wantOther("merge_request", "object_attributes.iid")},
		{"null object_attributes names the iid", "Merge Request Hook", patch(t, "merge_request_open.json", map[string]any{"object_attributes": nil}, nil),
			wantOther("merge_request", "object_attributes.iid: missing")},
		{"open without last_commit names it", "Merge Request Hook", patch(t, "merge_request_open.json", nil, map[string]any{"last_commit": nil}),
			wantOther("merge_request", "last_commit.id: missing")},
		{"close without last_commit is fine", "Merge Request Hook", patch(t, "merge_request_close.json", nil, map[string]any{"last_commit": nil}),
			func(t *testing.T, ev lifecycle.Event) { wantKind(t, ev, lifecycle.KindMergeRequest) }},
		{"GitLab's webhook time format is read", "Merge Request Hook",
			patch(t, "merge_request_update.json", nil, map[string]any{"updated_at": "2017-09-15 16:52:00 UTC", "oldrev": "abc"}),
			func(t *testing.T, ev lifecycle.Event) {
				wantEq(t, ev.MR.UpdatedAt, time.Date(2017, 9, 15, 16, 52, 0, 0, time.UTC))
				wantEq(t, ev.MR.OldRev, "abc")
			}},
		{"unreadable updated_at is zero", "Merge Request Hook", patch(t, "merge_request_open.json", nil, map[string]any{"updated_at": "yesterday"}),
			func(t *testing.T, ev lifecycle.Event) { wantEq(t, ev.MR.UpdatedAt, time.Time{}) }},
		{"work_in_progress counts as draft", "Merge Request Hook",
			patch(t, "merge_request_open.json", nil, map[string]any{"draft": nil, "work_in_progress": true}),
			func(t *testing.T, ev lifecycle.Event) { wantEq(t, ev.MR.Draft, true) }},
		{"a draft title before the change means it was a draft", "Merge Request Hook",
			patch(t, "merge_request_update.json", map[string]any{"changes": map[string]any{
				"title": map[string]any{"previous": "  [Draft] MS-Viewport", "current": "MS-Viewport"}}}, nil),
			func(t *testing.T, ev lifecycle.Event) { wantEq(t, ev.MR.WasDraft, true) }},
		{"no draft change means it was not a draft", "Merge Request Hook",
			patch(t, "merge_request_update.json", map[string]any{"changes": map[string]any{}}, nil),
			func(t *testing.T, ev lifecycle.Event) { wantEq(t, ev.MR.WasDraft, false) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := ParseEvent(tt.header, tt.body)
			if err != nil {
				t.Fatalf("ParseEvent: %v", err)
			}
			tt.check(t, ev)
		})
	}
}

func wantOther(objectKind, invalid string) func(*testing.T, lifecycle.Event) {
	return func(t *testing.T, ev lifecycle.Event) {
		t.Helper()
		if ev.Kind != lifecycle.KindOther || ev.ObjectKind != objectKind || !strings.Contains(ev.Invalid, invalid) || (invalid == "") != (ev.Invalid == "") {
			t.Errorf("got %+v; want lifecycle.Kind other, ObjectKind %q, Invalid containing %q", ev, objectKind, invalid)
		}
	}
}

func wantKind(t *testing.T, ev lifecycle.Event, k lifecycle.Kind) {
	t.Helper()
	if ev.Kind != k || ev.Invalid != "" {
		t.Fatalf("got %+v; want lifecycle.Kind %s", ev, k)
	}
}

func wantEq[T comparable](t *testing.T, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("got %v, want %v", got, want)
	}
}

func describe(ev lifecycle.Event) any {
	type flat struct {
		lifecycle.Event
		MR lifecycle.MergeRequest
	}
	f := flat{Event: ev}
	if ev.MR != nil {
		f.MR = *ev.MR
	}
	return f
}

func FuzzParseEvent(f *testing.F) {
	for _, tt := range fixtureTests {
		f.Add(tt.header, readFixture(f, tt.file))
	}
	f.Add("Push Hook", []byte(`{"ref":"refs/heads/x","before":"0","after":"1"}`))
	f.Add("Merge Request Hook", []byte(`{"object_attributes":{"iid":1,"action":"close"}}`))
	f.Add("", []byte(`[]`))
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		ev, err := ParseEvent(header, body)
		if err != nil {
			return
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal(body, &obj) != nil || obj == nil {
			t.Fatalf("accepted a body that is not a JSON object: %q", body)
		}
		switch ev.Kind {
		case lifecycle.KindPush, lifecycle.KindTagPush:
			if ev.Ref == "" || ev.Before == "" || ev.After == "" || ev.Invalid != "" {
				t.Fatalf("incomplete %s event: %+v", ev.Kind, ev)
			}
		case lifecycle.KindMergeRequest:
			if ev.MR == nil || ev.MR.IID <= 0 || ev.MR.Action == "" || ev.Invalid != "" {
				t.Fatalf("incomplete merge request event: %+v", ev)
			}
		case lifecycle.KindOther:
		default:
			t.Fatalf("unknown kind %q", ev.Kind)
		}
		opt := lifecycle.Options{DefaultBranch: "main", FetchBranches: true, PruneBranches: true, BuildMergeRequests: true, BuildTags: "*"}
		acts := lifecycle.Decide(ev, opt, map[string]lifecycle.Env{"main": {Name: "main", Kind: lifecycle.KindBranch, State: lifecycle.StateActive}})
		if len(acts) != 1 || acts[0].Reason == "" {
			t.Fatalf("Decide(%+v) = %+v; want one action with a reason", ev, acts)
		}
	})
}

// One row per fixture: what glenv does with GitLab's example payloads.
func TestDecideFixtures(t *testing.T) {
	opt := lifecycle.Options{DefaultBranch: "main", ProjectID: 7, FetchBranches: true, PruneBranches: true,
		BuildMergeRequests: true, MergeRequestsCloneParentData: true, BuildTags: "v*"}
	opt.DefaultBranch, opt.ProjectID, opt.BuildTags = "master", 0, "v*"
	existing := map[string]lifecycle.Env{
		"master": {Name: "master", Kind: lifecycle.KindBranch, Ref: "master", State: lifecycle.StateActive, HeadSHA: "95790bf891e76fee5e1747ab589903a6a1f80f22",
			SeenSHAs: []string{"95790bf891e76fee5e1747ab589903a6a1f80f22"}},
		"mr-1": {Name: "mr-1", Kind: lifecycle.KindMR, Ref: "ms-viewport", Parent: "master", State: lifecycle.StateActive, HeadSHA: strings.Repeat("a", 40), MRIID: 1,
			MRUpdatedAt: time.Date(2005, 1, 1, 10, 0, 0, 0, time.UTC)},
	}
	want := map[string]lifecycle.ActionType{
		"push.json":                           lifecycle.ActionDeploy, // master is active
		"push_branch_created.json":            lifecycle.ActionCreate,
		"push_branch_created_no_commits.json": lifecycle.ActionCreate,
		"tag_push.json":                       lifecycle.ActionCreate,
		"merge_request_open.json":             lifecycle.ActionDeploy, // mr-1 exists at another head
		"merge_request_update.json":           lifecycle.ActionDeploy,
		"merge_request_close.json":            lifecycle.ActionDelete,
		"merge_request_approved.json":         lifecycle.ActionIgnore,
		"merge_request_unapproved.json":       lifecycle.ActionIgnore,
		"merge_request_approval.json":         lifecycle.ActionIgnore,
		"merge_request_unapproval.json":       lifecycle.ActionIgnore,
		"pipeline.json":                       lifecycle.ActionIgnore,
		"job.json":                            lifecycle.ActionIgnore,
		"deployment.json":                     lifecycle.ActionIgnore,
	}
	for _, tt := range fixtureTests {
		ev, err := ParseEvent(tt.header, readFixture(t, tt.file))
		if err != nil {
			t.Fatal(err)
		}
		got := lifecycle.Decide(ev, opt, existing)
		if len(got) != 1 || got[0].Type != want[tt.file] {
			t.Errorf("%s: got %+v, want %s", tt.file, got, want[tt.file])
		}
	}
	// With the integration's project known, GitLab's example MR (source and
	// target project 14, hook project 1) comes from another project.
	opt.ProjectID = 1
	ev, _ := ParseEvent("Merge Request Hook", readFixture(t, "merge_request_open.json"))
	if got := lifecycle.Decide(ev, opt, map[string]lifecycle.Env{}); got[0].Type != lifecycle.ActionIgnore || !strings.Contains(got[0].Reason, "fork") {
		t.Errorf("merge_request_open.json for project 1: got %+v, want ignored as a fork", got)
	}
}

func clientGoPush(e any) pushFields {
	switch e := e.(type) {
	case *gitlab.PushEvent:
		return pushFields{ProjectID: e.ProjectID, Ref: e.Ref, Before: e.Before, After: e.After}
	case *gitlab.TagEvent:
		return pushFields{ProjectID: e.ProjectID, Ref: e.Ref, Before: e.Before, After: e.After}
	}
	return pushFields{}
}

// A stored body was checked whole by the receiver: the worker's parse,
// which skips that pass, reads every fixture exactly as ParseEvent does.
func TestParseStoredEventReadsWhatParseEventReads(t *testing.T) {
	for _, tt := range fixtureTests {
		t.Run(tt.file, func(t *testing.T) {
			body := readFixture(t, tt.file)
			want, werr := ParseEvent(tt.header, body)
			got, err := ParseStoredEvent(tt.header, body)
			if (err == nil) != (werr == nil) || !reflect.DeepEqual(got, want) {
				t.Errorf("ParseStoredEvent = %+v, %v; ParseEvent = %+v, %v", describe(got), err, describe(want), werr)
			}
			// ParseStored reads a string without copying it: same event,
			// and the string is left as it was.
			stored := string(body)
			got, err = ParseStored(tt.header, stored)
			if (err == nil) != (werr == nil) || !reflect.DeepEqual(got, want) {
				t.Errorf("ParseStored = %+v, %v; ParseEvent = %+v, %v", describe(got), err, describe(want), werr)
			}
			if stored != string(body) {
				t.Error("ParseStored changed the body it read")
			}
		})
	}
}

// A stored body that is not a JSON object (a dropped body is "") is still
// an error, and one that is not valid JSON never panics the worker.
func TestParseStoredEventRejectsNonObjectsAndNeverPanics(t *testing.T) {
	for _, body := range []string{"", "not json", "[1,2]", "null", `"push"`, "42"} {
		if ev, err := ParseStoredEvent("Push Hook", []byte(body)); err == nil {
			t.Errorf("ParseStoredEvent(%q) = %+v, nil; want an error", body, ev)
		}
		if ev, err := ParseStored("Push Hook", body); err == nil {
			t.Errorf("ParseStored(%q) = %+v, nil; want an error", body, ev)
		}
	}
	for _, body := range []string{`{"a":`, `{} {}`, `{"ref":"refs/heads/x","before":`, `{"object_kind":"merge_request","object_attributes":{`} {
		for _, header := range []string{"Push Hook", "Tag Push Hook", "Merge Request Hook"} {
			ParseStoredEvent(header, []byte(body)) // must return, whatever it reads
			ParseStored(header, body)
		}
	}
}
