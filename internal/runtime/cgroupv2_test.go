package runtime

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/glenv/glenv/internal/limits"
)

func TestCgroupSettings(t *testing.T) {
	t.Parallel()
	v1 := []string{"/m", "/p", "/c"}
	lim := limits.Limits{Memory: 64 << 20, Processes: 24, CPU: 0.5}
	for _, tc := range []struct {
		name string
		v2   bool
		dirs []string
		lim  limits.Limits
		cur  int64
		want []setting
	}{
		{"v2 writes memory without swap, pids and a CPU quota per 100ms in the one tree", true, []string{"/e"}, lim, 0,
			[]setting{{"/e", "memory.max", "67108864"}, {"/e", "memory.swap.max", "0"}, {"/e", "pids.max", "24"}, {"/e", "cpu.max", "50000 100000"}}},
		{"v1 lowering memory writes memory before memory+swap", false, v1, lim, 1 << 62,
			[]setting{{"/m", "memory.limit_in_bytes", "67108864"}, {"/m", "memory.memsw.limit_in_bytes", "67108864"}, {"/p", "pids.max", "24"},
				{"/c", "cpu.cfs_period_us", "100000"}, {"/c", "cpu.cfs_quota_us", "50000"}}},
		{"v1 raising memory writes memory+swap first, as the kernel keeps it above memory", false, v1, limits.Limits{Memory: 64 << 20}, 32 << 20,
			[]setting{{"/m", "memory.memsw.limit_in_bytes", "67108864"}, {"/m", "memory.limit_in_bytes", "67108864"}}},
		{"a tiny CPU share still gets the kernel's least quota of 1ms", true, []string{"/e"}, limits.Limits{CPU: 0.001}, 0,
			[]setting{{"/e", "cpu.max", "1000 100000"}}},
		{"no limits write nothing", true, []string{"/e"}, limits.Limits{}, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := cgroupSettings(tc.v2, tc.dirs, tc.lim, tc.cur); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v\nwant %v", got, tc.want)
			}
		})
	}
}

func TestGlenvsCgroupWeighsOneProcessPerCPU(t *testing.T) {
	t.Parallel()
	v1 := []string{"/m/glenv", "/p/glenv", "/c/glenv"}
	for _, tc := range []struct {
		name string
		v2   bool
		ncpu int
		want setting
	}{
		{"v1 gives the cpu controller's base 1024 shares per CPU", false, 2, setting{"/c/glenv", "cpu.shares", "2048"}},
		{"v2 gives the base a weight of 100 per CPU", true, 4, setting{"/glenv", "cpu.weight", "400"}},
		{"v2 stays within the kernel's largest weight", true, 512, setting{"/glenv", "cpu.weight", "10000"}},
		{"v1 stays within the kernel's largest shares", false, 1024, setting{"/c/glenv", "cpu.shares", "262144"}},
		{"a machine that says no CPU counts as one", false, 0, setting{"/c/glenv", "cpu.shares", "1024"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bases := v1
			if tc.v2 {
				bases = []string{"/glenv"}
			}
			if got := baseCPUWeight(tc.v2, tc.ncpu, bases); got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestV2ControllersEnablesOnlyWhatALimitNeeds(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		lim  limits.Limits
		want string
	}{
		{limits.Limits{Memory: 1, Processes: 1, CPU: 1}, "+memory +pids +cpu"},
		{limits.Limits{Processes: 1}, "+pids"},
		{limits.Limits{Disk: 1}, ""},
	} {
		if got := v2Controllers(tc.lim); got != tc.want {
			t.Errorf("%v: %q, want %q", tc.lim, got, tc.want)
		}
	}
}

// mountCgroup2 mounts a cgroup v2 hierarchy on a temporary directory and
// returns a directory in it for the test. This machine's kernel binds
// memory, pids and cpu to v1, so the v2 tree has none of them: the layout,
// joining and killing are tested here, the limit files by TestCgroupSettings.
func mountCgroup2(t *testing.T) string {
	t.Helper()
	mnt := t.TempDir()
	if err := syscall.Mount("none", mnt, "cgroup2", 0, ""); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("mount a cgroup v2 hierarchy on %s: %v; CI runs as root and must be able to", mnt, err)
		}
		t.Skipf("cannot mount a cgroup v2 hierarchy here: %v", err)
	}
	base := filepath.Join(mnt, "glenv-test-"+strconv.Itoa(os.Getpid())+"-"+strconv.FormatInt(time.Now().UnixNano(), 36))
	if err := os.Mkdir(base, 0o755); err != nil {
		_ = syscall.Unmount(mnt, syscall.MNT_DETACH)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Rmdir(base)
		_ = syscall.Unmount(mnt, syscall.MNT_DETACH)
	})
	return base
}

func TestCgroupV2NestsCommandsInTheirEnvironmentAndRemovesThemTogether(t *testing.T) {
	t.Parallel()
	base := mountCgroup2(t)
	cg := &cgroups{v2: true, bases: []string{base}}
	const uid = 200777
	var cmds []*exec.Cmd
	for range 2 {
		c, err := cg.create(uid, limits.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Dir(c.dirs[0]) != filepath.Join(base, "env-200777") {
			t.Fatalf("a command's cgroup %s is not inside its environment's", c.dirs[0])
		}
		sb := &sandbox{path: defaultPath}
		argv, err := sb.argv(job{shell: "sleep 3077 & exec sleep 3077"}, limits.Limits{}, c)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
		cmds = append(cmds, cmd)
		deadline := time.Now().Add(10 * time.Second)
		for len(c.pids()) < 2 {
			if time.Now().After(deadline) {
				t.Fatalf("the command and its child did not join %s", c.dirs[0])
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waited := make(chan error, len(cmds))
	for _, cmd := range cmds {
		go func() { waited <- cmd.Wait() }()
	}
	cg.removeEnv(uid)
	for range cmds {
		select {
		case err := <-waited:
			if err == nil {
				t.Fatal("a command of the removed environment exited 0: it was not killed")
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a command of the removed environment still runs after 10s")
		}
	}
	if _, err := os.Stat(filepath.Join(base, "env-200777")); !os.IsNotExist(err) {
		t.Fatalf("the environment's cgroup is still there: %v", err)
	}
}
