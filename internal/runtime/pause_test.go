package runtime_test

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/glenv/glenv/internal/gitlabtest"
	"github.com/glenv/glenv/internal/runtime"
)

// Issue 17: a paused environment has no process and no open port, and
// keeps its build and data; waking it (a deploy of the same commit) starts
// it from that build without building again, with its data as it was.
func TestPauseStopsTheAppAndKeepsItsBuildAndData(t *testing.T) {
	t.Parallel()
	w := newWorld(t, runtime.Options{})
	sha := w.gl.Commit(t, w.project.ID, gitlabtest.Commit{Branch: "feature", Dir: examplesDir(t, "static"),
		Files: map[string]string{".glenv.yml": "build:\n  - echo built > built.txt\nrun: echo kept >> $GLENV_DATA_DIR/mark && python3 -m http.server $PORT --bind 127.0.0.1\nhealth: /\n"}})
	env := w.env(9, "feature", "branch")
	var logs strings.Builder
	if err := w.rt.Deploy(t.Context(), w.request(env, sha, &logs)); err != nil {
		t.Fatalf("deploy: %v\n%s", err, logs.String())
	}
	addr, release, ok := w.rt.Acquire(env.Host)
	if !ok {
		t.Fatal("no backend after the deploy")
	}
	release()

	if err := w.rt.Pause(t.Context(), env.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := w.rt.Acquire(env.Host); ok {
		t.Fatal("the paused environment still has a backend")
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatalf("the paused app still listens on %s", addr)
	}
	if code, body, _ := w.get(env.Host); code == 200 {
		t.Fatalf("the proxy still serves the paused environment: %q", body)
	}

	var wake strings.Builder
	if err := w.rt.Deploy(t.Context(), w.request(env, sha, &wake)); err != nil {
		t.Fatalf("wake: %v\n%s", err, wake.String())
	}
	t.Logf("wake log:\n%s", wake.String())
	if !strings.Contains(wake.String(), "reusing build") || strings.Contains(wake.String(), "build step") {
		t.Fatalf("waking built again:\n%s", wake.String())
	}
	if code, _, err := w.get(env.Host); err != nil || code != 200 {
		t.Fatalf("after waking: %d %v", code, err)
	}
	mark, err := os.ReadFile(filepath.Join(w.dataDir, "runtime", "envs", strconv.Itoa(int(env.ID)), "data", "mark"))
	if err != nil {
		t.Fatalf("the app's data: %v", err)
	}
	if got := strings.Count(string(mark), "kept"); got != 2 {
		t.Fatalf("the app's data after a pause and a wake has %d marks, want 2 (kept across the pause)", got)
	}
}
