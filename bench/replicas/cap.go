package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// cpuCap gives each replica a machine of its own, as far as CPU goes: a
// cgroup with a CPU quota of cpus (cgroup v2 cpu.max, v1
// cpu.cfs_quota_us). Three replicas on three machines is what "replicas
// scale out" means, and one 2-CPU machine cannot hold that otherwise: a
// single uncapped replica and its PostgreSQL already keep both CPUs busy,
// so more replicas only share them. Capped, one replica is bound by its
// own CPU as on a machine of its own, PostgreSQL and the senders keep the
// rest, and three capped replicas show what three machines add — as long
// as the machine has the CPU left for them and for PostgreSQL's share,
// which the bench prints (machine % busy).
//
// Written here rather than borrowed from internal/runtime, whose cgroups
// are an environment's (memory, pids, its own naming and cleanup); a bench
// needs one file written and one directory removed.
type cpuCap struct {
	cpus float64
	dirs []string // made, removed by close
}

const capPeriod = 100000 // µs

// command returns the replica's command, started inside a cgroup of its
// own (a shell moves itself in, then execs the replica, so every thread
// of the replica starts capped and Go's GOMAXPROCS sees the limit).
func (c *cpuCap) command(i int, bin string, args ...string) *exec.Cmd {
	if c == nil || c.cpus <= 0 {
		return exec.Command(bin, args...)
	}
	procs, err := c.make(fmt.Sprintf("glenv-bench-%d-%d", os.Getpid(), i))
	must(err)
	sh := `echo $$ > "$0" && exec "$@"`
	return exec.Command("sh", append([]string{"-c", sh, procs, bin}, args...)...)
}

// make creates the cgroup and returns its cgroup.procs.
func (c *cpuCap) make(name string) (string, error) {
	quota := strconv.Itoa(int(c.cpus * capPeriod))
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil { // v2
		root := "/sys/fs/cgroup"
		ctl, _ := os.ReadFile(filepath.Join(root, "cgroup.subtree_control"))
		if !strings.Contains(string(ctl), "cpu") {
			if err := os.WriteFile(filepath.Join(root, "cgroup.subtree_control"), []byte("+cpu"), 0); err != nil {
				return "", fmt.Errorf("-replica-cpus: enable the cpu controller (cgroup v2): %w", err)
			}
		}
		dir := filepath.Join(root, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			return "", fmt.Errorf("-replica-cpus needs a writable cgroup tree (run as root): %w", err)
		}
		c.dirs = append(c.dirs, dir)
		if err := os.WriteFile(filepath.Join(dir, "cpu.max"), []byte(quota+" "+strconv.Itoa(capPeriod)), 0); err != nil {
			return "", err
		}
		return filepath.Join(dir, "cgroup.procs"), nil
	}
	dir := filepath.Join("/sys/fs/cgroup/cpu", name) // v1
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", fmt.Errorf("-replica-cpus needs a writable cgroup tree (run as root): %w", err)
	}
	c.dirs = append(c.dirs, dir)
	for f, v := range map[string]string{"cpu.cfs_period_us": strconv.Itoa(capPeriod), "cpu.cfs_quota_us": quota} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(v), 0); err != nil {
			return "", err
		}
	}
	return filepath.Join(dir, "cgroup.procs"), nil
}

// close removes the cgroups (their replicas have exited by then).
func (c *cpuCap) close() {
	if c == nil {
		return
	}
	for _, d := range c.dirs {
		os.Remove(d)
	}
	c.dirs = nil
}
