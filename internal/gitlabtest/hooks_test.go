package gitlabtest

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	gitlab "gitlab.com/gitlab-org/api/client-go/v2"
)

func TestHooks(t *testing.T) {
	f := newFixture(t)
	c := f.client(t, f.maintainerTok)

	var hookID int64
	t.Run("creating a hook applies GitLab's defaults and never returns the token", func(t *testing.T) {
		h, resp, err := c.Projects.AddProjectHook("group/app", &gitlab.AddProjectHookOptions{
			URL: gitlab.Ptr("https://glenv.example/webhook"), Token: gitlab.Ptr("s3cret"),
			MergeRequestsEvents: gitlab.Ptr(true), Name: gitlab.Ptr("glenv"),
		})
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 201 || !h.PushEvents || !h.EnableSSLVerification || !h.MergeRequestsEvents || h.TagPushEvents ||
			h.AlertStatus != "executable" || h.DisabledUntil != nil || h.ProjectID != f.project.ID || h.CreatedAt == nil ||
			h.Name != "glenv" || !h.TokenPresent {
			t.Fatalf("hook = %+v", h)
		}
		hookID = h.ID
		r := f.do(t, f.maintainerTok, "GET", fmt.Sprintf("projects/1/hooks/%d", h.ID), nil)
		if _, ok := fields(t, r)["token"]; ok || strings.Contains(r.body, "s3cret") {
			t.Fatalf("token leaked: %s", r.body)
		}
		if got := f.srv.Hooks(f.project.ID); len(got) != 1 || got[0].Token != "s3cret" {
			t.Fatalf("snapshot = %+v", got)
		}
	})

	t.Run("editing changes only what is sent", func(t *testing.T) {
		h, _, err := c.Projects.EditProjectHook("group/app", hookID, &gitlab.EditProjectHookOptions{PushEvents: gitlab.Ptr(false)})
		if err != nil {
			t.Fatal(err)
		}
		if h.PushEvents || !h.MergeRequestsEvents || h.URL != "https://glenv.example/webhook" {
			t.Fatalf("hook = %+v", h)
		}
		hooks, _, err := c.Projects.ListProjectHooks("group/app", nil)
		if err != nil || len(hooks) != 1 || hooks[0].PushEvents {
			t.Fatalf("list = %v, %v", hooks, err)
		}
	})

	rules := []struct {
		name, token, method, path string
		body                      any
		status                    int
		want                      string
	}{
		{"url is required", f.maintainerTok, "POST", "projects/1/hooks", map[string]any{"push_events": true}, 400, `{"error":"url is missing"}`},
		{"a non-http url is refused", f.maintainerTok, "POST", "projects/1/hooks", map[string]any{"url": "ftp://x.example"}, 422, `{"error":"Invalid url given"}`},
		{"booleans must be booleans", f.maintainerTok, "POST", "projects/1/hooks", map[string]any{"url": "https://x.example", "push_events": "maybe"}, 400, `{"error":"push_events is invalid"}`},
		{"booleans may be strings", f.maintainerTok, "POST", "projects/1/hooks", map[string]any{"url": "https://x.example", "push_events": "false"}, 201, ""},
		{"an edit without parameters is refused", f.maintainerTok, "PUT", "projects/1/hooks/1", map[string]any{}, 400, `{"error":"No parameters provided"}`},
		{"an unknown hook is a plain 404", f.maintainerTok, "GET", "projects/1/hooks/999", nil, 404, `{"message":"404 Not found"}`},
		{"developers may not read hooks", f.devTok, "GET", "projects/1/hooks", nil, 403, `{"message":"403 Forbidden"}`},
		{"developers may not add hooks", f.devTok, "POST", "projects/1/hooks", map[string]any{"url": "https://x.example"}, 403, `{"message":"403 Forbidden"}`},
		{"outsiders do not see the project", f.outsiderTok, "GET", "projects/1/hooks", nil, 404, `{"message":"404 Project Not Found"}`},
		{"an unknown test trigger is refused", f.maintainerTok, "POST", "projects/1/hooks/1/test/bogus", nil, 400, `{"error":"trigger does not have a valid value"}`},
	}
	for _, tt := range rules {
		t.Run(tt.name, func(t *testing.T) {
			expect(t, f.do(t, tt.token, tt.method, tt.path, tt.body), tt.status, tt.want)
		})
	}

	t.Run("a successful test re-enables a disabled hook", func(t *testing.T) {
		until := time.Now().Add(time.Hour)
		f.srv.SetHookAlert(f.project.ID, hookID, "temporarily_disabled", &until)
		h, _, err := c.Projects.GetProjectHook("group/app", hookID)
		if err != nil || h.AlertStatus != "temporarily_disabled" || h.DisabledUntil == nil {
			t.Fatalf("hook = %+v, %v", h, err)
		}
		resp, err := c.Projects.TriggerTestProjectHook("group/app", hookID, gitlab.ProjectHookEventPush)
		if err != nil || resp.StatusCode != 201 {
			t.Fatalf("test: %v", err)
		}
		if got := f.srv.Hooks(f.project.ID)[0]; got.AlertStatus != "executable" || got.DisabledUntil != nil {
			t.Fatalf("hook = %+v", got)
		}
	})

	t.Run("hook tests are limited to 5 per minute", func(t *testing.T) {
		path := fmt.Sprintf("projects/1/hooks/%d/test/push_events", hookID)
		// One test already ran above.
		for range 4 {
			expect(t, f.do(t, f.maintainerTok, "POST", path, nil), 201, `{"message":"201 Created"}`)
		}
		expect(t, f.do(t, f.maintainerTok, "POST", path, nil), 429,
			`{"message":{"error":"This endpoint has been requested too many times. Try again later."}}`)
		expect(t, f.do(t, f.adminTok, "POST", path, nil), 201, "") // the limit is per user
	})

	t.Run("deleting a hook is 204 and it is gone", func(t *testing.T) {
		resp, err := c.Projects.DeleteProjectHook("group/app", hookID)
		if err != nil || resp.StatusCode != 204 {
			t.Fatalf("delete: %v", err)
		}
		if _, _, err := c.Projects.GetProjectHook("group/app", hookID); !errors.Is(err, gitlab.ErrNotFound) {
			t.Fatalf("get after delete: %v", err)
		}
	})

	t.Run("a project holds at most 100 hooks", func(t *testing.T) {
		for len(f.srv.Hooks(f.project.ID)) < 100 {
			expect(t, f.do(t, f.maintainerTok, "POST", "projects/1/hooks", map[string]any{"url": "https://x.example"}), 201, "")
		}
		expect(t, f.do(t, f.maintainerTok, "POST", "projects/1/hooks", map[string]any{"url": "https://x.example"}), 422,
			`{"message":{"base":["Maximum number of project hooks (100) exceeded"]}}`)
		r := f.do(t, f.maintainerTok, "GET", "projects/1/hooks?per_page=100", nil)
		if r.header.Get("X-Total") != "100" || r.header.Get("X-Next-Page") != "" {
			t.Fatalf("headers = %v", r.header)
		}
	})
}
