package runtime_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glenv/glenv/internal/gitlabtest"
	"github.com/glenv/glenv/internal/runtime"
	"github.com/glenv/glenv/internal/store"
)

// An integration's ceilings reach the kernel: the default of a server
// allowing more is lowered to them in the environment's real cgroup, and a
// .glenv.yml asking for more is refused naming the key and the ceiling.
func TestAnIntegrationsCeilingsAreAppliedToItsSandboxedApps(t *testing.T) {
	t.Parallel()
	w := newWorld(t, runtime.Options{})
	requireSandbox(t, w.rt)
	requireCgroups(t, w.rt)
	ceilings := store.Ceilings{MaxMemory: 128 << 20, MaxProcesses: 64}
	deploy := func(env store.Environment, limits string) (string, error) {
		app, err := os.ReadFile(filepath.Join("testdata", "probe", "app.py"))
		if err != nil {
			t.Fatal(err)
		}
		sha := w.gl.Commit(t, w.project.ID, gitlabtest.Commit{Branch: env.Ref, Files: map[string]string{
			".glenv.yml": "run: exec python3 app.py " + env.Name + "\nhealth: /\n" + limits, "app.py": string(app)}})
		var logs strings.Builder
		req := w.request(env, sha, &logs)
		req.Integration.Ceilings = ceilings
		err = w.rt.Deploy(t.Context(), req)
		return logs.String(), err
	}

	env := w.env(95, "mr-95", "mr")
	if logs, err := deploy(env, ""); err != nil {
		t.Fatalf("deploy: %v\n%s", err, logs)
	} else if !strings.Contains(logs, "ceilings of integration app: memory 128M, processes 64") {
		t.Errorf("the deploy log does not say which ceilings apply:\n%s", logs)
	}
	dirs := runtime.EnvCgroupDirs(w.rt, env.ID)
	memFile, pidsFile := filepath.Join(dirs[0], "memory.limit_in_bytes"), filepath.Join(dirs[1], "pids.max")
	if runtime.CgroupV2(w.rt) {
		memFile, pidsFile = filepath.Join(dirs[0], "memory.max"), filepath.Join(dirs[0], "pids.max")
	}
	for file, want := range map[string]string{memFile: "134217728", pidsFile: "64"} {
		b, err := os.ReadFile(file)
		if err != nil || strings.TrimSpace(string(b)) != want {
			t.Errorf("%s = %q (%v), want the integration's ceiling %s", file, b, err, want)
		}
	}
	if got := w.probe(t, env, "/"); got != "probe "+env.Name {
		t.Fatalf("the app under the integration's ceilings answers %q", got)
	}

	_, err := deploy(w.env(96, "mr-96", "mr"), "limits:\n  memory: 256M\n")
	if err == nil || !strings.Contains(err.Error(), "limits.memory: 256M is over integration app's ceiling 128M (glenv integration:update app --environment-max-memory); ask for at most 128M") {
		t.Fatalf("a .glenv.yml over the integration's ceiling: %v", err)
	}
}

// A closed runtime leaves no cgroup behind: not its environments' and not
// its own base, so runtimes that come and go (each data dir's, each
// test's) do not pile cgroups up on the host.
func TestAClosedRuntimeRemovesItsCgroups(t *testing.T) {
	t.Parallel()
	w := newWorld(t, runtime.Options{})
	requireSandbox(t, w.rt)
	requireCgroups(t, w.rt)
	app, err := os.ReadFile(filepath.Join("testdata", "probe", "app.py"))
	if err != nil {
		t.Fatal(err)
	}
	env := w.env(97, "mr-97", "mr")
	if logs, err := w.deployFiles(t, env, map[string]string{
		".glenv.yml": "run: exec python3 app.py " + env.Name + "\nhealth: /\nlimits:\n  memory: 64M\n", "app.py": string(app)}); err != nil {
		t.Fatalf("deploy: %v\n%s", err, logs)
	}
	dirs := runtime.EnvCgroupDirs(w.rt, env.ID)
	var gone []string
	for _, d := range dirs {
		if _, err := os.Stat(d); err != nil {
			t.Fatalf("the running environment's cgroup %s: %v", d, err)
		}
		gone = append(gone, d, filepath.Dir(d))
	}
	w.rt.Close()
	for _, d := range gone {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("after Close, cgroup %s is still there (%v)", d, err)
		}
	}
}
