package main_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/glenv/glenv/internal/gitlabtest"
)

// runtimeUnderTest is what differs between runtimes in the environment
// contract: how glenv is started on it, what a commit holds, and what
// "running" and "gone" look like there. Everything else the contract
// asserts through glenv's API and the GitLab double, the same on both.
type runtimeUnderTest interface {
	// env starts glenv serve on the runtime.
	env(t *testing.T) []string
	// files is a commit's tree whose app serves marker and has a
	// services.files volume uploads.
	files(marker string) map[string]string
	// seed puts a file into the default branch's uploads volume where the
	// test can reach it, so opened can check the MR starts with it.
	seed(t *testing.T, g *glenv, main envJSON)
	// opened asserts what runs for a newly opened MR environment at sha,
	// its uploads cloned from main's.
	opened(t *testing.T, g *glenv, mr envJSON, sha, marker string)
	// pushed asserts the environment now runs sha and no longer old.
	pushed(t *testing.T, g *glenv, mr envJSON, old, sha, marker string)
	// gone asserts nothing of the closed environment is left, and main
	// still runs.
	gone(t *testing.T, g *glenv, mr, main envJSON)
}

// The contract every runtime keeps, run on each (issue 16): a merge
// request opens → its environment runs the MR's head, with the parent's
// data, is active and says so in GitLab; a push → it runs the new head and
// says so; close → nothing of it is left.
func TestOnProcessesAndKubernetesAMergeRequestRunsFromOpenThroughPushToClose(t *testing.T) {
	runtimes := map[string]runtimeUnderTest{"process": processRuntime{}, "kubernetes": &kubeRuntime{},
		"kubernetes copying volumes": &kubeRuntime{copies: true}}
	for name, rt := range runtimes {
		t.Run(name, func(t *testing.T) {
			gl := newGitLab(t)
			pid := gl.Project.ID
			shaMain := gl.Commit(t, pid, gitlabtest.Commit{Branch: "main", Files: rt.files("main")})
			g := startGlenv(t, "", rt.env(t)...)
			var res integrationJSON
			g.mustJSON(&res, addArgs(gl)...)
			main := waitServing(g, "main", shaMain)
			rt.seed(t, g, main)

			// A merge request opens.
			sha1 := gl.Commit(t, pid, gitlabtest.Commit{Branch: "feature-x", Files: rt.files("mr 1")})
			t0 := time.Now().Add(-time.Hour)
			gl.SetMergeRequest(pid, gitlabtest.MergeRequest{IID: 1, Title: "MR 1", SourceBranch: "feature-x", TargetBranch: "main", SHA: sha1})
			if code, body := g.deliver("app", res.WebhookSecret, "Merge Request Hook", mrPayload(t, pid, "merge_request_open.json", 1, sha1, t0), ""); code != 202 {
				t.Fatalf("MR open: %d %s", code, body)
			}
			mr := waitServing(g, "mr-1", sha1)
			if mr.Parent != "main" {
				t.Errorf("mr-1's parent is %q, want main", mr.Parent)
			}
			waitStatus(t, gl, pid, sha1, "glenv/mr-1", "success")
			rt.opened(t, g, mr, sha1, "mr 1")

			// A push to the MR's branch.
			sha2 := gl.Commit(t, pid, gitlabtest.Commit{Branch: "feature-x", Files: rt.files("mr 2")})
			gl.SetMergeRequest(pid, gitlabtest.MergeRequest{IID: 1, Title: "MR 1", SourceBranch: "feature-x", TargetBranch: "main", SHA: sha2})
			if code, body := g.deliver("app", res.WebhookSecret, "Merge Request Hook",
				mrPayload(t, pid, "merge_request_update.json", 1, sha2, t0.Add(time.Minute)).mr("action", "update", "oldrev", sha1), ""); code != 202 {
				t.Fatalf("MR update: %d %s", code, body)
			}
			mr = waitServing(g, "mr-1", sha2)
			waitStatus(t, gl, pid, sha2, "glenv/mr-1", "success")
			rt.pushed(t, g, mr, sha1, sha2, "mr 2")

			// The MR closes.
			if code, body := g.deliver("app", res.WebhookSecret, "Merge Request Hook",
				mrPayload(t, pid, "merge_request_close.json", 1, sha2, t0.Add(2*time.Minute)), ""); code != 202 {
				t.Fatalf("MR close: %d %s", code, body)
			}
			g.waitEnvLong("app", "mr-1", func(e envJSON, ok bool) bool { return !ok })
			rt.gone(t, g, mr, main)
		})
	}
}

// waitServing waits until the environment serves sha; when it fails
// instead, the test ends with its deploys' logs.
func waitServing(g *glenv, name, sha string) envJSON {
	g.t.Helper()
	return g.waitEnvLong("app", name, func(e envJSON, ok bool) bool {
		if ok && e.State == "failed" {
			var acts []activityJSON
			g.apiGet(fmt.Sprintf("/api/v1/activities?environment_id=%d", e.ID), &acts)
			var logs strings.Builder
			for _, a := range acts {
				fmt.Fprintf(&logs, "--- %s %s %s: %s\n%s\n", a.Kind, a.State, a.SHA, a.Result, g.activityLog(a.ID))
			}
			g.t.Fatalf("the deploy of %s on %s failed:\n%s", sha[:8], name, logs.String())
		}
		return ok && e.State == "active" && e.DeployedSHA == sha
	})
}

// waitStatus waits for a commit status in the GitLab double: feedback
// runs as its own job after the deploy.
func waitStatus(t *testing.T, gl *gitlabWorld, pid int64, sha, name, status string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		for _, st := range gl.Statuses(pid, sha) {
			if st.Name == name && st.Status == status {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s status %s on %s within 30s: %+v", status, name, sha[:8], gl.Statuses(pid, sha))
		}
		time.Sleep(100 * time.Millisecond) // the double has no event to wait on
	}
}

// processRuntime: apps run as local processes behind glenv's proxy.
type processRuntime struct{}

func (processRuntime) env(*testing.T) []string { return []string{"GLENV_RUNTIME=process"} }

func (processRuntime) files(marker string) map[string]string {
	return map[string]string{
		".glenv.yml": "run: python3 -m http.server $PORT --bind 127.0.0.1\nhealth: /\nservices:\n  files: [uploads]\n",
		"index.html": "<p>" + marker + "</p>\n",
	}
}

func uploadsDir(g *glenv, e envJSON) string {
	return filepath.Join(g.dataDir, "runtime", "envs", fmt.Sprint(e.ID), "data", "files", "uploads")
}

func (processRuntime) seed(t *testing.T, g *glenv, main envJSON) {
	if err := os.WriteFile(filepath.Join(uploadsDir(g, main), "seed.txt"), []byte("from main\n"), 0o644); err != nil {
		t.Fatalf("seed main's uploads: %v", err)
	}
}

func (processRuntime) opened(t *testing.T, g *glenv, mr envJSON, sha, marker string) {
	t.Helper()
	if code, body, err := g.getEnv("mr-1--app"); err != nil || code != 200 || !strings.Contains(body, marker) {
		t.Fatalf("GET mr-1--app: %d %v %q, want %q\n%s", code, err, body, marker, g.tail())
	}
	if b, err := os.ReadFile(filepath.Join(uploadsDir(g, mr), "seed.txt")); err != nil || string(b) != "from main\n" {
		t.Errorf("mr-1's uploads: %q %v, want main's seed.txt cloned", b, err)
	}
}

func (processRuntime) pushed(t *testing.T, g *glenv, mr envJSON, old, sha, marker string) {
	t.Helper()
	// The switch to the new process is atomic at the proxy once the deploy
	// is recorded active.
	if code, body, err := g.getEnv("mr-1--app"); err != nil || code != 200 || !strings.Contains(body, marker) {
		t.Fatalf("GET mr-1--app after the push: %d %v %q, want %q", code, err, body, marker)
	}
}

func (processRuntime) gone(t *testing.T, g *glenv, mr, main envJSON) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, _, _ := g.getEnv("mr-1--app")
		_, statErr := os.Stat(filepath.Join(g.dataDir, "runtime", "envs", fmt.Sprint(mr.ID)))
		if code == http.StatusNotFound && os.IsNotExist(statErr) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the close: mr-1--app answers %d, its directory: %v", code, statErr)
		}
		time.Sleep(50 * time.Millisecond) // the directory goes after the environment's row
	}
	if code, body, _ := g.getEnv("main--app"); code != 200 || !strings.Contains(body, "main") {
		t.Fatalf("main stopped serving: %d %q", code, body)
	}
}
