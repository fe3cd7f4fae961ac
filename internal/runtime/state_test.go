package runtime_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glenv/glenv/internal/gitlabtest"
	"github.com/glenv/glenv/internal/runtime"
)

func TestAPruneThatCannotReadAStateDeletesNothing(t *testing.T) {
	t.Parallel()
	w := newWorld(t, runtime.Options{})
	builds := filepath.Join(w.dataDir, "runtime", "builds")
	var logs strings.Builder
	// Two environments, each on a build of its own.
	for i, env := range []string{"one", "two"} {
		sha := w.gl.Commit(t, w.project.ID, gitlabtest.Commit{Branch: env, Files: map[string]string{
			".glenv.yml": "build: echo " + env + " > built.txt\n" + staticRun}})
		if err := w.rt.Deploy(t.Context(), w.request(w.env(int64(50+i), env, "branch"), sha, &logs)); err != nil {
			t.Fatalf("deploy: %v\n%s", err, logs.String())
		}
	}
	before, _ := os.ReadDir(builds)
	// Environment two's state cannot be read (here: it is a directory).
	state := filepath.Join(w.dataDir, "runtime", "envs", "51", "state.json")
	if err := os.Rename(state, state+".moved"); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	// One is gone: its build is no longer used, yet nothing may be pruned
	// while two's is unknown.
	if err := w.rt.Remove(t.Context(), w.env(50, "one", "branch"), nil); err != nil {
		t.Fatal(err)
	}
	err := runtime.PruneBuilds(w.rt)
	if err == nil || !strings.Contains(err.Error(), "51") {
		t.Fatalf("want an error naming environment 51's state, got %v", err)
	}
	after, _ := os.ReadDir(builds)
	if len(after) != len(before) {
		t.Fatalf("builds before %d, after %d: a prune that could not read a state deleted some", len(before), len(after))
	}
	// Readable again: one's build goes, two's stays.
	if err := os.Remove(state); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(state+".moved", state); err != nil {
		t.Fatal(err)
	}
	if err := runtime.PruneBuilds(w.rt); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadDir(builds); len(after) != len(before)-2 {
		t.Fatalf("builds %d, want %d (one's build and its marker pruned)", len(after), len(before)-2)
	}
	if _, _, ok := w.rt.Acquire("two--app"); !ok {
		t.Fatal("two stopped serving")
	}
}

func TestACorruptStateIsMovedAsideAndItsDatabasesAreStillFreed(t *testing.T) {
	t.Parallel()
	pg := servicesPostgres(t)
	w := newWorld(t, runtime.Options{Databases: pg})
	sha := w.gl.Commit(t, w.project.ID, gitlabtest.Commit{Files: map[string]string{
		".glenv.yml": staticRun + "services:\n  postgresql: [main, extra]\n"}})
	env := w.env(60, "main", "branch")
	var logs strings.Builder
	if err := w.rt.Deploy(t.Context(), w.request(env, sha, &logs)); err != nil {
		t.Fatalf("deploy: %v\n%s", err, logs.String())
	}
	dir := filepath.Join(w.dataDir, "runtime", "envs", "60")
	if err := os.WriteFile(filepath.Join(dir, "state.json"), []byte(`{"sha": "abc", "databa`), 0o600); err != nil {
		t.Fatal(err)
	}
	logs.Reset()
	if err := w.rt.Deploy(t.Context(), w.request(env, sha, &logs)); err != nil {
		t.Fatalf("redeploy over a corrupt state: %v\n%s", err, logs.String())
	}
	if b, err := os.ReadFile(filepath.Join(dir, "state.json.corrupt")); err != nil || !strings.Contains(string(b), "databa") {
		t.Fatalf("the corrupt file was not kept aside: %q %v", b, err)
	}
	// Corrupt again, then remove: both databases are found and dropped.
	if err := os.WriteFile(filepath.Join(dir, "state.json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	logs.Reset()
	if err := w.rt.Remove(t.Context(), env, func(s string) { logs.WriteString(s) }); err != nil {
		t.Fatal(err)
	}
	if dbs, err := pg.Databases(t.Context(), "g60_"); err != nil || len(dbs) != 0 {
		t.Fatalf("databases left after Remove over a corrupt state: %v %v\n%s", dbs, err, logs.String())
	}
}
