package gitlabtest

import (
	"fmt"
	"testing"
	"time"

	gitlab "gitlab.com/gitlab-org/api/client-go/v2"

	"github.com/glenv/glenv/internal/slug"
)

func TestDeploymentRules(t *testing.T) {
	f := newFixture(t)
	ok := map[string]any{"environment": "review/x", "sha": shaMain, "ref": "main", "tag": false, "status": "running"}
	// with overrides parameters of ok; a nil value leaves one out.
	with := func(kv ...any) map[string]any {
		m := map[string]any{}
		for k, v := range ok {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(m, kv[i].(string))
			} else {
				m[kv[i].(string)] = kv[i+1]
			}
		}
		return m
	}
	tests := []struct {
		name   string
		body   map[string]any
		status int
		want   string
	}{
		{"every parameter is required", map[string]any{}, 400,
			`{"error":"environment is missing, sha is missing, ref is missing, tag is missing, status is missing"}`},
		{"tag is required", with("tag", nil), 400, `{"error":"tag is missing"}`},
		{"status must be running, success, failed or canceled", with("status", "created"), 400, `{"error":"status does not have a valid value"}`},
		{"an unknown ref is refused", with("ref", "nope"), 400, `{"message":{"ref":["The branch or tag does not exist"]}}`},
		{"an unknown sha is refused", with("sha", shaOrphan), 400, `{"message":{"sha":["The commit does not exist"]}}`},
		{"an invalid new environment name is refused", with("environment", "/bad"), 400, nameRule},
		{"a tag may be deployed", with("ref", "v1.0.0"), 201, ""},
		{"booleans may be strings", with("tag", "false"), 201, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			expect(t, f.do(t, f.devTok, "POST", "projects/1/deployments", tt.body), tt.status, tt.want)
		})
	}
	t.Run("reporters may not deploy", func(t *testing.T) {
		expect(t, f.do(t, f.reporterTok, "POST", "projects/1/deployments", ok), 403, `{"message":"403 Forbidden"}`)
	})
	t.Run("an unknown sha still leaves the environment created", func(t *testing.T) {
		expect(t, f.do(t, f.devTok, "POST", "projects/1/deployments", with("environment", "review/y", "sha", shaOrphan)), 400, "")
		if envs := f.srv.Environments(f.project.ID); envs[len(envs)-1].Name != "review/y" {
			t.Fatalf("environments = %+v", envs)
		}
	})
}

func TestDeploymentLifecycle(t *testing.T) {
	f := newFixture(t)
	now := time.Date(2025, 5, 1, 10, 0, 0, 0, time.UTC)
	f.srv.SetClock(func() time.Time { return now })
	c := f.client(t, f.devTok)
	deploy := func(status gitlab.DeploymentStatusValue, sha, ref string) *gitlab.Deployment {
		t.Helper()
		now = now.Add(time.Minute)
		d, resp, err := c.Deployments.CreateProjectDeployment("group/app", &gitlab.CreateProjectDeploymentOptions{
			Environment: gitlab.Ptr("review/feature-login"), SHA: gitlab.Ptr(sha), Ref: gitlab.Ptr(ref),
			Tag: gitlab.Ptr(false), Status: gitlab.Ptr(status),
		})
		if err != nil || resp.StatusCode != 201 {
			t.Fatalf("deploy: %v", err)
		}
		return d
	}
	lastDeployment := func() *gitlab.Deployment {
		t.Helper()
		envs := f.srv.Environments(f.project.ID)
		e, _, err := c.Environments.GetEnvironment("group/app", envs[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		return e.LastDeployment
	}

	first := deploy(gitlab.DeploymentStatusRunning, shaFeature, "feature/login")
	t.Run("a deployment creates its environment", func(t *testing.T) {
		envs := f.srv.Environments(f.project.ID)
		if len(envs) != 1 || envs[0].Name != "review/feature-login" || envs[0].Slug != slug.Environment("review/feature-login") ||
			envs[0].Tier != "development" {
			t.Fatalf("environments = %+v", envs)
		}
		if first.IID != 1 || first.ID == first.IID || first.Status != "running" || first.User.Username != "dev" ||
			first.Environment == nil || first.Environment.Name != "review/feature-login" || first.Environment.Slug != envs[0].Slug {
			t.Fatalf("deployment = %+v", first)
		}
	})

	t.Run("a running deployment is not the last deployment", func(t *testing.T) {
		if d := lastDeployment(); d != nil {
			t.Fatalf("last_deployment = %+v", d)
		}
	})

	t.Run("a success becomes the last deployment", func(t *testing.T) {
		now = now.Add(time.Minute)
		d, _, err := c.Deployments.UpdateProjectDeployment("group/app", first.ID, &gitlab.UpdateProjectDeploymentOptions{Status: gitlab.Ptr(gitlab.DeploymentStatusSuccess)})
		if err != nil || d.Status != "success" {
			t.Fatalf("update: %+v, %v", d, err)
		}
		if last := lastDeployment(); last == nil || last.ID != first.ID || last.Environment != nil {
			t.Fatalf("last_deployment = %+v", last)
		}
	})

	t.Run("the newest success replaces it; a failure does not", func(t *testing.T) {
		second := deploy(gitlab.DeploymentStatusSuccess, shaMain, "main")
		deploy(gitlab.DeploymentStatusFailed, shaFeature, "feature/login")
		if last := lastDeployment(); last == nil || last.ID != second.ID || last.IID != 2 {
			t.Fatalf("last_deployment = %+v", last)
		}
	})

	t.Run("repeating the last successful deployment returns it", func(t *testing.T) {
		before := len(f.srv.Deployments(f.project.ID))
		again := deploy(gitlab.DeploymentStatusSuccess, shaMain, "main")
		if again.IID != 2 || len(f.srv.Deployments(f.project.ID)) != before {
			t.Fatalf("again = %+v", again)
		}
	})

	t.Run("status transitions follow the state machine", func(t *testing.T) {
		path := fmt.Sprintf("projects/1/deployments/%d", first.ID)
		expect(t, f.do(t, f.devTok, "PUT", path, map[string]any{"status": "running"}), 400, `{"message":{"status":["cannot transition via \"run\""]}}`)
		expect(t, f.do(t, f.devTok, "PUT", path, map[string]any{"status": "success"}), 400, `{"message":{"status":["cannot transition via \"succeed\""]}}`)
		expect(t, f.do(t, f.devTok, "PUT", path, map[string]any{}), 400, `{"error":"status is missing"}`)
		expect(t, f.do(t, f.devTok, "PUT", path, map[string]any{"status": "canceled"}), 200, "")
		expect(t, f.do(t, f.devTok, "PUT", "projects/1/deployments/99999", map[string]any{"status": "canceled"}), 404, `{"message":"404 Not found"}`)
	})

	t.Run("a successful deployment restarts a stopped environment", func(t *testing.T) {
		env := f.srv.Environments(f.project.ID)[0]
		if _, _, err := c.Environments.StopEnvironment("group/app", env.ID, nil); err != nil {
			t.Fatal(err)
		}
		deploy(gitlab.DeploymentStatusSuccess, shaFeature, "feature/login")
		if got := f.srv.Environments(f.project.ID)[0].State; got != "available" {
			t.Fatalf("state = %s", got)
		}
	})

	t.Run("deployments list by environment and status", func(t *testing.T) {
		all, resp, err := c.Deployments.ListProjectDeployments("group/app", nil)
		if err != nil || len(all) != 4 || resp.TotalItems != 4 || all[0].ID != first.ID {
			t.Fatalf("all = %d, %v", len(all), err)
		}
		ok, _, err := c.Deployments.ListProjectDeployments("group/app", &gitlab.ListProjectDeploymentsOptions{
			Environment: gitlab.Ptr("review/feature-login"), Status: gitlab.Ptr("success"), Sort: gitlab.Ptr("desc"),
		})
		if err != nil || len(ok) != 2 || ok[0].ID < ok[1].ID {
			t.Fatalf("success = %v, %v", ok, err)
		}
		none, _, err := c.Deployments.ListProjectDeployments("group/app", &gitlab.ListProjectDeploymentsOptions{Environment: gitlab.Ptr("nope")})
		if err != nil || len(none) != 0 {
			t.Fatalf("none = %v, %v", none, err)
		}
		expect(t, f.do(t, f.devTok, "GET", "projects/1/deployments?status=done", nil), 400, `{"error":"status does not have a valid value"}`)
		got, _, err := c.Deployments.GetProjectDeployment("group/app", first.ID)
		if err != nil || got.IID != 1 || got.Status != "canceled" {
			t.Fatalf("get = %+v, %v", got, err)
		}
	})
}
