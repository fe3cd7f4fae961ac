package gitlabtest

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	gitlab "gitlab.com/gitlab-org/api/client-go/v2"

	"github.com/glenv/glenv/internal/gitlabapi"
)

const nameRule = `{"message":{"name":["can contain only letters, digits, '-', '_', '/', '$', '{', '}', '.', and spaces, but it cannot start or end with '/'"]}}`

func TestEnvironmentCreateRules(t *testing.T) {
	f := newFixture(t)
	expect(t, f.do(t, f.devTok, "POST", "projects/1/environments", map[string]any{"name": "taken"}), 201, "")
	tests := []struct {
		name   string
		body   map[string]any
		status int
		want   string
	}{
		{"name is required", map[string]any{}, 400, `{"error":"name is missing"}`},
		{"a name may not start with a slash", map[string]any{"name": "/review"}, 400, nameRule},
		{"a name may not end with a slash", map[string]any{"name": "review/"}, 400, nameRule},
		{"a name may not hold other characters", map[string]any{"name": "review/a:b"}, 400, nameRule},
		{"an empty name is blank and malformed", map[string]any{"name": ""}, 400,
			`{"message":{"name":["can't be blank","can contain only letters, digits, '-', '_', '/', '$', '{', '}', '.', and spaces, but it cannot start or end with '/'"]}}`},
		{"a name over 255 characters is too long", map[string]any{"name": strings.Repeat("a", 256)}, 400,
			`{"message":{"name":["is too long (maximum is 255 characters)"]}}`},
		{"a name is unique in the project, and so its slug", map[string]any{"name": "taken"}, 400,
			`{"message":{"name":["has already been taken"],"slug":["has already been taken"]}}`},
		{"the slug cannot be sent", map[string]any{"name": "x", "slug": "x"}, 400, `{"error":"slug is automatically generated and cannot be changed"}`},
		{"the tier must be known", map[string]any{"name": "x", "tier": "prod"}, 400, `{"error":"tier does not have a valid value"}`},
		{"Grape errors are joined", map[string]any{"slug": "x", "tier": "prod"}, 400,
			`{"error":"name is missing, slug is automatically generated and cannot be changed, tier does not have a valid value"}`},
		{"javascript: URLs are refused", map[string]any{"name": "x", "external_url": "javascript:alert(1)"}, 400,
			`{"message":{"external_url":["javascript scheme is not allowed"]}}`},
		{"an external_url over 255 characters is refused", map[string]any{"name": "x", "external_url": "https://x.example/" + strings.Repeat("a", 240)}, 400,
			`{"message":{"external_url":["is too long (maximum is 255 characters)"]}}`},
		{"a description over 10,000 characters is refused", map[string]any{"name": "x", "description": strings.Repeat("d", 10001)}, 400,
			`{"message":{"description":["is too long (maximum is 10000 characters)"]}}`},
		{"auto_stop_setting must be known", map[string]any{"name": "x", "auto_stop_setting": "never"}, 400, `{"error":"auto_stop_setting does not have a valid value"}`},
		{"a cluster agent must exist", map[string]any{"name": "x", "cluster_agent_id": 5}, 400,
			`{"message":"400 Bad request - cluster agent doesn't exist or cannot be associated with this environment"}`},
		{"reporters may not create environments", map[string]any{"name": "x"}, 403, `{"message":"403 Forbidden"}`},
		{"spaces, dots and braces are allowed", map[string]any{"name": "Review App ${CI}.v2"}, 201, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := f.devTok
			if strings.HasPrefix(tt.name, "reporters") {
				tok = f.reporterTok
			}
			expect(t, f.do(t, tok, "POST", "projects/1/environments", tt.body), tt.status, tt.want)
		})
	}
}

func TestEnvironmentLifecycle(t *testing.T) {
	f := newFixture(t)
	c := f.client(t, f.devTok)

	var env *gitlab.Environment
	t.Run("a created environment gets a slug, a guessed tier and state available", func(t *testing.T) {
		var err error
		var resp *gitlab.Response
		env, resp, err = c.Environments.CreateEnvironment("group/app", &gitlab.CreateEnvironmentOptions{
			Name: gitlab.Ptr("review/ms-viewport"), ExternalURL: gitlab.Ptr("https://ms-viewport.preview.example"),
		})
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 201 || env.Slug != "review-ms-viewpor-8tdrnr" || env.Tier != "development" || env.State != "available" ||
			env.ExternalURL != "https://ms-viewport.preview.example" || env.AutoStopSetting != "always" || env.AutoStopAt != nil ||
			env.Project == nil || env.Project.PathWithNamespace != "group/app" || env.LastDeployment != nil || env.CreatedAt == nil {
			t.Fatalf("environment = %+v", env)
		}
	})

	t.Run("tiers are guessed from the name or taken as sent", func(t *testing.T) {
		for name, want := range map[string]string{"production": "production", "staging": "staging", "qa": "testing", "canary": "other"} {
			e, _, err := c.Environments.CreateEnvironment("group/app", &gitlab.CreateEnvironmentOptions{Name: gitlab.Ptr(name)})
			if err != nil || e.Tier != want {
				t.Fatalf("%s: tier %q, %v", name, e.Tier, err)
			}
		}
		e, _, err := c.Environments.CreateEnvironment("group/app", &gitlab.CreateEnvironmentOptions{Name: gitlab.Ptr("live-ish"), Tier: gitlab.Ptr("other")})
		if err != nil || e.Tier != "other" {
			t.Fatalf("explicit tier: %+v %v", e, err)
		}
	})

	t.Run("GET one shows last_deployment null and no project", func(t *testing.T) {
		m := fields(t, f.do(t, f.devTok, "GET", fmt.Sprintf("projects/1/environments/%d", env.ID), nil))
		ld, has := m["last_deployment"]
		if !has || ld != nil {
			t.Fatalf("last_deployment = %v (present %v)", ld, has)
		}
		if _, has := m["project"]; has {
			t.Fatalf("project present: %v", m)
		}
		for _, k := range []string{"auto_stop_at", "description"} {
			if v, has := m[k]; !has || v != nil {
				t.Fatalf("%s = %v (present %v)", k, v, has)
			}
		}
		// Without a cluster agent these are not exposed at all
		// (lib/api/entities/environment.rb:13-15).
		for _, k := range []string{"cluster_agent", "kubernetes_namespace", "flux_resource_path"} {
			if v, has := m[k]; has {
				t.Fatalf("%s = %v, want it absent", k, v)
			}
		}
	})

	t.Run("update changes external_url, tier and description but never the name", func(t *testing.T) {
		e, _, err := c.Environments.EditEnvironment("group/app", env.ID, &gitlab.EditEnvironmentOptions{
			Name: gitlab.Ptr("renamed"), ExternalURL: gitlab.Ptr("https://new.example"), Tier: gitlab.Ptr("staging"),
			Description: gitlab.Ptr("preview of !1"),
		})
		if err != nil || e.Name != "review/ms-viewport" || e.Slug != env.Slug || e.ExternalURL != "https://new.example" ||
			e.Tier != "staging" || e.Description != "preview of !1" {
			t.Fatalf("environment = %+v, %v", e, err)
		}
		expect(t, f.do(t, f.devTok, "PUT", fmt.Sprintf("projects/1/environments/%d", env.ID), map[string]any{"slug": "x"}), 400,
			`{"error":"slug is automatically generated and cannot be changed"}`)
		expect(t, f.do(t, f.devTok, "PUT", fmt.Sprintf("projects/1/environments/%d", env.ID), map[string]any{"tier": "x"}), 400,
			`{"error":"tier does not have a valid value"}`)
	})

	t.Run("an available environment cannot be deleted", func(t *testing.T) {
		expect(t, f.do(t, f.devTok, "DELETE", fmt.Sprintf("projects/1/environments/%d", env.ID), nil), 403, `{"message":"403 Forbidden"}`)
	})

	t.Run("stopping answers 200 with state stopped", func(t *testing.T) {
		e, resp, err := c.Environments.StopEnvironment("group/app", env.ID, &gitlab.StopEnvironmentOptions{Force: gitlab.Ptr(true)})
		if err != nil || resp.StatusCode != 200 || e.State != "stopped" {
			t.Fatalf("stop: %+v, %v", e, err)
		}
	})

	t.Run("a stopped environment is deleted with 204", func(t *testing.T) {
		resp, err := c.Environments.DeleteEnvironment("group/app", env.ID)
		if err != nil || resp.StatusCode != 204 {
			t.Fatalf("delete: %v", err)
		}
		_, _, err = c.Environments.GetEnvironment("group/app", env.ID)
		if !errors.Is(err, gitlab.ErrNotFound) {
			t.Fatalf("get after delete: %v", err)
		}
		expect(t, f.do(t, f.devTok, "GET", fmt.Sprintf("projects/1/environments/%d", env.ID), nil), 404, `{"message":"404 Not found"}`)
	})
}

func TestEnvironmentList(t *testing.T) {
	f := newFixture(t)
	for _, name := range []string{"production", "review/one", "review/two", "Review App"} {
		expect(t, f.do(t, f.devTok, "POST", "projects/1/environments", map[string]any{"name": name}), 201, "")
	}
	expect(t, f.do(t, f.devTok, "POST", "projects/1/environments/2/stop", nil), 200, "")

	tests := []struct {
		name, query string
		status      int
		want        string // exact body on error, else the names in order
	}{
		{"all environments by id", "", 200, "production,review/one,review/two,Review App"},
		{"name matches exactly", "?name=review/one", 200, "review/one"},
		{"search matches a prefix, ignoring case", "?search=rev", 200, "review/one,review/two,Review App"},
		{"states filters by state", "?states=stopped", 200, "review/one"},
		{"name and search are mutually exclusive", "?name=a&search=abc", 400, `{"error":"name, search cannot be used together"}`},
		{"search needs 3 characters", "?search=re", 400, `{"message":"400 Bad request - Search query is less than 3 characters"}`},
		{"states must be a state", "?states=gone", 400, `{"error":"states does not have a valid value"}`},
		{"the list is paginated", "?per_page=2&page=2", 200, "review/two,Review App"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.do(t, f.devTok, "GET", "projects/1/environments"+strings.ReplaceAll(tt.query, "/", "%2F"), nil)
			if tt.status != 200 {
				expect(t, r, tt.status, tt.want)
				return
			}
			expect(t, r, 200, "")
			envs, _, err := f.client(t, f.devTok).Environments.ListEnvironments("group/app", listOptions(tt.query))
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, e := range envs {
				names = append(names, e.Name)
				if e.LastDeployment != nil || e.Project == nil {
					t.Fatalf("list entity = %+v", e)
				}
			}
			if got := strings.Join(names, ","); got != tt.want {
				t.Fatalf("names = %s, want %s", got, tt.want)
			}
		})
	}
}

func listOptions(query string) *gitlab.ListEnvironmentsOptions {
	q, _ := url.ParseQuery(strings.TrimPrefix(query, "?"))
	o := &gitlab.ListEnvironmentsOptions{}
	if v := q.Get("name"); v != "" {
		o.Name = &v
	}
	if v := q.Get("search"); v != "" {
		o.Search = &v
	}
	if v := q.Get("states"); v != "" {
		o.States = &v
	}
	if q.Get("per_page") != "" {
		o.PerPage, o.Page = 2, 2
	}
	return o
}

func TestEnvironmentStopStale(t *testing.T) {
	f := newFixture(t)
	now := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	f.srv.SetClock(func() time.Time { return now })
	for _, name := range []string{"review/old", "review/deployed", "review/fresh"} {
		expect(t, f.do(t, f.devTok, "POST", "projects/1/environments", map[string]any{"name": name}), 201, "")
	}
	now = now.AddDate(0, 0, 25)
	expect(t, f.do(t, f.devTok, "POST", "projects/1/deployments",
		map[string]any{"environment": "review/deployed", "sha": shaMain, "ref": "main", "tag": false, "status": "success"}), 201, "")
	expect(t, f.do(t, f.devTok, "POST", "projects/1/environments", map[string]any{"name": "review/new"}), 201, "")
	now = now.AddDate(0, 0, 8) // before = now - 8 days falls between the two batches

	stale := func(before time.Time) string {
		return "projects/1/environments/stop_stale?before=" + url.QueryEscape(before.Format(time.RFC3339))
	}
	tests := []struct {
		name, path string
		status     int
		want       string
	}{
		{"before is required", "projects/1/environments/stop_stale", 400, `{"error":"before is missing"}`},
		{"before must be a date", "projects/1/environments/stop_stale?before=soon", 400, `{"error":"before is invalid"}`},
		{"before must be at least a week ago", stale(now.AddDate(0, 0, -6)), 400, `{"message":"400 Bad request - Invalid Date"}`},
		{"before must be at most 10 years ago", stale(now.AddDate(-10, 0, -1)), 400, `{"message":"400 Bad request - Invalid Date"}`},
		{"reporters may not stop stale environments", stale(now.AddDate(0, 0, -8)), 403, `{"message":"403 Forbidden"}`},
		{"developers may not either", stale(now.AddDate(0, 0, -8)), 403, `{"message":"403 Forbidden"}`},
		{"stale environments are stopped", stale(now.AddDate(0, 0, -8)), 200, `{"message":"Successfully requested stop for all stale environments"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := f.maintainerTok // only Maintainers may (authorize! :stop_environment, user_project)
			switch {
			case strings.HasPrefix(tt.name, "reporters"):
				tok = f.reporterTok
			case strings.HasPrefix(tt.name, "developers"):
				tok = f.devTok
			}
			expect(t, f.do(t, tok, "POST", tt.path, nil), tt.status, tt.want)
		})
	}
	states := map[string]string{}
	for _, e := range f.srv.Environments(f.project.ID) {
		states[e.Name] = e.State
	}
	want := map[string]string{"review/old": "stopped", "review/fresh": "stopped", "review/deployed": "available", "review/new": "available"}
	if fmt.Sprint(states) != fmt.Sprint(want) {
		t.Fatalf("states = %v, want %v", states, want)
	}
}

func TestEnvironmentDeleteReviewApps(t *testing.T) {
	f := newFixture(t)
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	f.srv.SetClock(func() time.Time { return now })
	for _, name := range []string{"review/a", "review/b", "review/running", "production", "reviewer"} {
		expect(t, f.do(t, f.devTok, "POST", "projects/1/environments", map[string]any{"name": name}), 201, "")
	}
	for _, e := range f.srv.Environments(f.project.ID) {
		if e.Name != "review/running" {
			expect(t, f.do(t, f.devTok, "POST", fmt.Sprintf("projects/1/environments/%d/stop", e.ID), nil), 200, "")
		}
	}
	now = now.AddDate(0, 0, 31)

	t.Run("a dry run lists stopped review apps older than 30 days", func(t *testing.T) {
		r := f.do(t, f.devTok, "DELETE", "projects/1/environments/review_apps", nil)
		expect(t, r, 200, "")
		if !strings.Contains(r.body, `"name":"review/a"`) || !strings.Contains(r.body, `"name":"review/b"`) ||
			strings.Count(r.body, `"name"`) != 2 || !strings.Contains(r.body, `"unprocessable_entries":[]`) {
			t.Fatalf("body = %s", r.body)
		}
		if len(f.srv.Environments(f.project.ID)) != 5 {
			t.Fatal("a dry run deleted something")
		}
	})

	t.Run("limit must be 1 to 1000", func(t *testing.T) {
		expect(t, f.do(t, f.devTok, "DELETE", "projects/1/environments/review_apps?limit=0", nil), 400, `{"error":"limit does not have a valid value"}`)
	})

	t.Run("nothing older than before is a 400", func(t *testing.T) {
		before := url.QueryEscape(now.AddDate(0, 0, -40).Format(time.RFC3339))
		expect(t, f.do(t, f.devTok, "DELETE", "projects/1/environments/review_apps?before="+before, nil), 400,
			`{"message":{"scheduled_entries":[],"unprocessable_entries":[],"message":"`+gitlabapi.NoneFound+`"}}`)
	})

	t.Run("reporters are refused with 401", func(t *testing.T) {
		expect(t, f.do(t, f.reporterTok, "DELETE", "projects/1/environments/review_apps", nil), 401,
			`{"message":{"scheduled_entries":[],"unprocessable_entries":[],"message":"You do not have permission to destroy environments in this project"}}`)
	})

	t.Run("a real run schedules deletion a week later", func(t *testing.T) {
		expect(t, f.do(t, f.devTok, "DELETE", "projects/1/environments/review_apps?dry_run=false&limit=1", nil), 200, "")
		var scheduled []string
		for _, e := range f.srv.Environments(f.project.ID) {
			if e.AutoDeleteAt != nil {
				scheduled = append(scheduled, e.Name)
			}
		}
		if fmt.Sprint(scheduled) != "[review/a]" {
			t.Fatalf("scheduled = %v", scheduled)
		}
		now = now.AddDate(0, 0, 7)
		if n := len(f.srv.Environments(f.project.ID)); n != 4 {
			t.Fatalf("%d environments left after the week", n)
		}
	})
}
