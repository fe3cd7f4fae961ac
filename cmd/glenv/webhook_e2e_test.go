package main_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	gitlab "gitlab.com/gitlab-org/api/client-go/v2"

	"github.com/glenv/glenv/internal/slug"
	"github.com/glenv/glenv/internal/store"
)

// settle waits until no delivery is waiting to be processed and no deploy or delete is pending.
func (g *glenv) settle(integration string) {
	g.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		var ds []struct {
			Status string `json:"status"`
		}
		var acts []struct {
			State string `json:"state"`
		}
		g.apiGet("/api/v1/deliveries?limit=1000&integration="+integration, &ds)
		g.apiGet("/api/v1/activities?limit=1000&integration="+integration, &acts)
		busy := false
		for _, d := range ds {
			busy = busy || d.Status == "accepted"
		}
		for _, a := range acts {
			busy = busy || a.State == "pending" || a.State == "running"
		}
		if !busy {
			return
		}
		time.Sleep(30 * time.Millisecond)
	}
	g.t.Fatalf("glenv did not settle in 20s\n%s", g.tail())
}

func (g *glenv) apiGet(path string, v any) {
	g.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, g.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		g.t.Fatalf("GET %s: %d", path, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		g.t.Fatal(err)
	}
}

// connected starts glenv with the double's project connected as integration "app".
func connected(t *testing.T, db string, extra ...string) (*glenv, *gitlabWorld, string) {
	gl := newGitLab(t)
	g := startGlenv(t, db)
	var res integrationJSON
	g.mustJSON(&res, addArgs(gl, extra...)...)
	g.settle("app")
	return g, gl, res.WebhookSecret
}

func TestWebhooksDriveTheLifecycle(t *testing.T) {
	g, gl, secret := connected(t, "", "--build-tags", "v*")
	pid := gl.Project.ID
	A, B, C, D := sha("A"), sha("B"), sha("C"), sha("D")
	send := func(event string, p payload, wantCode int) {
		t.Helper()
		code, body := g.deliver("app", secret, event, p, "")
		if code != wantCode {
			t.Fatalf("%s: status %d, want %d: %s", event, code, wantCode, body)
		}
		g.settle("app")
	}
	envs := func() map[string]envJSON { return g.envs("app") }
	expect := func(name, state, head, deployed string) {
		t.Helper()
		e, ok := envs()[name]
		if !ok {
			t.Fatalf("environment %s missing; have %v", name, envs())
		}
		if e.State != state || e.HeadSHA != head || e.DeployedSHA != deployed {
			t.Fatalf("%s = state %s head %s deployed %s; want %s %s %s", name, e.State, e.HeadSHA, e.DeployedSHA, state, head, deployed)
		}
	}
	gone := func(name string) {
		t.Helper()
		if e, ok := envs()[name]; ok {
			t.Fatalf("environment %s still exists: %+v", name, e)
		}
	}

	// push creating a branch → inactive environment, parent = default branch
	send("Push Hook", pushPayload(t, pid, "feature-x", zeroSHA, A), 202)
	expect("feature-x", "inactive", A, "")
	if e := envs()["feature-x"]; e.Parent != "main" {
		t.Fatalf("parent = %q", e.Parent)
	}
	// push to an inactive branch records the head only
	send("Push Hook", pushPayload(t, pid, "feature-x", A, B), 202)
	expect("feature-x", "inactive", B, "")
	// activate → deployed
	g.mustRun("environment:activate", "feature-x", "-i", "app")
	g.settle("app")
	expect("feature-x", "active", B, B)
	// push to an active branch deploys the new head
	send("Push Hook", pushPayload(t, pid, "feature-x", B, C), 202)
	expect("feature-x", "active", C, C)
	// a late, older push never moves the environment back
	send("Push Hook", pushPayload(t, pid, "feature-x", A, B), 202)
	expect("feature-x", "active", C, C)
	// a duplicate Idempotency-Key has no effect, whatever its body
	code, _ := g.deliver("app", secret, "Push Hook", pushPayload(t, pid, "dup", zeroSHA, A), "same-key")
	if code != 202 {
		t.Fatal(code)
	}
	code, body := g.deliver("app", secret, "Push Hook", pushPayload(t, pid, "dup2", zeroSHA, A), "same-key")
	if code != 200 || !strings.Contains(body, "duplicate") {
		t.Fatalf("duplicate: %d %s", code, body)
	}
	g.settle("app")
	if _, ok := envs()["dup2"]; ok {
		t.Fatal("a duplicate delivery had an effect")
	}
	// a push to a branch without an environment heals it
	send("Push Hook", pushPayload(t, pid, "missed", A, B), 202)
	expect("missed", "inactive", B, "")

	// MR open → active environment mr-<iid> with the parent's data, deploying the MR head
	t0 := time.Now().Add(-time.Hour)
	send("Merge Request Hook", mrPayload(t, pid, "merge_request_open.json", 7, C, t0), 202)
	expect("mr-7", "active", C, C)
	if e := envs()["mr-7"]; e.Parent != "main" || e.Kind != "mr" {
		t.Fatalf("mr-7 = %+v", e)
	}
	// MR update with new commits deploys the new head
	send("Merge Request Hook", mrPayload(t, pid, "merge_request_update.json", 7, D, t0.Add(time.Minute)).mr("action", "update", "oldrev", C), 202)
	expect("mr-7", "active", D, D)
	// approvals have no effect
	send("Merge Request Hook", mrPayload(t, pid, "merge_request_approved.json", 7, D, t0.Add(2*time.Minute)), 202)
	expect("mr-7", "active", D, D)
	// MR close deletes it; a late open from before the close never reopens it
	send("Merge Request Hook", mrPayload(t, pid, "merge_request_close.json", 7, D, t0.Add(3*time.Minute)), 202)
	gone("mr-7")
	send("Merge Request Hook", mrPayload(t, pid, "merge_request_open.json", 7, D, t0.Add(90*time.Second)), 202)
	gone("mr-7")
	// reopening after the close brings it back
	send("Merge Request Hook", mrPayload(t, pid, "merge_request_open.json", 7, D, t0.Add(4*time.Minute)).mr("action", "reopen"), 202)
	expect("mr-7", "active", D, D)
	// merge deletes it
	send("Merge Request Hook", mrPayload(t, pid, "merge_request_close.json", 7, D, t0.Add(5*time.Minute)).mr("action", "merge", "state", "merged"), 202)
	gone("mr-7")
	// a draft MR is built (build-draft-merge-requests defaults to true)
	send("Merge Request Hook", mrPayload(t, pid, "merge_request_open.json", 8, C, t0).mr("draft", true, "title", "Draft: wip"), 202)
	expect("mr-8", "active", C, C)
	// a fork's MR gets no environment (build-forks defaults to false)
	send("Merge Request Hook", mrPayload(t, pid, "merge_request_open.json", 9, C, t0).mr("source_project_id", 999), 202)
	gone("mr-9")

	// tags matching build-tags get an active environment, deleted with the tag
	send("Tag Push Hook", tagPayload(t, pid, "v1.0", zeroSHA, A), 202)
	expect("tag-v1.0", "active", A, A)
	send("Tag Push Hook", tagPayload(t, pid, "nightly", zeroSHA, A), 202)
	gone("tag-nightly")
	send("Tag Push Hook", tagPayload(t, pid, "v1.0", A, zeroSHA), 202)
	gone("tag-v1.0")

	// push deleting a branch removes its environment, never the default branch's
	send("Push Hook", pushPayload(t, pid, "feature-x", C, zeroSHA), 202)
	gone("feature-x")
	send("Push Hook", pushPayload(t, pid, "main", sha("main-1"), zeroSHA), 202)
	if _, ok := envs()["main"]; !ok {
		t.Fatal("the default branch's environment was deleted")
	}
	// a late branch-create for the deleted branch does not bring it back
	send("Push Hook", pushPayload(t, pid, "feature-x", zeroSHA, A), 202)
	gone("feature-x")

	// events with no effect are recorded and answered 2xx
	before := len(envs())
	for _, f := range []struct{ event, file string }{{"Pipeline Hook", "pipeline.json"}, {"Job Hook", "job.json"}, {"Deployment Hook", "deployment.json"}, {"Note Hook", "push.json"}, {"Emoji Hook", "push.json"}} {
		send(f.event, loadPayload(t, f.file, pid), 202)
	}
	if len(envs()) != before {
		t.Fatal("an event with no effect changed environments")
	}
	// bad requests: wrong token, malformed JSON
	if code, _ := g.deliver("app", "wrong", "Push Hook", pushPayload(t, pid, "nope", zeroSHA, A), ""); code != 401 {
		t.Fatalf("wrong token: %d", code)
	}
	if code, _ := g.deliver("app", secret, "Push Hook", json.RawMessage(`"not an object"`), ""); code != 400 {
		t.Fatalf("not an object: %d", code)
	}

	// every delivery and the activities it caused are visible
	var deliveries []struct {
		ID     int64  `json:"id"`
		Status string `json:"status"`
		Result string `json:"result"`
	}
	g.apiGet("/api/v1/deliveries?integration=app&limit=1000", &deliveries)
	if len(deliveries) < 20 {
		t.Fatalf("only %d deliveries recorded", len(deliveries))
	}
	var detail struct {
		Delivery   struct{ Status string } `json:"delivery"`
		Activities []struct{ Kind string } `json:"activities"`
	}
	g.apiGet("/api/v1/deliveries/"+jsonNumber(deliveries[len(deliveries)-1].ID), &detail)
	if detail.Delivery.Status != "processed" || len(detail.Activities) != 1 {
		t.Fatalf("first delivery detail = %+v", detail)
	}
	out := g.mustRun("activity:list", "-i", "app")
	if !strings.Contains(out, "deploy") || !strings.Contains(out, "delete") {
		t.Fatalf("activity:list:\n%s", out)
	}
}

// TestGitLabToolsSeeTheSameEnvironments lists glenv's environments through
// its GitLab-compatible API with client-go, as GitLab tools do.
func TestGitLabToolsSeeTheSameEnvironments(t *testing.T) {
	g, gl, secret := connected(t, "")
	pid := gl.Project.ID
	code, _ := g.deliver("app", secret, "Merge Request Hook", mrPayload(t, pid, "merge_request_open.json", 4, sha("m4"), time.Now()), "")
	if code != 202 {
		t.Fatal(code)
	}
	g.settle("app")
	for _, id := range []any{pid, "group/app"} {
		c, err := gitlab.NewClient(adminToken, gitlab.WithBaseURL(g.URL), gitlab.WithoutRetries())
		if err != nil {
			t.Fatal(err)
		}
		envs, resp, err := c.Environments.ListEnvironments(id, &gitlab.ListEnvironmentsOptions{ListOptions: gitlab.ListOptions{PerPage: 2}})
		if err != nil {
			t.Fatalf("list by %v: %v", id, err)
		}
		if resp.TotalItems != 3 || resp.NextPage != 2 || len(envs) != 2 {
			t.Fatalf("list by %v: total %d next %d len %d", id, resp.TotalItems, resp.NextPage, len(envs))
		}
		states := map[string]string{}
		all, _, err := c.Environments.ListEnvironments(id, &gitlab.ListEnvironmentsOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range all {
			states[e.Name] = e.State
		}
		if states["main"] != "available" || states["feature/login"] != "stopped" || states["mr-4"] != "available" {
			t.Fatalf("states via /api/v4 = %v", states)
		}
		mr := all[len(all)-1]
		got, _, err := c.Environments.GetEnvironment(id, mr.ID)
		if err != nil || got.Name != "mr-4" || got.Slug != "mr-4" || got.LastDeployment == nil || got.LastDeployment.SHA != sha("m4") {
			t.Fatalf("get mr-4 = %+v, %v", got, err)
		}
	}
}

// TestADeliveryThatCannotApplyDoesNotHoldBackTheOthers: an environment whose
// host is already taken (a slug collision) fails its delivery with the
// reason; the deliveries after it are processed.
func TestADeliveryThatCannotApplyDoesNotHoldBackTheOthers(t *testing.T) {
	g, gl, secret := connected(t, "")
	g.stop(syscall.SIGTERM)
	s, err := store.Open(context.Background(), "", g.dataDir)
	if err != nil {
		t.Fatal(err)
	}
	in, _ := store.GetIntegration(context.Background(), s.DB, "app")
	squatter := &store.Environment{IntegrationID: in.ID, IntegrationName: "app", ProjectID: in.ProjectID, Name: "squatter",
		Slug: "taken", Host: slug.Host(slug.Environment("taken"), "app"), Kind: "branch", State: store.StateInactive}
	if err := store.SaveEnvironment(context.Background(), s.DB, squatter); err != nil {
		t.Fatal(err)
	}
	s.Close()
	g.start()
	pid := gl.Project.ID
	for _, branch := range []string{"taken", "fine"} {
		if code, body := g.deliver("app", secret, "Push Hook", pushPayload(t, pid, branch, zeroSHA, sha(branch)), ""); code != 202 {
			t.Fatalf("%s: %d %s", branch, code, body)
		}
	}
	g.settle("app")
	envs := g.envs("app")
	if _, ok := envs["fine"]; !ok {
		t.Fatalf("the delivery after the failing one was not applied: %v", envs)
	}
	if _, ok := envs["taken"]; ok {
		t.Fatal("the colliding environment was created")
	}
	var ds []struct {
		Status string `json:"status"`
		Result string `json:"result"`
	}
	g.apiGet("/api/v1/deliveries?integration=app&limit=2", &ds)
	if ds[1].Status != "failed" || !strings.Contains(ds[1].Result, "rename the branch") {
		t.Fatalf("the failing delivery = %+v", ds[1])
	}
}
