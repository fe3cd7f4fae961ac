package runtime_test

import (
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	goruntime "runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/glenv/glenv/internal/gitlabtest"
	"github.com/glenv/glenv/internal/runtime"
	"github.com/glenv/glenv/internal/store"
)

// requireCgroups fails under CI and skips elsewhere where glenv cannot
// make cgroups.
func requireCgroups(t *testing.T, rt *runtime.Runtime) {
	t.Helper()
	if runtime.HasCgroups(rt) {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("glenv cannot make cgroups here; CI runs as root and must")
	}
	t.Skip("glenv cannot make cgroups here")
}

// deployFiles commits files on env's branch and deploys them; it returns
// the deploy's log and error.
func (w *world) deployFiles(t *testing.T, env store.Environment, files map[string]string) (string, error) {
	t.Helper()
	sha := w.gl.Commit(t, w.project.ID, gitlabtest.Commit{Branch: env.Ref, Files: files})
	var logs strings.Builder
	err := w.rt.Deploy(t.Context(), w.request(env, sha, &logs))
	return logs.String(), err
}

// hungryFiles is the probe app with a build step that does what build says.
func hungryFiles(t *testing.T, name, build string) map[string]string {
	t.Helper()
	app, err := os.ReadFile(filepath.Join("testdata", "probe", "app.py"))
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		".glenv.yml": "build: " + strconv.Quote(build) + "\nrun: exec python3 app.py " + name +
			"\nhealth: /\nlimits:\n  memory: 96M\n  processes: 40\n",
		"app.py": string(app),
	}
}

// The limits hold for an environment as a whole: its build beside its
// running app share one memory and one process budget, and another
// environment with the same limits has its own.
func TestAnEnvironmentsProcessesShareItsLimits(t *testing.T) {
	t.Parallel()
	w := newWorld(t, runtime.Options{})
	requireSandbox(t, w.rt)
	requireCgroups(t, w.rt)
	const (
		// 72M plus Python fits 96M alone, not beside an app holding 32M.
		allocBuild = `python3 -c "b = bytearray(72 << 20); b[::4096] = b'1' * len(b[::4096]); print('build', 'allocated')"`
		// Up to 30 processes at once: fits 40 alone, not beside 20 held by the app.
		forkBuild = `python3 -c "
import os, time
n = 0
try:
    for i in range(30):
        if os.fork() == 0:
            time.sleep(2); os._exit(0)
        n += 1
    print('forked', 'all', n)
except OSError as e:
    print('refused after', n, e)
"`
	)
	hog := w.env(93, "mr-93", "mr")
	if logs, err := w.deployFiles(t, hog, hungryFiles(t, hog.Name, "echo build-ok")); err != nil {
		t.Fatalf("first deploy: %v\n%s", err, logs)
	}
	dirs := runtime.EnvCgroupDirs(w.rt, hog.ID)
	for _, d := range dirs {
		if _, err := os.Stat(d); err != nil {
			t.Fatalf("the environment has no cgroup of its own at %s: %v", d, err)
		}
	}

	t.Run("glenv's cgroup weighs one process per CPU on a busy machine", func(t *testing.T) {
		file, want := filepath.Join(filepath.Dir(dirs[len(dirs)-1]), "cpu.shares"), 1024*goruntime.NumCPU()
		if runtime.CgroupV2(w.rt) {
			file, want = filepath.Join(filepath.Dir(dirs[0]), "cpu.weight"), min(100*goruntime.NumCPU(), 10000)
		}
		b, err := os.ReadFile(file)
		if err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(want) {
			t.Fatalf("%s: %q (%v), want %d", file, b, err, want)
		}
	})

	t.Run("a build beside the app cannot use the memory the app holds", func(t *testing.T) {
		if got := w.probe(t, hog, "/alloc?mb=32"); got != "allocated" {
			t.Fatalf("the app could not hold 32M under 96M: %q", got)
		}
		logs, err := w.deployFiles(t, hog, hungryFiles(t, hog.Name, allocBuild))
		if err == nil || strings.Contains(logs, "build allocated") {
			t.Fatalf("a build of 72M beside an app holding 32M under one limit of 96M succeeded:\n%s", logs)
		}
		if !strings.Contains(err.Error()+logs, "together went over the memory limit 96M") {
			t.Fatalf("the deploy does not say the environment went over its memory limit: %v\n%s", err, logs)
		}
		if got := w.probe(t, hog, "/"); got != "probe "+hog.Name {
			t.Fatalf("the running app was hit instead of the build: %q", got)
		}
	})

	t.Run("a build beside the app cannot use the processes the app holds", func(t *testing.T) {
		got := w.probe(t, hog, "/sh?cmd="+url.QueryEscape(`for i in $(seq 20); do setsid sleep 3093 </dev/null >/dev/null 2>&1 & done; echo held`))
		if !strings.Contains(got, "held") {
			t.Fatalf("the app could not start 20 processes under 40: %q", got)
		}
		waitFor(t, "the app's 20 processes to run", 10e9, func() bool { return len(processesWith(t, "sleep 3093")) >= 20 })
		logs, _ := w.deployFiles(t, hog, hungryFiles(t, hog.Name, forkBuild))
		m := regexp.MustCompile(`refused after (\d+)`).FindStringSubmatch(logs)
		if m == nil {
			t.Fatalf("a build forking 30 beside an app holding 20 processes under one limit of 40 was not refused:\n%s", logs)
		}
		if n, _ := strconv.Atoi(m[1]); n >= 20 {
			t.Fatalf("the build forked %d processes beside the app's 20 under a limit of 40", n)
		}
	})

	t.Run("another environment with the same limits has its own", func(t *testing.T) {
		other := w.env(94, "mr-94", "mr")
		logs, err := w.deployFiles(t, other, hungryFiles(t, other.Name, allocBuild+" && "+forkBuild))
		if err != nil || !strings.Contains(logs, "build allocated") || !strings.Contains(logs, "forked all 30") {
			t.Fatalf("the same build alone in another environment failed: %v\n%s", err, logs)
		}
		if got := w.probe(t, other, "/alloc?mb=32"); got != "allocated" {
			t.Fatalf("the other environment could not hold 32M: %q", got)
		}
		if got := w.probe(t, hog, "/"); got != "probe "+hog.Name {
			t.Fatalf("the first environment stopped serving: %q", got)
		}
	})

	t.Run("removing the environment removes its cgroup and every process in it", func(t *testing.T) {
		if err := w.rt.Remove(t.Context(), hog, nil); err != nil {
			t.Fatal(err)
		}
		for _, d := range dirs {
			if _, err := os.Stat(d); !os.IsNotExist(err) {
				t.Fatalf("the removed environment's cgroup %s is still there (%v)", d, err)
			}
		}
		noProcessesLeft(t, "sleep 3093")
	})
}
