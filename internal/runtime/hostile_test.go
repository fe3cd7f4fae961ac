package runtime_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/glenv/glenv/internal/gitlabtest"
	"github.com/glenv/glenv/internal/runtime"
	"github.com/glenv/glenv/internal/store"
)

// These tests run a hostile app (testdata/probe/probe.py) in a real
// environment under bubblewrap; it attacks the host through its data
// directory while glenv deploys next to it.

// requireSandbox fails under CI, where bubblewrap must work, and skips
// elsewhere.
// hostTree is a root-only tree outside glenv standing for the host's
// files, and a snapshot of it: every path with its owner and mode.
func hostTree(t *testing.T) (dir string, snapshot func() string) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "host")
	for _, d := range []string{dir, filepath.Join(dir, "sub")} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"secret", "sub/file"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("host secret"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	snapshot = func() string {
		var b strings.Builder
		_ = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
			if err != nil {
				fmt.Fprintf(&b, "%s: %v\n", p, err)
				return nil
			}
			st := fi.Sys().(*syscall.Stat_t)
			fmt.Fprintf(&b, "%s %d:%d %v\n", p, st.Uid, st.Gid, fi.Mode())
			return nil
		})
		return b.String()
	}
	return dir, snapshot
}

// commitProbe commits the probe app with its mode, the rest of .glenv.yml and
// more variables (name, value, …).
func (w *world) commitProbe(t *testing.T, branch, mode, host, extra string, vars ...string) string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("testdata", "probe", "probe.py"))
	if err != nil {
		t.Fatal(err)
	}
	yml := "run: exec python3 probe.py\nhealth: /\nenv:\n  PROBE: " + mode + "\n  HOST_TREE: " + strconv.Quote(host) + "\n"
	for i := 0; i+1 < len(vars); i += 2 {
		yml += "  " + vars[i] + ": " + strconv.Quote(vars[i+1]) + "\n"
	}
	yml += extra
	return w.gl.Commit(t, w.project.ID, gitlabtest.Commit{Branch: branch, Files: map[string]string{".glenv.yml": yml, "probe.py": string(src)}})
}

// attacking waits until the environment's probe has gone round its attack
// at least once, and returns what it answers.
func (w *world) attacking(t *testing.T, env store.Environment) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, body, err := w.get(env.Host)
		if f := strings.Fields(body); err == nil && len(f) >= 2 && f[1] != "0" {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("the probe never started its attack: %q %v", body, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// noHostFile fails when a regular file below dir holds the host's secret.
func noHostFile(t *testing.T, dir string) {
	t.Helper()
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if b, _ := os.ReadFile(p); strings.Contains(string(b), "host secret") {
				t.Errorf("%s is a copy of the host's file", p)
			}
		}
		return nil
	})
}

func TestAnAppSwappingItsDirectoriesForSymlinksDuringRedeploysTakesNothingOfTheHost(t *testing.T) {
	t.Parallel()
	w := newWorld(t, runtime.Options{})
	requireSandbox(t, w.rt)
	host, snapshot := hostTree(t)
	before := snapshot()
	sha := w.commitProbe(t, "mr-30", "swap", host, "services:\n  files: [uploads]\n")
	env := w.env(30, "mr-30", "mr")
	var logs strings.Builder
	if err := w.rt.Deploy(t.Context(), w.request(env, sha, &logs)); err != nil {
		t.Fatalf("deploy: %v\n%s", err, logs.String())
	}
	w.attacking(t, env)
	// Redeploys that keep the data, then one that takes a fresh copy and
	// removes the old one, all while the app swaps 300 directory/symlink
	// pairs under glenv.
	for i := range 4 {
		if i == 3 {
			if err := w.rt.ResetData(t.Context(), env.ID); err != nil {
				t.Fatal(err)
			}
		}
		logs.Reset()
		if err := w.rt.Deploy(t.Context(), w.request(env, sha, &logs)); err != nil {
			t.Fatalf("redeploy %d: %v\n%s", i, err, logs.String())
		}
		w.attacking(t, env)
	}
	if after := snapshot(); after != before {
		t.Fatalf("the host's tree changed:\nbefore\n%s\nafter\n%s", before, after)
	}
}

func TestASymlinkAtDataFilesMakesGlenvCreateNothingThroughIt(t *testing.T) {
	t.Parallel()
	w := newWorld(t, runtime.Options{})
	requireSandbox(t, w.rt)
	host, snapshot := hostTree(t)
	before := snapshot()
	env := w.env(31, "mr-31", "mr")
	var logs strings.Builder
	sha := w.commitProbe(t, "mr-31", "linkfiles", host, "services:\n  files: [uploads]\n")
	if err := w.rt.Deploy(t.Context(), w.request(env, sha, &logs)); err != nil {
		t.Fatalf("deploy: %v\n%s", err, logs.String())
	}
	w.attacking(t, env)
	// The next commit asks for one more directory: glenv would make it
	// in files/, which the app made a symlink to the host's tree.
	sha = w.commitProbe(t, "mr-31", "linkfiles", host, "services:\n  files: [uploads, photos]\n")
	logs.Reset()
	err := w.rt.Deploy(t.Context(), w.request(env, sha, &logs))
	if err == nil || !strings.Contains(err.Error(), "symlink") || !strings.Contains(err.Error(), "environment:sync --data") {
		t.Fatalf("want a refusal naming the symlink and the fix, got %v\n%s", err, logs.String())
	}
	if after := snapshot(); after != before {
		t.Fatalf("the host's tree changed:\nbefore\n%s\nafter\n%s", before, after)
	}
	if _, _, ok := w.rt.Acquire(env.Host); !ok {
		t.Fatal("the refused deploy took down the running app")
	}
	t.Run("a fresh copy of the data deploys again", func(t *testing.T) {
		if err := w.rt.ResetData(t.Context(), env.ID); err != nil {
			t.Fatal(err)
		}
		sha := w.commitProbe(t, "mr-31", "quiet", host, "services:\n  files: [uploads, photos]\n")
		logs.Reset()
		if err := w.rt.Deploy(t.Context(), w.request(env, sha, &logs)); err != nil {
			t.Fatalf("deploy: %v\n%s", err, logs.String())
		}
		if after := snapshot(); after != before {
			t.Fatalf("the host's tree changed:\n%s", after)
		}
	})
}

func TestAParentWhoseFilesLinkOutOfItsTreeIsClonedWithoutTheHostsFiles(t *testing.T) {
	t.Parallel()
	w := newWorld(t, runtime.Options{})
	requireSandbox(t, w.rt)
	host, snapshot := hostTree(t)
	before := snapshot()
	parent := w.env(32, "main", "branch")
	var logs strings.Builder
	sha := w.commitProbe(t, "main", "parent", host, "services:\n  files: [uploads]\n")
	if err := w.rt.Deploy(t.Context(), w.request(parent, sha, &logs)); err != nil {
		t.Fatalf("deploy the parent: %v\n%s", err, logs.String())
	}
	w.attacking(t, parent)
	// Several merge requests clone the parent while it swaps directories
	// for symlinks to the host's tree.
	for i := range 3 {
		mr := w.env(int64(33+i), "mr-"+strconv.Itoa(33+i), "mr")
		sha := w.commitProbe(t, mr.Name, "quiet", host, "services:\n  files: [uploads]\n")
		req := w.request(mr, sha, &logs)
		req.CloneParentData, req.Parent = true, &store.Environment{ID: parent.ID, Name: parent.Name}
		logs.Reset()
		if err := w.rt.Deploy(t.Context(), req); err != nil {
			t.Fatalf("deploy %s: %v\n%s", mr.Name, err, logs.String())
		}
		if !strings.Contains(logs.String(), "cloned files uploads from main") {
			t.Fatalf("no clone:\n%s", logs.String())
		}
		uploads := filepath.Join(w.dataDir, "runtime", "envs", strconv.Itoa(33+i), "data", "files", "uploads")
		for name, want := range map[string]string{"shadow": host + "/secret", "hostdir": host} {
			if got, err := os.Readlink(filepath.Join(uploads, name)); err != nil || got != want {
				t.Errorf("%s: %q %v; want the symlink copied as a symlink to %s", name, got, err, want)
			}
		}
		if b, err := os.ReadFile(filepath.Join(uploads, "own.txt")); err != nil || string(b) != "the parent's own file" {
			t.Errorf("the parent's own file: %q %v", b, err)
		}
		noHostFile(t, filepath.Dir(uploads))
	}
	if after := snapshot(); after != before {
		t.Fatalf("the host's tree changed:\nbefore\n%s\nafter\n%s", before, after)
	}
}
