package main_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/glenv/glenv/internal/gitlabtest"
)

// getEnv fetches / of an environment through glenv's listener, by Host.
func (g *glenv) getEnv(host string) (int, string, error) {
	req, _ := http.NewRequest(http.MethodGet, g.URL+"/", nil)
	req.Host = host + ".localhost"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func TestAMergeRequestRunsBehindTheProxyIsReplacedWithoutAFailedRequestAndLeavesNoTrace(t *testing.T) {
	gl := newGitLab(t)
	pid := gl.Project.ID
	static, _ := filepath.Abs("../../examples/static")
	shaMain := gl.Commit(t, pid, gitlabtest.Commit{Branch: "main", Dir: static})
	g := startGlenv(t, "", "GLENV_RUNTIME=process")
	var res integrationJSON
	g.mustJSON(&res, addArgs(gl)...)
	g.waitEnv("app", "main", func(e envJSON, ok bool) bool { return ok && e.State == "active" && e.DeployedSHA == shaMain })

	// A merge request opens: its environment serves the MR's commit.
	sha1 := gl.Commit(t, pid, gitlabtest.Commit{Branch: "feature-x", Dir: static, Files: map[string]string{"index.html": "<p>mr version 1</p>\n"}})
	t0 := time.Now().Add(-time.Hour)
	gl.SetMergeRequest(pid, gitlabtest.MergeRequest{IID: 1, Title: "MR 1", SourceBranch: "feature-x", TargetBranch: "main", SHA: sha1})
	if code, body := g.deliver("app", res.WebhookSecret, "Merge Request Hook", mrPayload(t, pid, "merge_request_open.json", 1, sha1, t0), ""); code != 202 {
		t.Fatalf("MR open: %d %s", code, body)
	}
	mr := g.waitEnv("app", "mr-1", func(e envJSON, ok bool) bool { return ok && e.State == "active" && e.DeployedSHA == sha1 })
	host := "mr-1--app"
	if code, body, err := g.getEnv(host); err != nil || code != 200 || !strings.Contains(body, "mr version 1") {
		t.Fatalf("GET %s: %d %v %q\n%s", host, code, err, body, g.tail())
	}

	// A new commit replaces it while requests keep coming; none fails.
	var ok, failed atomic.Int64
	var first atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				case <-time.After(2 * time.Millisecond):
				}
				code, body, err := g.getEnv(host)
				if err != nil || code != 200 || !strings.Contains(body, "mr version") {
					failed.Add(1)
					first.CompareAndSwap(nil, fmt.Sprintf("%d %v %.200q", code, err, body))
					continue
				}
				ok.Add(1)
			}
		}()
	}
	sha2 := gl.Commit(t, pid, gitlabtest.Commit{Branch: "feature-x", Files: map[string]string{"index.html": "<p>mr version 2</p>\n"}})
	gl.SetMergeRequest(pid, gitlabtest.MergeRequest{IID: 1, Title: "MR 1", SourceBranch: "feature-x", TargetBranch: "main", SHA: sha2})
	if code, body := g.deliver("app", res.WebhookSecret, "Merge Request Hook",
		mrPayload(t, pid, "merge_request_update.json", 1, sha2, t0.Add(time.Minute)).mr("action", "update", "oldrev", sha1), ""); code != 202 {
		t.Fatalf("MR update: %d %s", code, body)
	}
	g.waitEnv("app", "mr-1", func(e envJSON, ok bool) bool { return ok && e.State == "active" && e.DeployedSHA == sha2 })
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, body, _ := g.getEnv(host)
		if strings.Contains(body, "mr version 2") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still serving %q after the redeploy", body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Requests keep coming after the switch: wait for a few more to be
	// served before stopping them, so the old process's stop is covered.
	served, deadline := ok.Load(), time.Now().Add(10*time.Second)
	for ok.Load() < served+20 && failed.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d requests served after the switch", ok.Load()-served)
		}
		time.Sleep(5 * time.Millisecond) // polls the counters the request loops advance
	}
	close(stop)
	wg.Wait()
	if failed.Load() > 0 || ok.Load() == 0 {
		t.Fatalf("%d of %d requests failed during the redeploy; first: %v", failed.Load(), failed.Load()+ok.Load(), first.Load())
	}

	// The app's own output is there to read, and its data can be synced again from the parent.
	if out := g.mustRun("environment:logs", "mr-1", "-i", "app"); !strings.Contains(out, "GET / ") {
		t.Fatalf("environment:logs shows no request the app served:\n%.500s", out)
	}
	if _, stderr, code := g.run("", "environment:sync", "mr-1", "-i", "app"); code == 0 || !strings.Contains(stderr, "--data") {
		t.Fatalf("environment:sync without --data: exit %d %s", code, stderr)
	}
	g.mustRun("environment:sync", "mr-1", "-i", "app", "--data")
	g.settle("app")
	if e := g.envs("app")["mr-1"]; e.State != "active" || e.DeployedSHA != sha2 {
		t.Fatalf("after environment:sync --data: %+v", e)
	}
	if _, stderr, code := g.run("", "environment:sync", "main", "-i", "app", "--data"); code == 0 || !strings.Contains(stderr, "no parent") {
		t.Fatalf("syncing the default branch's data: exit %d %s", code, stderr)
	}

	// Closing the MR removes every trace of its environment.
	if code, body := g.deliver("app", res.WebhookSecret, "Merge Request Hook",
		mrPayload(t, pid, "merge_request_close.json", 1, sha2, t0.Add(2*time.Minute)), ""); code != 202 {
		t.Fatalf("MR close: %d %s", code, body)
	}
	g.waitEnv("app", "mr-1", func(e envJSON, ok bool) bool { return !ok })
	deadline = time.Now().Add(10 * time.Second)
	for {
		code, _, _ := g.getEnv(host)
		_, statErr := os.Stat(filepath.Join(g.dataDir, "runtime", "envs", fmt.Sprint(mr.ID)))
		if code == http.StatusNotFound && os.IsNotExist(statErr) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the close: %s answers %d, directory: %v", host, code, statErr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, body, _ := g.getEnv("main--app"); code != 200 || !strings.Contains(body, "version 1") {
		t.Fatalf("main stopped serving: %d %q", code, body)
	}

	// After a restart the active environment serves again without a push.
	g.restart()
	deadline = time.Now().Add(15 * time.Second)
	for {
		code, body, _ := g.getEnv("main--app")
		if code == 200 && strings.Contains(body, "version 1") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("main after a restart: %d %q\n%s", code, body, g.tail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
