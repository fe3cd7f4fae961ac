package envapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	gitlab "gitlab.com/gitlab-org/api/client-go/v2"

	"github.com/glenv/glenv/internal/envapi"
	"github.com/glenv/glenv/internal/jobs"
	"github.com/glenv/glenv/internal/slug"
	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/store/storetest"
)

// These tests cover what only glenv has: environments that glenv's
// lifecycle made, its states and activities, and the runtime behind them.

// saveBranchEnv writes an environment the way the lifecycle does (jobs.Apply).
func saveBranchEnv(t *testing.T, g *glenvServer, name, state string) store.Environment {
	t.Helper()
	e := store.Environment{IntegrationID: g.app.ID, IntegrationName: g.app.Name, ProjectID: g.app.ProjectID, Name: name,
		Slug: slug.Environment(name), Kind: "branch", Ref: name, Parent: "main", HeadSHA: "aaaa1111", State: state, Tier: "staging"}
	e.Host = slug.Host(e.Slug, g.app.Name)
	if err := store.SaveEnvironment(context.Background(), g.store.DB, &e); err != nil {
		t.Fatal(err)
	}
	return e
}

func (g *glenvServer) client(t *testing.T) *gitlab.Client {
	t.Helper()
	c, err := gitlab.NewClient(g.token, gitlab.WithBaseURL(g.url), gitlab.WithoutRetries())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestEnvironmentsFromBranchesAreGitLabEnvironments(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		g := startGlenv(t, s, jobs.RecordRuntime{})
		for _, e := range []struct{ name, state string }{
			{"main", store.StateActive}, {"feature/a", store.StateInactive}, {"feature/b", store.StateBuilding},
			{"feature/c", store.StateStopping}, {"feature/d", store.StateFailed},
		} {
			saveBranchEnv(t, g, e.name, e.state)
		}
		envs, resp, err := g.client(t).Environments.ListEnvironments(appID, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.TotalItems != 5 {
			t.Errorf("X-Total = %d, want 5", resp.TotalItems)
		}
		got := map[string]string{}
		for _, e := range envs {
			got[e.Name] = e.State
			// glenv's own URL is not the user's external_url (issue 15).
			if e.ExternalURL != "" {
				t.Errorf("%s: external_url %q, want null: none was set", e.Name, e.ExternalURL)
			}
			if e.Slug != slug.Environment(e.Name) || e.Tier != "staging" {
				t.Errorf("%s: slug %q tier %q", e.Name, e.Slug, e.Tier)
			}
		}
		want := map[string]string{"main": "available", "feature/a": "stopped", "feature/b": "available",
			"feature/c": "stopping", "feature/d": "available"}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("states %v, want %v", got, want)
		}
		stopping, _, err := g.client(t).Environments.ListEnvironments(appID, &gitlab.ListEnvironmentsOptions{States: ptr("stopping")})
		if err != nil || len(stopping) != 1 || stopping[0].Name != "feature/c" {
			t.Errorf("states=stopping: %d environments, err %v; want feature/c", len(stopping), err)
		}
	})
}

func TestEnvironmentsCreatedThroughTheAPIAreGlenvEnvironments(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		g := startGlenv(t, s, jobs.RecordRuntime{})
		ctx := context.Background()
		created, _, err := g.client(t).Environments.CreateEnvironment(appID, &gitlab.CreateEnvironmentOptions{Name: ptr("review/ui")})
		if err != nil {
			t.Fatal(err)
		}
		envs, err := store.EnvironmentsOfIntegration(ctx, s.Reader(), "app", false)
		if err != nil {
			t.Fatal(err)
		}
		if len(envs) != 1 {
			t.Fatalf("integration app has %d environments, want the created one", len(envs))
		}
		e := envs[0]
		if e.ID != created.ID || e.Kind != envapi.KindManual || e.State != store.StateActive ||
			e.Host != slug.Host(slug.Environment("review/ui"), "app") || e.Tier != "development" {
			t.Errorf("stored %+v", e)
		}
		acts, err := store.ListActivities(ctx, s.Reader(), store.ActivityFilter{EnvironmentID: e.ID})
		if err != nil || len(acts) != 1 {
			t.Fatalf("activities %v %v, want the creation recorded", acts, err)
		}
		if created.ExternalURL != "" {
			t.Errorf("external_url %q, want null while none is set", created.ExternalURL)
		}
		// One insert in GitLab: both times are the same moment.
		if !e.CreatedAt.Equal(e.UpdatedAt) || created.CreatedAt == nil || created.UpdatedAt == nil ||
			!created.CreatedAt.Equal(*created.UpdatedAt) {
			t.Errorf("created_at %v / %v, updated_at %v / %v: want one moment", e.CreatedAt, created.CreatedAt, e.UpdatedAt, created.UpdatedAt)
		}
	})
}

func TestCreatingTheNameOfADeletedEnvironmentRevivesIt(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		g := startGlenv(t, s, jobs.RecordRuntime{})
		old := saveBranchEnv(t, g, "feature/x", store.StateDeleted)
		old.DeletedAt = store.Now()
		old.SeenSHAs = []string{"aaaa1111"}
		if err := store.SaveEnvironment(context.Background(), s.DB, &old); err != nil {
			t.Fatal(err)
		}
		e, _, err := g.client(t).Environments.CreateEnvironment(appID, &gitlab.CreateEnvironmentOptions{Name: ptr("feature/x")})
		if err != nil {
			t.Fatal(err)
		}
		cur, err := store.GetEnvironmentByID(context.Background(), s.Reader(), e.ID)
		if err != nil || e.ID != old.ID || cur.Kind != envapi.KindManual || !slices.Equal(cur.SeenSHAs, old.SeenSHAs) {
			t.Errorf("revived %+v (err %v), want the tombstone %d reused with its seen SHAs", cur, err, old.ID)
		}
	})
}

func TestLastDeploymentIsTheNewestSuccessfulDeploy(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		g := startGlenv(t, s, jobs.RecordRuntime{})
		ctx := context.Background()
		e := saveBranchEnv(t, g, "feature/y", store.StateActive)
		c := g.client(t)
		got, _, err := c.Environments.GetEnvironment(appID, e.ID)
		if err != nil || got.LastDeployment != nil {
			t.Fatalf("before any deploy: last_deployment %+v, err %v; want null", got.LastDeployment, err)
		}
		deploy := func(sha, state string) store.Activity {
			a := store.Activity{IntegrationName: "app", EnvironmentID: e.ID, EnvironmentName: e.Name, Kind: store.ActivityDeploy,
				State: store.ActivityPending, SHA: sha}
			if err := store.InsertActivity(ctx, s.DB, &a); err != nil {
				t.Fatal(err)
			}
			if err := store.SetActivityState(ctx, s.DB, a.ID, state, ""); err != nil {
				t.Fatal(err)
			}
			return a
		}
		ok := deploy("bbbb2222", store.ActivityComplete)
		deploy("cccc3333", store.ActivityFailed)
		deploy("dddd4444", store.ActivityRunning)
		got, _, err = c.Environments.GetEnvironment(appID, e.ID)
		if err != nil {
			t.Fatal(err)
		}
		d := got.LastDeployment
		if d == nil || d.ID != ok.ID || d.SHA != "bbbb2222" || d.Ref != "feature/y" || d.Status != "success" {
			t.Errorf("last_deployment %+v, want the successful deploy of bbbb2222", d)
		}
		// GitLab always names a deployment's user: glenv's own deploys are
		// its service user's.
		if d != nil && (d.User == nil || d.User.Username != "glenv" || d.User.State != "active") {
			t.Errorf("last_deployment.user %+v, want glenv's service user", d.User)
		}
	})
}

// removals records what the runtime was asked to remove.
type removals struct {
	jobs.RecordRuntime
	mu   sync.Mutex
	envs []string
}

func (r *removals) Remove(ctx context.Context, env store.Environment, log func(string)) error {
	r.mu.Lock()
	r.envs = append(r.envs, env.Name)
	r.mu.Unlock()
	return r.RecordRuntime.Remove(ctx, env, log)
}

func (r *removals) has(name string) bool { return slices.Contains(r.removed(), name) }

func (r *removals) removed() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.envs)
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if ok() {
			return
		}
	}
	t.Fatalf("timed out waiting until %s", what)
}

func TestStoppingThroughTheAPIStopsTheRuntime(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		rt := &removals{}
		g := startGlenv(t, s, rt)
		ctx, cancel := context.WithCancel(context.Background())
		if err := g.queue.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cancel()
			stopCtx, done := context.WithTimeout(context.Background(), 5*time.Second)
			defer done()
			_ = g.queue.Stop(stopCtx)
		})
		e := saveBranchEnv(t, g, "feature/run", store.StateActive)
		c := g.client(t)
		stopped, _, err := c.Environments.StopEnvironment(appID, e.ID, nil)
		if err != nil || stopped.State != "stopped" {
			t.Fatalf("stop: %+v %v", stopped, err)
		}
		var acts []store.Activity
		waitFor(t, "the stop activity finished", func() bool {
			acts, _ = store.ListActivities(context.Background(), s.Reader(), store.ActivityFilter{EnvironmentID: e.ID, Kind: store.ActivityStop})
			return len(acts) == 1 && acts[0].State != store.ActivityPending && acts[0].State != store.ActivityRunning
		})
		if acts[0].State != store.ActivityComplete || !rt.has("feature/run") {
			t.Fatalf("stop activity %s (%s), runtime removed %v: the delete worker must hand jobs of StopNow to "+
				"finishStopped (deleteWorker.Work's first lines, see internal/jobs/gitlabops.go)", acts[0].State, acts[0].Result, rt.removed())
		}
		if cur, _ := store.GetEnvironmentByID(context.Background(), s.Reader(), e.ID); cur.State != store.StateInactive {
			t.Errorf("state after the stop job: %s, want inactive", cur.State)
		}
		if _, err := c.Environments.DeleteEnvironment(appID, e.ID); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the delete activity completed", func() bool {
			acts, _ = store.ListActivities(context.Background(), s.Reader(), store.ActivityFilter{EnvironmentID: e.ID, Kind: store.ActivityDelete})
			return len(acts) == 1 && acts[0].State == store.ActivityComplete && acts[0].Result == "deleted"
		})
		if tomb, err := store.GetEnvironment(context.Background(), s.Reader(), "app", "feature/run"); err != nil || tomb.DeletedAt.IsZero() {
			t.Errorf("after delete: %+v %v, want a tombstone", tomb, err)
		}
	})
}

func TestTheDefaultBranchEnvironmentIsNeverStopped(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		g := startGlenv(t, s, jobs.RecordRuntime{})
		ctx := context.Background()
		main := saveBranchEnv(t, g, "main", store.StateActive)
		stale := saveBranchEnv(t, g, "feature/old", store.StateActive)
		deployed := saveBranchEnv(t, g, "feature/deployed", store.StateActive)
		fresh := saveBranchEnv(t, g, "feature/fresh", store.StateActive)
		month := time.Now().Add(-30 * 24 * time.Hour).UnixMicro()
		for _, e := range []store.Environment{main, stale, deployed} {
			if _, err := s.DB.ExecContext(ctx, `UPDATE environments SET updated_at = $1 WHERE id = $2`, month, e.ID); err != nil {
				t.Fatal(err)
			}
		}
		// A deploy started since `before` keeps an environment from being stale.
		if err := store.InsertActivity(ctx, s.DB, &store.Activity{IntegrationName: "app", EnvironmentID: deployed.ID,
			Kind: store.ActivityDeploy, State: store.ActivityComplete}); err != nil {
			t.Fatal(err)
		}
		c := g.client(t)
		req, _ := c.NewRequest("POST", "projects/42/environments/stop_stale", map[string]string{"before": daysAgo(8)}, nil)
		if _, err := c.Do(req, nil); err != nil {
			t.Fatal(err)
		}
		for _, want := range []struct {
			e     store.Environment
			state string
		}{{main, "available"}, {stale, "stopped"}, {deployed, "available"}, {fresh, "available"}} {
			got, _, err := c.Environments.GetEnvironment(appID, want.e.ID)
			if err != nil || got.State != want.state {
				t.Errorf("%s after stop_stale: %v %v, want %s", want.e.Name, got.State, err, want.state)
			}
		}
		// GitLab answers 403 to a caller who may not stop an environment;
		// glenv says why in the same shape, and the environment runs on.
		_, resp, err := c.Environments.StopEnvironment(appID, main.ID, nil)
		if resp == nil || resp.StatusCode != 403 || !strings.Contains(err.Error(), "403 Forbidden - glenv never stops the default branch") {
			t.Errorf("stop of the default branch's environment: %v, want 403 saying why", err)
		}
		if cur, _ := store.GetEnvironmentByID(ctx, s.Reader(), main.ID); cur.State != store.StateActive {
			t.Errorf("the default branch's environment is %s after a refused stop, want active", cur.State)
		}
		// Once stopped by other means it may be deleted: GitLab's policy is
		// stopped ⇒ deletable.
		if _, err := s.DB.ExecContext(ctx, `UPDATE environments SET state = 'inactive' WHERE id = $1`, main.ID); err != nil {
			t.Fatal(err)
		}
		if resp, err := c.Environments.DeleteEnvironment(appID, main.ID); resp == nil || resp.StatusCode != 204 {
			t.Errorf("delete of the stopped default branch's environment: %v, want 204", err)
		}
	})
}

func TestOverTenThousandEnvironmentsTheTotalsAreLeftOut(t *testing.T) {
	// GitLab stops counting at 10,000 rows; paging still works through
	// X-Next-Page. The rule is the same on every database, so SQLite shows it.
	g := startGlenv(t, storetest.Open(t, storetest.Backends()[0]), jobs.RecordRuntime{})
	seedBranchEnvs(t, g, 10001)
	c := g.client(t)
	_, resp, err := c.Environments.ListEnvironments(appID, &gitlab.ListEnvironmentsOptions{ListOptions: gitlab.ListOptions{Page: 100, PerPage: 100}})
	if err != nil {
		t.Fatal(err)
	}
	h := resp.Header
	if _, ok := h["X-Total"]; ok || h.Get("X-Total-Pages") != "" || strings.Contains(h.Get("Link"), `rel="last"`) {
		t.Errorf("totals shown past 10,000: X-Total %q X-Total-Pages %q Link %q", h.Get("X-Total"), h.Get("X-Total-Pages"), h.Get("Link"))
	}
	if h.Get("X-Next-Page") != "101" || h.Get("X-Prev-Page") != "99" {
		t.Errorf("X-Next-Page %q X-Prev-Page %q, want 101 and 99", h.Get("X-Next-Page"), h.Get("X-Prev-Page"))
	}
	last, resp, err := c.Environments.ListEnvironments(appID, &gitlab.ListEnvironmentsOptions{ListOptions: gitlab.ListOptions{Page: 101, PerPage: 100}})
	if err != nil || len(last) != 1 || resp.Header.Get("X-Next-Page") != "" {
		t.Errorf("last page: %d environments, X-Next-Page %q, err %v; want 1 and none", len(last), resp.Header.Get("X-Next-Page"), err)
	}
}

// curl --form sends multipart/form-data, which Rack parses for GitLab's API
// like any form: an environment is created from its fields.
func TestAMultipartFormCreatesAnEnvironment(t *testing.T) {
	g := startGlenv(t, storetest.Open(t, storetest.Backends()[0]), jobs.RecordRuntime{})
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mw.WriteField("name", "review/form")
	mw.WriteField("tier", "staging")
	mw.Close()
	req, _ := http.NewRequest("POST", fmt.Sprintf("%s/api/v4/projects/%d/environments", g.url, appID), &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("PRIVATE-TOKEN", g.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e struct{ Name, Tier string }
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || resp.StatusCode != 201 || e.Name != "review/form" || e.Tier != "staging" {
		t.Fatalf("multipart create: %d %+v %v", resp.StatusCode, e, err)
	}
}

// Before glenv knows the caller it reads at most 64 KiB of a body that may
// hold a token; a larger one with no token elsewhere is refused unread. A
// known caller's body may be up to 256 KiB (GitLab's 413 past that).
func TestBodiesAreBoundedByWhoSendsThem(t *testing.T) {
	g := startGlenv(t, storetest.Open(t, storetest.Backends()[0]), jobs.RecordRuntime{})
	post := func(token string, size int) int {
		body := `{"name":"big","description":"` + strings.Repeat("x", size) + `"}`
		req, _ := http.NewRequest("POST", fmt.Sprintf("%s/api/v4/projects/%d/environments", g.url, appID), strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("PRIVATE-TOKEN", token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post("", 100<<10); code != 401 {
		t.Errorf("an anonymous 100 KiB body: %d, want 401", code)
	}
	if code := post(g.token, 100<<10); code != 400 { // read and parsed: the description is too long
		t.Errorf("a known caller's 100 KiB body: %d, want GitLab's 400", code)
	}
	if code := post(g.token, 300<<10); code != 413 {
		t.Errorf("a known caller's 300 KiB body: %d, want 413", code)
	}
	// What GitLab refuses before anyone is authenticated, glenv does too.
	for _, c := range []struct {
		method, query, ctype string
		status               int
	}{{"POST", "", "text/plain", 415}, {"GET", "?search=%zz", "", 400}} {
		req, _ := http.NewRequest(c.method, fmt.Sprintf("%s/api/v4/projects/%d/environments%s", g.url, appID, c.query), strings.NewReader("name=x"))
		if c.method == "GET" {
			req.Body, req.ContentLength = nil, 0
		}
		if c.ctype != "" {
			req.Header.Set("Content-Type", c.ctype)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Errorf("anonymous %s %s %s: %d, want %d", c.method, c.query, c.ctype, resp.StatusCode, c.status)
		}
	}
}
