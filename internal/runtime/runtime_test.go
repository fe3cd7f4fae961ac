package runtime_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/glenv/glenv/internal/gitlabtest"
	"github.com/glenv/glenv/internal/runtime"
	"github.com/glenv/glenv/internal/store"
)

const staticRun = "run: python3 -m http.server $PORT --bind 127.0.0.1\nhealth: /\n"

func TestSandboxedBuildsCannotReadGlenvOrOtherEnvironments(t *testing.T) {
	t.Parallel()
	w := newWorld(t, runtime.Options{})
	if !w.rt.Sandboxed() {
		t.Skip("bubblewrap is not usable here")
	}
	// Environment 1 holds a private file in its data.
	sha := w.gl.Commit(t, w.project.ID, gitlabtest.Commit{Files: map[string]string{
		".glenv.yml": staticRun + "services:\n  files: [uploads]\n", "index.html": "one"}})
	var logs strings.Builder
	one := w.env(1, "main", "branch")
	if err := w.rt.Deploy(t.Context(), w.request(one, sha, &logs)); err != nil {
		t.Fatalf("deploy: %v\n%s", err, logs.String())
	}
	private := filepath.Join(w.dataDir, "runtime", "envs", "1", "data", "files", "uploads", "private.txt")
	if err := os.WriteFile(private, []byte("environment one's data"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, step string }{
		{"glenv's data dir", "ls " + w.dataDir},
		{"the secret key file", "cat " + filepath.Join(w.dataDir, "secret.key")},
		{"another environment's files", "cat " + private},
		{"glenv's own process environment", "cat /proc/" + strconv.Itoa(os.Getpid()) + "/environ"},
	} {
		t.Run("a build reading "+tc.name+" fails", func(t *testing.T) {
			sha := w.gl.Commit(t, w.project.ID, gitlabtest.Commit{Branch: "mr", Files: map[string]string{
				".glenv.yml": "build: " + strconvQuote(tc.step) + "\n" + staticRun}})
			var logs strings.Builder
			err := w.rt.Deploy(t.Context(), w.request(w.env(2, "mr-2", "mr"), sha, &logs))
			if err == nil || !strings.Contains(err.Error(), "build step 1") {
				t.Fatalf("deploy: %v\n%s", err, logs.String())
			}
			if strings.Contains(logs.String(), "top secret") || strings.Contains(logs.String(), "environment one's data") {
				t.Fatalf("the build read it:\n%s", logs.String())
			}
		})
	}
	t.Run("the same build can read its own checkout and the system", func(t *testing.T) {
		sha := w.gl.Commit(t, w.project.ID, gitlabtest.Commit{Branch: "mr", Files: map[string]string{
			".glenv.yml": "build: cat index.html && python3 -c 'print(1)' && touch built.txt\n" + staticRun, "index.html": "own"}})
		var logs strings.Builder
		if err := w.rt.Deploy(t.Context(), w.request(w.env(2, "mr-2", "mr"), sha, &logs)); err != nil {
			t.Fatalf("deploy: %v\n%s", err, logs.String())
		}
	})
	if os.Geteuid() == 0 {
		t.Run("apps run as an unprivileged uid of their own", func(t *testing.T) {
			sha := w.gl.Commit(t, w.project.ID, gitlabtest.Commit{Branch: "mr", Files: map[string]string{
				".glenv.yml": "run: id -u > $GLENV_DATA_DIR/uid; exec python3 -m http.server $PORT --bind 127.0.0.1\nhealth: /\n"}})
			var logs strings.Builder
			if err := w.rt.Deploy(t.Context(), w.request(w.env(2, "mr-2", "mr"), sha, &logs)); err != nil {
				t.Fatalf("deploy: %v\n%s", err, logs.String())
			}
			b, _ := os.ReadFile(filepath.Join(w.dataDir, "runtime", "envs", "2", "data", "uid"))
			if uid := strings.TrimSpace(string(b)); uid == "" || uid == "0" {
				t.Fatalf("the app ran as uid %q", uid)
			}
		})
	}
}

func strconvQuote(s string) string { return strconv.Quote(s) }

func TestCodeIsRefusedWithoutASandboxUnlessUnsafe(t *testing.T) {
	t.Parallel()
	w := newWorld(t, runtime.Options{DisableSandbox: true})
	sha := w.gl.Commit(t, w.project.ID, gitlabtest.Commit{Files: map[string]string{".glenv.yml": staticRun}})
	for _, tc := range []struct {
		name string
		env  store.Environment
		what string
	}{
		{"merge request code is refused", w.env(3, "mr-3", "mr"), "merge request"},
		{"branch code is refused like merge request code", w.env(4, "main", "branch"), "branch"},
		{"tag code is refused like merge request code", w.env(5, "tag-v1", "tag"), "tag"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs strings.Builder
			err := w.rt.Deploy(t.Context(), w.request(tc.env, sha, &logs))
			if err == nil || !strings.Contains(err.Error(), "refusing to run "+tc.what+" code without a sandbox") || !strings.Contains(err.Error(), "--unsafe-no-sandbox") {
				t.Fatalf("want a refusal of %s code naming --unsafe-no-sandbox, got %v", tc.what, err)
			}
			if strings.Contains(logs.String(), "fetching") {
				t.Fatalf("the refused deploy fetched the code:\n%s", logs.String())
			}
		})
	}

	unsafe := newWorld(t, runtime.Options{DisableSandbox: true, UnsafeNoSandbox: true})
	sha = unsafe.gl.Commit(t, unsafe.project.ID, gitlabtest.Commit{Files: map[string]string{".glenv.yml": staticRun}})
	var logs strings.Builder
	for _, env := range []store.Environment{unsafe.env(3, "mr-3", "mr"), unsafe.env(4, "main", "branch")} {
		if err := unsafe.rt.Deploy(t.Context(), unsafe.request(env, sha, &logs)); err != nil {
			t.Fatalf("%s with --unsafe-no-sandbox: %v\n%s", env.Name, err, logs.String())
		}
	}
}

func TestDeployFailuresSayWhatToFix(t *testing.T) {
	t.Parallel()
	w := newWorld(t, runtime.Options{HealthTimeout: 1500 * time.Millisecond})
	for i, tc := range []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"a commit without .glenv.yml", map[string]string{"index.html": "x"}, ".glenv.yml: not found at the repository root"},
		{"an invalid .glenv.yml", map[string]string{".glenv.yml": "run: x\n"}, "missing property 'health'"},
		{"a failing build step", map[string]string{".glenv.yml": "build: exit 3\n" + staticRun}, "build step 1 (`exit 3`) failed"},
		{"an app that exits", map[string]string{".glenv.yml": "run: echo bye; exit 1\nhealth: /\n"}, "the app exited"},
		{"an app that never gets healthy", map[string]string{".glenv.yml": "run: python3 -m http.server $PORT --bind 127.0.0.1\nhealth: /missing\n"}, "did not answer 2xx within"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sha := w.gl.Commit(t, w.project.ID, gitlabtest.Commit{Branch: "case-" + strconv.Itoa(i), Files: tc.files})
			var logs strings.Builder
			err := w.rt.Deploy(t.Context(), w.request(w.env(5, "main", "branch"), sha, &logs))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want %q, got %v\n%s", tc.want, err, logs.String())
			}
		})
	}
	t.Run("a wrong token is answered with what to do", func(t *testing.T) {
		sha := w.gl.Commit(t, w.project.ID, gitlabtest.Commit{Files: map[string]string{".glenv.yml": staticRun}})
		req := w.request(w.env(6, "other", "branch"), sha, &strings.Builder{})
		req.Integration.ProjectID = 999 // a fresh cache repository, so it must fetch
		req.Token = "glpat-wrong"
		err := w.rt.Deploy(t.Context(), req)
		if err == nil || !strings.Contains(err.Error(), "refused the integration's token") || strings.Contains(err.Error(), "glpat-wrong") {
			t.Fatalf("got %v", err)
		}
	})
}

func TestANewerPushCancelsABuildAndLeavesNothingRunning(t *testing.T) {
	t.Parallel()
	w := newWorld(t, runtime.Options{})
	sha := w.gl.Commit(t, w.project.ID, gitlabtest.Commit{Files: map[string]string{
		".glenv.yml": "build: sleep 31.5\n" + staticRun}})
	ctx, cancel := context.WithTimeout(t.Context(), 800*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := w.rt.Deploy(ctx, w.request(w.env(8, "main", "branch"), sha, &strings.Builder{}))
	if err == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("deploy returned %v after %s", err, time.Since(start))
	}
	// The kernel reaps the sandbox's PID namespace right after its init dies.
	noProcessesLeft(t, "sleep 31.5")
}

func TestARebuiltTreeIsReusedAndRestoreNeedsNoBuild(t *testing.T) {
	t.Parallel()
	w := newWorld(t, runtime.Options{})
	sha := w.gl.Commit(t, w.project.ID, gitlabtest.Commit{Files: map[string]string{
		".glenv.yml": "build: echo building > built.txt\n" + staticRun + "paths: [web/]\n", "web/index.html": "v1"}})
	var logs strings.Builder
	main := w.env(9, "main", "branch")
	if err := w.rt.Deploy(t.Context(), w.request(main, sha, &logs)); err != nil {
		t.Fatalf("deploy: %v\n%s", err, logs.String())
	}
	logs.Reset()
	if err := w.rt.Deploy(t.Context(), w.request(w.env(10, "feature", "branch"), sha, &logs)); err != nil {
		t.Fatalf("deploy: %v\n%s", err, logs.String())
	}
	if !strings.Contains(logs.String(), "reusing build") || strings.Contains(logs.String(), "build step") {
		t.Fatalf("the same tree was built again:\n%s", logs.String())
	}

	// A push touching nothing under paths keeps the running app.
	sha2 := w.gl.Commit(t, w.project.ID, gitlabtest.Commit{Files: map[string]string{"README.md": "docs"}})
	logs.Reset()
	if err := w.rt.Deploy(t.Context(), w.request(main, sha2, &logs)); err != nil || !strings.Contains(logs.String(), "no change under paths") {
		t.Fatalf("deploy: %v\n%s", err, logs.String())
	}

	// glenv restarts: a new runtime on the same directory serves the
	// environment again without building.
	w.rt.Close()
	rt2, err := runtime.New(runtime.Options{Dir: filepath.Join(w.dataDir, "runtime"), StopGrace: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer rt2.Close()
	logs.Reset()
	req := w.request(main, sha, &logs)
	req.Token = "" // nothing needs fetching
	if err := rt2.Restore(t.Context(), []runtime.DeployRequest{req}); err != nil {
		t.Fatalf("restore: %v\n%s", err, logs.String())
	}
	if !strings.Contains(logs.String(), "reusing build") || !strings.Contains(logs.String(), "already fetched") {
		t.Fatalf("restore rebuilt or refetched:\n%s", logs.String())
	}
	if _, _, ok := rt2.Acquire(main.Host); !ok {
		t.Fatal("restored environment has no backend")
	}
}

// processesWith lists pids whose command line contains s.
func processesWith(t *testing.T, s string) []string {
	t.Helper()
	var pids []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(strings.ReplaceAll(string(b), "\x00", " "), s) {
			pids = append(pids, e.Name())
		}
	}
	return pids
}
