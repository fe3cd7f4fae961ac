package main_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/glenv/glenv/internal/gitlabtest"
)

// variablesProbe is an app that shows what it was given: its build step
// prints the variables it sees (a sensitive one included), the app prints
// the sensitive value at start and on every request, and answers which
// variables it has, with the sensitive one as a SHA-256 only.
var variablesProbe = map[string]string{
	".glenv.yml": `build:
  - echo "build sees API_KEY=$API_KEY MODE=$MODE BUILD_ONLY=${BUILD_ONLY:-unset} RUN_ONLY=${RUN_ONLY:-unset}"
run: python3 app.py
health: /
env:
  MODE: from-repo
`,
	"app.py": `import hashlib, http.server, os
key = os.environ.get("API_KEY", "")
print("run sees API_KEY=" + key, flush=True)
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        print("request sees API_KEY=" + key, flush=True)
        body = "MODE=%s BUILD_ONLY=%s RUN_ONLY=%s API_KEY_SHA=%s\n" % (os.environ.get("MODE", "unset"),
            os.environ.get("BUILD_ONLY", "unset"), os.environ.get("RUN_ONLY", "unset"),
            hashlib.sha256(key.encode()).hexdigest() if key else "unset")
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())
http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
`,
}

type variableChangeJSON struct {
	Redeploys []string `json:"redeploys"`
}

type activityDescJSON struct {
	ID          int64  `json:"id"`
	State       string `json:"state"`
	Description string `json:"description"`
	Result      string `json:"result"`
}

// waitLong is waitFor with room for a build and an app's start on a
// loaded machine.
func waitLong(t *testing.T, g *glenv, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after 60s\n%s", what, g.tail())
		}
		time.Sleep(100 * time.Millisecond) // polls the API the server advances
	}
}

// variableDeploys lists an environment's deploys started by variable changes.
func (g *glenv) variableDeploys(envID int64) []activityDescJSON {
	var acts []activityDescJSON
	g.apiGet(fmt.Sprintf("/api/v1/activities?kind=deploy&environment_id=%d", envID), &acts)
	var out []activityDescJSON
	for _, a := range acts {
		if a.Description == "variables changed" {
			out = append(out, a)
		}
	}
	return out
}

// Issue 17: variables reach builds and apps by level, visibility and
// precedence; a change redeploys exactly the environments it affects,
// once per burst; a sensitive value is never in clear in a log, an API
// answer or the data dir, and fork code never gets it.
func TestVariablesReachBuildsAndAppsAndASensitiveValueLeaksNowhere(t *testing.T) {
	const secretValue = "s3cr3t-probe-value-7f1c2e"
	rotated := secretValue + "-rotated"
	gl := newGitLab(t)
	pid := gl.Project.ID
	shaMain := gl.Commit(t, pid, gitlabtest.Commit{Branch: "main", Files: variablesProbe})
	gl.Commit(t, pid, gitlabtest.Commit{Branch: "idle", Files: variablesProbe}) // an inactive branch environment
	g := startGlenv(t, "", "GLENV_RUNTIME=process")
	var res integrationJSON
	g.mustJSON(&res, addArgs(gl)...)
	main := g.waitEnvLong("app", "main", func(e envJSON, ok bool) bool { return ok && e.State == "active" && e.DeployedSHA == shaMain })
	if idle := g.envs("app")["idle"]; idle.State != "inactive" {
		t.Fatalf("idle is %q, want inactive", idle.State)
	}

	// A burst of changes: the sensitive one from stdin, the others through the API.
	out, errs, code := g.run(secretValue+"\n", "variable:create", "API_KEY", "--value", "-", "--sensitive", "-i", "app", "--format", "json")
	if code != 0 {
		t.Fatalf("variable:create: %d %s %s", code, out, errs)
	}
	var ch variableChangeJSON
	if err := json.Unmarshal([]byte(out), &ch); err != nil || strings.Join(ch.Redeploys, " ") != "main" {
		t.Fatalf("variable:create answers %s (%v); want a redeploy of main only (idle runs nothing)", out, err)
	}
	for _, body := range []string{`{"name":"MODE","value":"from-variable"}`, `{"name":"BUILD_ONLY","value":"b","visible_run":false}`,
		`{"name":"RUN_ONLY","value":"r","visible_build":false}`} {
		if code, answer := g.apiDo(adminToken, "POST", "/api/v1/integrations/app/variables", body); code != 201 {
			t.Fatalf("POST %s: %d %s", body, code, answer)
		}
	}
	waitLong(t, g, "main's redeploy for the changed variables", func() bool {
		ds := g.variableDeploys(main.ID)
		return len(ds) > 0 && ds[0].State == "complete"
	})
	if ds := g.variableDeploys(main.ID); len(ds) != 1 {
		t.Fatalf("four changes in a burst redeployed main %d times: %+v", len(ds), ds)
	}
	sum := sha256.Sum256([]byte(secretValue))
	if code, body, err := g.getEnv("main--app"); err != nil || code != 200 ||
		strings.TrimSpace(body) != "MODE=from-variable BUILD_ONLY=unset RUN_ONLY=r API_KEY_SHA="+hex.EncodeToString(sum[:]) {
		t.Fatalf("the app sees %d %q %v; want the variables over .glenv.yml env, the build-only one hidden, the exact API_KEY", code, body, err)
	}
	deployLog := g.activityLog(g.variableDeploys(main.ID)[0].ID)
	if !strings.Contains(deployLog, "build sees API_KEY=[REDACTED] MODE=from-variable BUILD_ONLY=b RUN_ONLY=unset") {
		t.Fatalf("the build step saw other variables, or the value was not redacted:\n%s", deployLog)
	}
	if logs := g.mustRun("environment:logs", "main", "-i", "app"); !strings.Contains(logs, "run sees API_KEY=[REDACTED]") ||
		!strings.Contains(logs, "request sees API_KEY=[REDACTED]") {
		t.Fatalf("environment:logs shows no redacted line of the app:\n%s", logs)
	}

	// Fork code (a merge request from another project, built with
	// build-forks) gets no variable at all, only its own .glenv.yml's, and
	// its deploy log says so; the project's own merge request still gets
	// them all.
	g.mustRun("integration:update", "app", "--build-forks")
	shaMR := gl.Commit(t, pid, gitlabtest.Commit{Branch: "feature-x", Files: variablesProbe, Message: "the merge request"})
	gl.SetMergeRequest(pid, gitlabtest.MergeRequest{IID: 1, Title: "MR 1", SourceBranch: "feature-x", TargetBranch: "main", SHA: shaMR, SourceProjectID: pid + 1000})
	gl.SetMergeRequest(pid, gitlabtest.MergeRequest{IID: 2, Title: "MR 2", SourceBranch: "feature-x", TargetBranch: "main", SHA: shaMR})
	fromFork := mrPayload(t, pid, "merge_request_open.json", 1, shaMR, time.Now().Add(-time.Hour)).mr("source_project_id", pid+1000)
	if code, body := g.deliver("app", res.WebhookSecret, "Merge Request Hook", fromFork, ""); code != 202 {
		t.Fatalf("MR open: %d %s", code, body)
	}
	if code, body := g.deliver("app", res.WebhookSecret, "Merge Request Hook", mrPayload(t, pid, "merge_request_open.json", 2, shaMR, time.Now().Add(-time.Hour)), ""); code != 202 {
		t.Fatalf("MR open: %d %s", code, body)
	}
	mr := g.waitEnvLong("app", "mr-1", func(e envJSON, ok bool) bool { return ok && e.State == "active" && e.DeployedSHA == shaMR })
	if code, body, err := g.getEnv("mr-1--app"); err != nil || code != 200 || strings.TrimSpace(body) != "MODE=from-repo BUILD_ONLY=unset RUN_ONLY=unset API_KEY_SHA=unset" {
		t.Fatalf("fork code sees %d %q %v; want its own .glenv.yml's MODE and none of glenv's variables", code, body, err)
	}
	mrDeploy, ok := g.deployActivity(mr.ID, shaMR)
	if !ok || !strings.Contains(g.activityLog(mrDeploy.ID), "4 variable(s) withheld: code from a fork") {
		t.Fatalf("the fork's deploy log does not say its variables were withheld:\n%s", g.activityLog(mrDeploy.ID))
	}
	g.waitEnvLong("app", "mr-2", func(e envJSON, ok bool) bool { return ok && e.State == "active" && e.DeployedSHA == shaMR })
	if code, body, err := g.getEnv("mr-2--app"); err != nil || code != 200 ||
		strings.TrimSpace(body) != "MODE=from-variable BUILD_ONLY=unset RUN_ONLY=r API_KEY_SHA="+hex.EncodeToString(sum[:]) {
		t.Fatalf("the project's own merge request sees %d %q %v with build-forks on; want every variable", code, body, err)
	}

	// Rotating the sensitive value redeploys main, not the fork, which never sees it.
	out, errs, code = g.run(rotated, "variable:update", "API_KEY", "--value", "-", "-i", "app", "--format", "json")
	if code != 0 || json.Unmarshal([]byte(out), &ch) != nil || strings.Join(ch.Redeploys, " ") != "main mr-2" {
		t.Fatalf("variable:update: %d %s %s; want a redeploy of main and mr-2, not the fork's mr-1", code, out, errs)
	}
	waitLong(t, g, "main's redeploy for the rotated value", func() bool {
		ds := g.variableDeploys(main.ID)
		return len(ds) == 2 && ds[0].State == "complete"
	})
	if ds := g.variableDeploys(mr.ID); len(ds) != 0 {
		t.Fatalf("the fork was redeployed for a value it never sees: %+v", ds)
	}
	if code, body, _ := g.getEnv("main--app"); code != 200 || strings.Contains(body, hex.EncodeToString(sum[:])) {
		t.Fatalf("main still runs the old value: %d %q", code, body)
	}
	g.getEnv("main--app") // one more request line for environment:logs

	// Search everything glenv shows or keeps for either value in clear.
	var seen []string
	look := func(what, text string) {
		for _, v := range []string{secretValue, rotated} {
			if strings.Contains(text, v) {
				t.Errorf("%s shows a sensitive value in clear:\n%.600s", what, text)
			}
		}
		seen = append(seen, what)
	}
	for _, args := range [][]string{
		{"variable:list", "-i", "app"}, {"variable:list", "-i", "app", "-e", "mr-1"}, {"variable:get", "API_KEY", "-i", "app"},
		{"environment:list"}, {"environment:get", "main", "-i", "app"}, {"activity:list"}, {"audit:list"},
		{"environment:logs", "main", "-i", "app"}, {"environment:logs", "mr-1", "-i", "app"},
	} {
		look(strings.Join(args, " "), g.mustRun(append(args, "--format", "json")...))
	}
	var acts []activityDescJSON
	g.apiGet("/api/v1/activities?limit=1000", &acts)
	for _, a := range acts {
		look(fmt.Sprintf("activity %d's log", a.ID), g.activityLog(a.ID))
		_, raw := g.apiDo(adminToken, "GET", fmt.Sprintf("/api/v1/activities/%d", a.ID), "")
		look(fmt.Sprintf("activity %d", a.ID), raw)
	}
	for _, path := range []string{"/api/v1/integrations/app/variables", "/api/v1/integrations/app/variables/API_KEY",
		"/api/v1/integrations/app/environments/main/variables", "/api/v1/environments", "/api/v1/deliveries", "/api/v1/audit",
		"/api/v4/projects/" + fmt.Sprint(pid) + "/environments"} {
		code, body := g.apiDo(adminToken, "GET", path, "")
		if code != 200 {
			t.Fatalf("GET %s: %d %s", path, code, body)
		}
		look("GET "+path, body)
	}
	look("glenv's own log", g.logs.String())
	files := 0
	err := filepath.WalkDir(g.dataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !d.Type().IsRegular() {
			return nil // a file an app removed meanwhile, a socket
		}
		b, rerr := os.ReadFile(path)
		if rerr != nil {
			return nil // a file of the sandboxed app's own uid
		}
		files++
		for _, v := range []string{secretValue, rotated} {
			if bytes.Contains(b, []byte(v)) {
				t.Errorf("%s holds a sensitive value in clear", path)
			}
		}
		return nil
	})
	if err != nil || files < 5 {
		t.Fatalf("searched %d files of the data dir: %v", files, err)
	}
	t.Logf("searched %d answers and logs and %d files of the data dir", len(seen), files)
}
