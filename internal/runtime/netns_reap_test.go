package runtime

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// pasta is a daemon that outlives a glenv killed with SIGKILL, holding its
// sandbox's network namespace and port. The next start stops what its pid
// files name, and only while the pid is still that pasta.
func TestAStartStopsThePastaAKilledGlenvLeftRunning(t *testing.T) {
	dir := t.TempDir()
	run := filepath.Join(dir, "tmp")
	if err := os.MkdirAll(run, 0o700); err != nil {
		t.Fatal(err)
	}
	left := filepath.Join(run, "pasta-7.pid")
	// A stand-in for pasta: a process whose arguments name its pid file,
	// as pasta's --pid does.
	daemon := exec.Command("/bin/sh", "-c", "while :; do sleep 1; done", "pasta", "--pid", left)
	daemon.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- daemon.Wait() }()
	defer syscall.Kill(-daemon.Process.Pid, syscall.SIGKILL)
	// Start returns as the child's exec begins, before the kernel has set
	// its new arguments up (/proc/PID/cmdline is empty meanwhile); pasta
	// writes its pid file long after. Wait, with a deadline, until the
	// stand-in's arguments are there, as pasta's are.
	for deadline := time.Now().Add(10 * time.Second); !pastaOf(daemon.Process.Pid, left); {
		if time.Now().After(deadline) {
			t.Fatal("the stand-in for pasta never showed its arguments in /proc")
		}
		time.Sleep(time.Millisecond)
	}
	// A pid file whose pid is now another process (here: this test) is
	// removed, and that process left alone.
	reused := filepath.Join(run, "pasta-8.pid")
	for f, pid := range map[string]int{left: daemon.Process.Pid, reused: os.Getpid()} {
		if err := os.WriteFile(f, []byte(strconv.Itoa(pid)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	if _, err := New(Options{Dir: dir, DisableSandbox: true}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatal("the pasta left by a killed glenv is still running after the next start")
	}
	for _, f := range []string{left, reused} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s: still there after the start (%v)", f, err)
		}
	}
}

func TestPastaOfKnowsAPidByItsPidFileArgument(t *testing.T) {
	self := os.Getpid()
	for _, c := range []struct {
		name string
		pid  int
		file string
		want bool
	}{
		{"a process without that argument is not pasta", self, "/run/x/pasta-1.pid", false},
		{"a process that is gone", 1 << 22, "/run/x/pasta-1.pid", false},
	} {
		if got := pastaOf(c.pid, c.file); got != c.want {
			t.Errorf("%s: pastaOf = %v", c.name, got)
		}
	}
}
