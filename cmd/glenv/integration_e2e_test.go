package main_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/glenv/glenv/internal/gitlabtest"
)

type integrationJSON struct {
	Integration struct {
		Name           string   `json:"name"`
		ProjectID      int64    `json:"project_id"`
		ProjectPath    string   `json:"project_path"`
		DefaultBranch  string   `json:"default_branch"`
		HookID         int64    `json:"hook_id"`
		Labels         []string `json:"labels"`
		BuildTags      string   `json:"build_tags"`
		FetchBranches  bool     `json:"fetch_branches"`
		PruneBranches  bool     `json:"prune_branches"`
		BuildForks     bool     `json:"build_forks"`
		TokenExpiresAt string   `json:"token_expires_at"`
	} `json:"integration"`
	HookURL       string   `json:"hook_url"`
	WebhookSecret string   `json:"webhook_secret"`
	Warnings      []string `json:"warnings"`
	Environments  []string `json:"environments"`
}

type envJSON struct {
	ID          int64  `json:"id"`
	Name        string `json:"name"`
	State       string `json:"state"`
	Parent      string `json:"parent"`
	HeadSHA     string `json:"head_sha"`
	DeployedSHA string `json:"deployed_sha"`
	Detached    bool   `json:"detached"`
	Kind        string `json:"kind"`
	URL         string `json:"url"`
}

func addArgs(gl *gitlabWorld, extra ...string) []string {
	return append([]string{"integration:add", "--type=gitlab", "--token", gl.Token, "--base-url", gl.URL,
		"--gitlab-project", "group/app"}, extra...)
}

// envs lists an integration's environments by name.
func (g *glenv) envs(integration string) map[string]envJSON {
	var list []envJSON
	g.mustJSON(&list, "environment:list", "--integration", integration)
	out := map[string]envJSON{}
	for _, e := range list {
		out[e.Name] = e
	}
	return out
}

// waitEnv polls until cond holds for the named environment.
func (g *glenv) waitEnv(integration, name string, cond func(e envJSON, ok bool) bool) envJSON {
	g.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var e envJSON
	var ok bool
	for time.Now().Before(deadline) {
		e, ok = g.envs(integration)[name]
		if cond(e, ok) {
			return e
		}
		time.Sleep(50 * time.Millisecond)
	}
	g.t.Fatalf("environment %s/%s never reached the expected state; last: %+v (exists %v)\n%s", integration, name, e, ok, g.tail())
	return e
}

func TestIntegrationAddInstallsOneHookAndCreatesBranchEnvironments(t *testing.T) {
	gl := newGitLab(t)
	g := startGlenv(t, "")
	out := g.mustRun(addArgs(gl, "--label", "team:web", "--label", "tier:1", "--build-tags", "v*")...)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	last := lines[len(lines)-1]
	wantURL := g.URL + "/hooks/gitlab/app"
	if !strings.HasPrefix(last, "hook_url") || !strings.Contains(last, wantURL) {
		t.Fatalf("last table row = %q, want hook_url %s\n%s", last, wantURL, out)
	}
	if !strings.Contains(out, "webhook_secret") {
		t.Fatalf("creation must print the webhook secret once:\n%s", out)
	}
	hooks := gl.Hooks(gl.Project.ID)
	if len(hooks) != 1 {
		t.Fatalf("hooks = %d, want 1", len(hooks))
	}
	h := hooks[0]
	if h.URL != wantURL || !h.PushEvents || !h.TagPushEvents || !h.MergeRequestsEvents || h.Token == "" {
		t.Fatalf("hook = %+v", h)
	}
	if !strings.Contains(out, h.Token) {
		t.Fatal("printed secret differs from the hook's token")
	}

	var got integrationJSON
	g.mustJSON(&got, "integration:get", "app")
	if got.Integration.ProjectID != gl.Project.ID || got.Integration.HookID != h.ID || got.HookURL != wantURL ||
		got.Integration.BuildTags != "v*" || len(got.Integration.Labels) != 2 {
		t.Fatalf("integration:get = %+v", got)
	}
	if got.WebhookSecret != "" {
		t.Fatal("integration:get printed the secret without --show-secret")
	}
	envs := g.envs("app")
	if len(envs) != 2 {
		t.Fatalf("environments = %v, want main and feature/login", envs)
	}
	if e := envs["feature/login"]; e.State != "inactive" || e.Parent != "main" || e.HeadSHA != sha("login-1") {
		t.Fatalf("feature/login = %+v, want inactive with parent main", e)
	}
	g.waitEnv("app", "main", func(e envJSON, ok bool) bool { return ok && e.State == "active" && e.DeployedSHA == sha("main-1") })
	if main := envs["main"]; main.Parent != "" || !strings.HasPrefix(main.URL, "http://main--app.localhost:") {
		t.Fatalf("main = %+v", main)
	}
}

func TestIntegrationAddPrintsJSON(t *testing.T) {
	gl := newGitLab(t)
	g := startGlenv(t, "")
	var res integrationJSON
	g.mustJSON(&res, addArgs(gl, "--name", "web-app")...)
	if res.Integration.Name != "web-app" || res.HookURL != g.URL+"/hooks/gitlab/web-app" || res.WebhookSecret == "" ||
		res.Integration.DefaultBranch != "main" || len(res.Environments) != 2 {
		t.Fatalf("JSON = %+v", res)
	}
}

func TestIntegrationAddRefusals(t *testing.T) {
	gl := newGitLab(t)
	expired := time.Now().AddDate(0, 0, -2)
	dev := gl.AddUser(gitlabtest.User{Username: "dev"})
	p2 := gl.AddProject(gitlabtest.Project{PathWithNamespace: "group/other", DefaultBranch: "main", Members: map[int64]int{dev.ID: 30}})
	gl.SetBranch(p2.ID, "main", sha("o"))
	tokens := map[string]string{
		"read_api": gl.AddToken(gitlabtest.Token{UserID: gl.Maintainer.ID, Scopes: []string{"read_api"}}),
		"expired":  gl.AddToken(gitlabtest.Token{UserID: gl.Maintainer.ID, Scopes: []string{"api"}, ExpiresAt: &expired}),
		"revoked":  gl.AddToken(gitlabtest.Token{UserID: gl.Maintainer.ID, Scopes: []string{"api"}, Revoked: true}),
		"dev":      gl.AddToken(gitlabtest.Token{UserID: dev.ID, Scopes: []string{"api"}}),
	}
	g := startGlenv(t, "")
	tests := []struct {
		name string
		args []string
		want []string // all must appear in stderr
	}{
		{"token without the api scope is refused naming the scope", []string{"--token", tokens["read_api"], "--gitlab-project", "group/app"}, []string{"api scope"}},
		{"expired token is refused", []string{"--token", tokens["expired"], "--gitlab-project", "group/app"}, []string{"expired"}},
		{"revoked token is refused", []string{"--token", tokens["revoked"], "--gitlab-project", "group/app"}, []string{"revoked"}},
		{"unknown token is refused", []string{"--token", "glpat-nope", "--gitlab-project", "group/app"}, []string{"rejected the token"}},
		{"user below Maintainer is told about the role", []string{"--token", tokens["dev"], "--gitlab-project", "group/other"}, []string{"Maintainer"}},
		{"unknown project names the field", []string{"--token", gl.Token, "--gitlab-project", "group/missing"}, []string{"gitlab_project", "not found"}},
		{"unreachable GitLab names the URL", []string{"--token", gl.Token, "--gitlab-project", "group/app", "--base-url", "http://127.0.0.1:1"}, []string{"cannot be reached", "http://127.0.0.1:1"}},
		{"bad name", []string{"--token", gl.Token, "--gitlab-project", "group/app", "--name", "Bad_Name"}, []string{"name", "a-z"}},
		{"name too long", []string{"--token", gl.Token, "--gitlab-project", "group/app", "--name", strings.Repeat("a", 37)}, []string{"name", "1–36"}},
		{"bad base url", []string{"--token", gl.Token, "--gitlab-project", "group/app", "--base-url", "ftp://x"}, []string{"base_url", "http"}},
		{"base url with api path", []string{"--token", gl.Token, "--gitlab-project", "group/app", "--base-url", gl.URL + "/api/v4"}, []string{"base_url", "without /api/v4"}},
		{"bad glob", []string{"--token", gl.Token, "--gitlab-project", "group/app", "--build-tags", "v["}, []string{"build_tags", "glob"}},
		{"bad label", []string{"--token", gl.Token, "--gitlab-project", "group/app", "--label", " spaced"}, []string{"labels"}},
		{"unknown type", []string{"--token", gl.Token, "--gitlab-project", "group/app", "--type", "github"}, []string{"type", "gitlab"}},
		{"missing token", []string{"--gitlab-project", "group/app"}, []string{"token", "required"}},
		{"bad project path", []string{"--token", gl.Token, "--gitlab-project", "group//app.git"}, []string{"gitlab_project"}},
		{"bad user-facing url", []string{"--token", gl.Token, "--gitlab-project", "group/app", "--user-facing-url", "nope"}, []string{"user_facing_url"}},
		{"bad space", []string{"--token", gl.Token, "--gitlab-project", "group/app", "--space", "Root!"}, []string{"space"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"integration:add", "--type=gitlab", "--base-url", gl.URL}, tt.args...)
			start := time.Now()
			_, stderr, code := g.run("", args...)
			if code == 0 {
				t.Fatalf("exit 0, want failure")
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q does not mention %q", stderr, w)
				}
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %v; a refusal must come within a few seconds", d)
			}
		})
	}
	if out := g.mustRun("integration:list"); strings.Count(strings.TrimSpace(out), "\n") != 0 {
		t.Fatalf("refused adds stored integrations:\n%s", out)
	}
	if n := len(gl.Hooks(gl.Project.ID)) + len(gl.Hooks(p2.ID)); n != 0 {
		t.Fatalf("refused adds left %d hooks", n)
	}
	var envs []envJSON
	g.mustJSON(&envs, "environment:list")
	if len(envs) != 0 {
		t.Fatalf("refused adds left environments: %+v", envs)
	}
}

func TestIntegrationAddWarnsWhenTheTokenExpiresSoon(t *testing.T) {
	gl := newGitLab(t)
	soon := time.Now().AddDate(0, 0, 10)
	tok := gl.AddToken(gitlabtest.Token{UserID: gl.Maintainer.ID, Scopes: []string{"api"}, ExpiresAt: &soon})
	g := startGlenv(t, "")
	_, stderr, code := g.run("", "integration:add", "--token", tok, "--base-url", gl.URL, "--gitlab-project", "group/app")
	if code != 0 || !strings.Contains(stderr, "Warning:") || !strings.Contains(stderr, "expires on "+soon.UTC().Format("2006-01-02")) {
		t.Fatalf("exit %d, stderr %q: want an expiry warning", code, stderr)
	}
}

func TestIntegrationAddResolvesTheProjectByID(t *testing.T) {
	gl := newGitLab(t)
	g := startGlenv(t, "")
	var res integrationJSON
	g.mustJSON(&res, "integration:add", "--token", gl.Token, "--base-url", gl.URL, "--gitlab-project", jsonNumber(gl.Project.ID), "--name", "byid")
	if res.Integration.ProjectID != gl.Project.ID || res.Integration.ProjectPath != "group/app" {
		t.Fatalf("got %+v", res.Integration)
	}
}

func jsonNumber(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestSecondAddIsIdempotentAndDeleteReaddKeepsTheHookURL(t *testing.T) {
	gl := newGitLab(t)
	g := startGlenv(t, "")
	var first, second integrationJSON
	g.mustJSON(&first, addArgs(gl)...)
	g.mustJSON(&second, addArgs(gl, "--label", "again")...)
	if hooks := gl.Hooks(gl.Project.ID); len(hooks) != 1 || hooks[0].ID != first.Integration.HookID {
		t.Fatalf("second add: hooks = %+v, want the one hook %d", hooks, first.Integration.HookID)
	}
	if second.Integration.HookID != first.Integration.HookID || len(second.Integration.Labels) != 1 {
		t.Fatalf("second add = %+v", second.Integration)
	}
	if len(g.envs("app")) != 2 {
		t.Fatal("second add duplicated environments")
	}
	oldSecret := gl.Hooks(gl.Project.ID)[0].Token

	_, stderr, code := g.run("", "integration:delete", "app")
	if code != 0 {
		t.Fatalf("delete: %s", stderr)
	}
	if n := len(gl.Hooks(gl.Project.ID)); n != 0 {
		t.Fatalf("delete left %d hooks", n)
	}
	envs := g.envs("app")
	if len(envs) != 2 || !envs["main"].Detached {
		t.Fatalf("delete must keep environments detached: %+v", envs)
	}
	if _, _, code := g.run("", "environment:activate", "feature/login", "-i", "app"); code == 0 {
		t.Fatal("a detached environment was activated")
	}

	var again integrationJSON
	g.mustJSON(&again, addArgs(gl)...)
	hooks := gl.Hooks(gl.Project.ID)
	if len(hooks) != 1 || hooks[0].URL != first.HookURL || again.HookURL != first.HookURL {
		t.Fatalf("re-add hooks = %+v, want one at %s", hooks, first.HookURL)
	}
	if hooks[0].Token == oldSecret || again.WebhookSecret == "" || again.WebhookSecret != hooks[0].Token {
		t.Fatal("re-add must install a new secret and print it")
	}
	if envs := g.envs("app"); envs["main"].Detached {
		t.Fatal("re-added integration did not get its environments back")
	}
}

func TestServerRestartKeepsIntegrationsAndDecryptsSecrets(t *testing.T) {
	for name, db := range backends(t) {
		t.Run(name, func(t *testing.T) {
			gl := newGitLab(t)
			g := startGlenv(t, db())
			g.mustRun(addArgs(gl)...)
			secret := gl.Hooks(gl.Project.ID)[0].Token
			g.restart()
			var res integrationJSON
			g.mustJSON(&res, "integration:get", "app", "--show-secret")
			if res.WebhookSecret != secret {
				t.Fatalf("after restart the secret reads %q, want the hook's", res.WebhookSecret)
			}
			// The stored token still works: validate calls GitLab with it.
			var checks []struct {
				Name string `json:"name"`
				OK   bool   `json:"ok"`
			}
			g.mustJSON(&checks, "integration:validate", "app")
			for _, c := range checks {
				if !c.OK {
					t.Fatalf("validate after restart: %+v", checks)
				}
			}
			if len(checks) < 4 {
				t.Fatalf("validate ran %d checks", len(checks))
			}
			raw, _ := readFileIfExists(g.dataDir + "/glenv.db")
			if strings.Contains(string(raw), gl.Token) || strings.Contains(string(raw), secret) {
				t.Fatal("a secret is stored in plain text in the SQLite file")
			}
		})
	}
}

func TestPruneBranchesAsksBeforeDeleting(t *testing.T) {
	gl := newGitLab(t)
	g := startGlenv(t, "")
	g.mustRun(addArgs(gl)...)
	g.mustRun("integration:delete", "app")
	gl.DeleteBranch(gl.Project.ID, "feature/login")

	_, stderr, code := g.run("n\n", addArgs(gl)...)
	if code == 0 || !strings.Contains(stderr, "feature/login") || !strings.Contains(stderr, "--yes") {
		t.Fatalf("answering no: exit %d, stderr %q", code, stderr)
	}
	if out := g.mustRun("integration:list"); strings.Contains(out, "group/app") {
		t.Fatal("answering no still stored the integration")
	}
	if _, ok := g.envs("app")["feature/login"]; !ok {
		t.Fatal("answering no deleted the environment")
	}
	_, stderr, code = g.run("y\n", addArgs(gl)...)
	if code != 0 {
		t.Fatalf("answering yes: %s", stderr)
	}
	g.waitEnv("app", "feature/login", func(e envJSON, ok bool) bool { return !ok })

	// --yes skips the question.
	g.mustRun("integration:delete", "app")
	gl.SetBranch(gl.Project.ID, "gone", sha("gone"))
	g.mustRun(addArgs(gl)...)
	g.mustRun("integration:delete", "app")
	gl.DeleteBranch(gl.Project.ID, "gone")
	g.mustRun(addArgs(gl, "--yes")...)
	g.waitEnv("app", "gone", func(e envJSON, ok bool) bool { return !ok })
}

func TestIntegrationUpdateChangesOptionsButNeverTheName(t *testing.T) {
	gl := newGitLab(t)
	g := startGlenv(t, "")
	g.mustRun(addArgs(gl)...)
	var res integrationJSON
	g.mustJSON(&res, "integration:update", "app", "--build-forks", "--prune-branches=false", "--label", "x")
	if !res.Integration.BuildForks || res.Integration.PruneBranches || !res.Integration.FetchBranches || len(res.Integration.Labels) != 1 {
		t.Fatalf("update = %+v", res.Integration)
	}
	if _, stderr, code := g.run("", "integration:update", "app", "--build-tags", "[", "--build-forks=false"); code == 0 || !strings.Contains(stderr, "build_tags") {
		t.Fatalf("bad update accepted: %s", stderr)
	}
	g.mustJSON(&res, "integration:get", "app")
	if !res.Integration.BuildForks {
		t.Fatal("a refused update changed the integration")
	}
	if _, stderr, code := g.run("", "integration:update", "nope", "--build-forks"); code == 0 || !strings.Contains(stderr, "not found") {
		t.Fatalf("update of unknown integration: %s", stderr)
	}
}

// startupHealthDone waits for the hook and token check glenv runs when it
// starts (a periodic job run on start, then every --reconcile-interval) to
// finish: until then it may re-enable a hook a test disabled before the
// test's own command gets to do it.
func (g *glenv) startupHealthDone(t *testing.T) {
	t.Helper()
	db := g.openDB(t)
	waitFor(t, g, "the start-up hook check done", func() bool {
		var n int
		err := db.QueryRow(`SELECT COUNT(*) FROM river_job WHERE kind = 'feedback_health' AND state = 'completed'`).Scan(&n)
		return err == nil && n > 0
	})
}

func TestValidateRepairsTheHook(t *testing.T) {
	gl := newGitLab(t)
	// The background hook check also re-enables a disabled hook: it runs
	// once at start here and not again within the test, so what repairs
	// the hook below is validate.
	g := startGlenv(t, "", "GLENV_RECONCILE_INTERVAL=1h")
	var res integrationJSON
	g.mustJSON(&res, addArgs(gl)...)
	g.startupHealthDone(t)
	hook := gl.Hooks(gl.Project.ID)[0]
	until := time.Now().Add(time.Hour)
	gl.SetHookAlert(gl.Project.ID, hook.ID, "temporarily_disabled", &until)
	out := g.mustRun("integration:validate", "app")
	if !strings.Contains(out, "repaired") || !strings.Contains(out, "temporarily disabled") {
		t.Fatalf("validate did not report re-enabling:\n%s", out)
	}
	if h := gl.Hooks(gl.Project.ID)[0]; h.AlertStatus != "executable" {
		t.Fatalf("hook still %s", h.AlertStatus)
	}
	// A hook deleted in GitLab is re-installed with the same secret.
	removeHook(t, gl, hook.ID)
	out = g.mustRun("integration:validate", "app")
	hooks := gl.Hooks(gl.Project.ID)
	if len(hooks) != 1 || hooks[0].Token != hook.Token || !strings.Contains(out, "re-installed") {
		t.Fatalf("validate did not re-install: hooks %+v\n%s", hooks, out)
	}
}

func TestOnlyAdminsReadTheWebhookSecret(t *testing.T) {
	gl := newGitLab(t)
	g := startGlenv(t, "")
	g.mustRun(addArgs(gl)...)
	var tok struct {
		Token string `json:"token"`
	}
	g.mustJSON(&tok, "token:create", "--name", "viewer")
	_, stderr, code := g.runAs(tok.Token, "", "integration:get", "app", "--show-secret")
	if code == 0 || !strings.Contains(stderr, "admin") {
		t.Fatalf("member read the secret: exit %d %s", code, stderr)
	}
	out, _, code := g.runAs(tok.Token, "", "integration:get", "app")
	if code != 0 || strings.Contains(out, "webhook_secret") {
		t.Fatalf("member get: exit %d\n%s", code, out)
	}
	if _, stderr, code := g.runAs("wrong", "", "integration:list"); code == 0 || !strings.Contains(stderr, "API token") {
		t.Fatalf("wrong token accepted: %s", stderr)
	}
}
