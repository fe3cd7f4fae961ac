package main_test

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/glenv/glenv/internal/gitlabtest"
)

// readyz answers /readyz's status and body.
func (g *glenv) readyz() (int, string) {
	resp, err := http.Get(g.URL + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitFor polls cond until it holds or the deadline passes.
func waitUntil(t *testing.T, what string, within time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s; last: %s", what, within, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestTheServicesPostgreSQLKilledMakesGlenvUnreadyUntilItIsBackAndTheNextDeployClones(t *testing.T) {
	if _, err := os.Stat("/usr/bin/bwrap"); err != nil && os.Geteuid() == 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("bubblewrap is missing; glenv as root runs its PostgreSQL through it")
		}
		t.Skip("bubblewrap is missing")
	}
	if m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb"); len(m) == 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("PostgreSQL is not installed")
		}
		t.Skip("PostgreSQL is not installed")
	}
	gl := newGitLab(t)
	pid := gl.Project.ID
	guestbook, _ := filepath.Abs("../../examples/guestbook")
	shaMain := gl.Commit(t, pid, gitlabtest.Commit{Branch: "main", Dir: guestbook})
	shaFeature := gl.Commit(t, pid, gitlabtest.Commit{Branch: "feature-x", Dir: guestbook, Files: map[string]string{"NOTES": "x"}})
	g := startGlenv(t, "", "GLENV_RUNTIME=process")
	var res integrationJSON
	g.mustJSON(&res, addArgs(gl)...)
	active := func(name, sha string) func() (bool, string) {
		return func() (bool, string) {
			e := g.envs("app")[name]
			return e.State == "active" && e.DeployedSHA == sha, e.State + " " + e.DeployedSHA + "\n" + g.tail()
		}
	}
	waitUntil(t, "main active", 2*time.Minute, active("main", shaMain))

	b, err := os.ReadFile(filepath.Join(g.dataDir, "postgresql", "pgdata", "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	postmaster, _ := strconv.Atoi(strings.SplitN(string(b), "\n", 2)[0])
	if err := syscall.Kill(postmaster, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "/readyz says the services PostgreSQL is down", 20*time.Second, func() (bool, string) {
		code, body := g.readyz()
		return code == 503 && strings.Contains(body, "services PostgreSQL"), strconv.Itoa(code) + " " + body
	})
	waitUntil(t, "/readyz ready again", 2*time.Minute, func() (bool, string) {
		code, body := g.readyz()
		return code == 200, strconv.Itoa(code) + " " + body + "\n" + g.tail()
	})
	if logs := g.logs.String(); !strings.Contains(logs, "the services PostgreSQL exited") || !strings.Contains(logs, "serving again") {
		t.Fatalf("the exit and the restart are not in glenv's log:\n%s", g.tail())
	}

	// The branch's environment is activated: its database is cloned from main's.
	g.mustRun("environment:activate", "feature-x", "-i", "app")
	waitUntil(t, "feature-x active", 2*time.Minute, active("feature-x", shaFeature))
}
