package main_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/glenv/glenv/internal/gitlabtest"
	"github.com/glenv/glenv/internal/runtime"
)

// A glenv killed with SIGKILL leaves its base cgroups behind (with
// whatever of its environments still runs in them); a glenv that never
// starts in that data dir again never clears them. The
// harness's cleanup removes them with runtime.RemoveCgroups: after it,
// none of the killed glenv's cgroups remains, and its app is gone.
func TestAKilledGlenvLeavesNoCgroupBehind(t *testing.T) {
	gl := newGitLab(t)
	static, _ := filepath.Abs("../../examples/static")
	sha := gl.Commit(t, gl.Project.ID, gitlabtest.Commit{Branch: "main", Dir: static})
	g := startGlenv(t, "", "GLENV_RUNTIME=process")
	dirs, err := runtime.CgroupDirs(filepath.Join(g.dataDir, "runtime"))
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) == 0 || !exists(dirs[0]) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("glenv made no cgroup here (%v): CI must run where it can\n%s", dirs, g.tail())
		}
		t.Skipf("glenv made no cgroup here (%v): run as root or in a delegated cgroup", dirs)
	}
	g.mustRun(addArgs(gl)...)
	waitActive(t, g, g.openDB(t), "main", sha)
	if tasks := cgroupTasks(dirs[0]); tasks == 0 {
		t.Fatalf("no process in %s with the environment active", dirs[0])
	}

	g.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-g.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("glenv did not exit within 30 s of SIGKILL")
	}
	for _, d := range dirs {
		if !exists(d) {
			t.Fatalf("%s went with the killed glenv: there is no leak to clean up", d)
		}
	}
	t.Logf("%d processes left in the killed glenv's cgroups", cgroupTasks(dirs[0]))
	g.removeCgroups()
	for _, d := range dirs {
		if exists(d) {
			t.Errorf("cgroup %s is still there after the cleanup", d)
		}
	}
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// cgroupTasks counts the processes in the cgroup tree at dir (the
// cgroup.procs files of v1 and v2, at every level).
func cgroupTasks(dir string) int {
	n := 0
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
			return nil
		}
		if b, err := os.ReadFile(p); err == nil {
			n += len(strings.Fields(string(b)))
		}
		return nil
	})
	return n
}
