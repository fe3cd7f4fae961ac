package runtime

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/glenv/glenv/internal/limits"
)

// cgroups gives every environment a cgroup of its own under a base glenv
// owns, holding the environment's memory, process and CPU limits, and puts
// each sandboxed command of it (a build step, hooks.clone, an app) in a
// child cgroup of that one: the limits hold for all the environment's
// processes together (its build beside its app, the old and the new app
// of a redeploy), not for each command, and removing a command's cgroup
// ends every process in it, including those that left the process group.
// Both hierarchies are supported: cgroup v2 (one tree, controllers enabled
// on the way down with cgroup.subtree_control) and v1 (a tree per
// controller, each with the same environment/command layout; this
// machine's kernel mounts v1), detected from /proc/self/mountinfo.
//
//	<base>/env-<uid>/        limits of the environment (uid is its own)
//	<base>/env-<uid>/c<n>/   one command; no limits of its own
type cgroups struct {
	v2 bool
	// bases are glenv's directories: v1 one per controller (memory, pids,
	// cpu), v2 one.
	bases []string
	seq   atomic.Int64
	// mu keeps two commands of one environment starting at once from
	// writing its limits in between each other.
	mu sync.Mutex
}

// cgroup is one environment's or one command's.
type cgroup struct {
	v2   bool
	dirs []string // same order as cgroups.bases
}

// controllers glenv limits.
var controllers = []string{"memory", "pids", "cpu"}

// cgroupPlan is where glenv's cgroups go, decided from the mount table and
// glenv's own cgroup membership; pure, so it is table-tested.
type cgroupPlan struct {
	v2    bool
	bases []string // v1: in the order of controllers
}

// planCgroups places glenv's base cgroup named name under glenv's own
// cgroup in each hierarchy it needs. mountinfo is /proc/self/mountinfo,
// self is /proc/self/cgroup.
func planCgroups(mountinfo, self, name string) (cgroupPlan, error) {
	type mnt struct{ root, point, fstype, opts string }
	var mounts []mnt
	for _, line := range strings.Split(mountinfo, "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 3 {
			continue
		}
		mounts = append(mounts, mnt{root: unescapeMount(f[3]), point: unescapeMount(f[4]), fstype: g[0], opts: g[2]})
	}
	own := map[string]string{} // controller ("" for v2) → path
	for _, line := range strings.Split(self, "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[1] == "" && parts[0] == "0" {
			own[""] = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			own[c] = parts[2]
		}
	}
	join := func(m mnt, path string) string {
		rel := path
		if m.root != "/" {
			rel = strings.TrimPrefix(path, m.root)
		}
		return filepath.Join(m.point, rel, name)
	}
	for _, m := range mounts {
		if m.fstype == "cgroup2" && m.point == "/sys/fs/cgroup" {
			path, ok := own[""]
			if !ok {
				return cgroupPlan{}, errors.New("cgroup v2 is mounted but /proc/self/cgroup has no 0:: line")
			}
			return cgroupPlan{v2: true, bases: []string{join(m, path)}}, nil
		}
	}
	var plan cgroupPlan
	for _, c := range controllers {
		found := false
		for _, m := range mounts {
			if m.fstype != "cgroup" || !hasOption(m.opts, c) {
				continue
			}
			path, ok := own[c]
			if !ok {
				return cgroupPlan{}, fmt.Errorf("cgroup v1 %s controller is mounted at %s but glenv is in no %s cgroup", c, m.point, c)
			}
			plan.bases = append(plan.bases, join(m, path))
			found = true
			break
		}
		if !found {
			return cgroupPlan{}, fmt.Errorf("no cgroup v2 at /sys/fs/cgroup and no cgroup v1 %s controller is mounted", c)
		}
	}
	return plan, nil
}

func hasOption(opts, o string) bool {
	for _, x := range strings.Split(opts, ",") {
		if x == o {
			return true
		}
	}
	return false
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// baseCgroupName is the base cgroup of the runtime in dir (absolute): named
// after the dir, so two glenvs on one machine never share one, and a
// restarted glenv finds and clears its own.
func baseCgroupName(dir string) string {
	sum := sha256.Sum256([]byte(dir))
	return "glenv-" + hex.EncodeToString(sum[:6])
}

// RemoveCgroups removes the base cgroups of the runtime whose dir is dir
// (<data-dir>/runtime) after its glenv died without closing it (SIGKILL,
// a crash) and will not start there again: a glenv restarted in dir clears
// them itself, one that never comes back leaves them behind. What still
// runs in them (environments' apps outlive a killed glenv) is killed. Call
// it only once that glenv has exited: a live one's environments would go
// with them. It plans the cgroups from the calling process's own
// membership, as the glenv it started (which inherited it) did; a missing
// cgroup is no error.
func RemoveCgroups(dir string) error {
	dirs, v2, err := cgroupDirs(dir)
	if err != nil || dirs == nil {
		return err
	}
	base := &cgroup{v2: v2, dirs: dirs}
	base.remove()
	for _, d := range dirs {
		if _, err := os.Stat(d); err == nil {
			return fmt.Errorf("cgroup %s is still there after its processes were killed: remove it with rmdir once they are gone", d)
		}
	}
	return nil
}

// CgroupDirs are the base cgroup directories of the runtime whose dir is
// dir, placed as the calling process would place them (one per v1
// controller, or one v2); none where cgroups are not usable.
func CgroupDirs(dir string) ([]string, error) {
	dirs, _, err := cgroupDirs(dir)
	return dirs, err
}

func cgroupDirs(dir string) ([]string, bool, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, false, err
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, false, err
	}
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, false, err
	}
	plan, err := planCgroups(string(mi), string(self), baseCgroupName(abs))
	if err != nil {
		return nil, false, nil // no cgroups here: glenv made none either
	}
	return plan.bases, plan.v2, nil
}

// openCgroups prepares glenv's base cgroups (name is unique to the runtime
// dir, so a restarted glenv finds and clears its own leftovers). It returns
// why cgroups cannot be used here instead when they cannot.
func openCgroups(name string) (*cgroups, error) {
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	plan, err := planCgroups(string(mi), string(self), name)
	if err != nil {
		return nil, err
	}
	cg := &cgroups{v2: plan.v2, bases: plan.bases}
	for _, b := range cg.bases {
		if err := os.Mkdir(b, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("create cgroup %s: %w (glenv needs write access to its cgroup: run it as root or in a delegated cgroup)", b, err)
		}
	}
	if cg.v2 {
		// Controllers must be enabled on the way down: in glenv's own
		// cgroup for the base, and in the base for the commands'.
		enable := "+memory +pids +cpu"
		parent := filepath.Dir(cg.bases[0])
		err := os.WriteFile(filepath.Join(parent, "cgroup.subtree_control"), []byte(enable), 0)
		if errors.Is(err, syscall.EBUSY) {
			// v2 lets no cgroup both hold processes and delegate
			// controllers: glenv moves itself into a leaf of its own
			// cgroup (as systemd's Delegate=yes intends) and tries again.
			leaf := filepath.Join(parent, "glenv-main")
			if err := os.Mkdir(leaf, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
				return nil, fmt.Errorf("create cgroup %s: %w", leaf, err)
			}
			if err := os.WriteFile(filepath.Join(leaf, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0); err != nil {
				return nil, fmt.Errorf("move glenv into %s: %w", leaf, err)
			}
			err = os.WriteFile(filepath.Join(parent, "cgroup.subtree_control"), []byte(enable), 0)
		}
		if err != nil {
			return nil, fmt.Errorf("enable memory, pids and cpu controllers in %s: %w (cgroup v2 lets a cgroup holding processes delegate none; run glenv in a cgroup of its own, e.g. systemd's Delegate=yes)", parent, err)
		}
		if err := os.WriteFile(filepath.Join(cg.bases[0], "cgroup.subtree_control"), []byte(enable), 0); err != nil {
			return nil, fmt.Errorf("enable controllers in %s: %w", cg.bases[0], err)
		}
	}
	w := baseCPUWeight(cg.v2, goruntime.NumCPU(), cg.bases)
	if err := os.WriteFile(filepath.Join(w.dir, w.file), []byte(w.value), 0); err != nil {
		// Environments then get a smaller share of a busy machine.
		return nil, fmt.Errorf("set %s in %s: %w", w.file, w.dir, err)
	}
	// Leftovers of an earlier run of this runtime: nothing of them may live on.
	cg.clear()
	return cg, nil
}

// clear ends whatever runs in glenv's cgroups and removes every cgroup
// below the bases.
func (cg *cgroups) clear() {
	base := &cgroup{v2: cg.v2, dirs: cg.bases}
	for _, c := range base.children() {
		c.remove()
	}
}

// baseCPUWeight is the CPU weight of glenv's base cgroup on a machine with
// ncpu CPUs: one process's per CPU (v1 cpu.shares 1024, v2 cpu.weight 100
// each; the kernel's default is one process's in all). A group's weight is
// shared out among the CPUs its load was on lately, so an app's one busy
// process, which a busy machine moves between CPUs, weighed about 1/ncpu
// of an ordinary process and started twice as slowly here (2 CPUs) under
// load. Each environment's limits.cpu still caps it. Pure, so it is
// table-tested for both versions.
func baseCPUWeight(v2 bool, ncpu int, bases []string) setting {
	ncpu = max(ncpu, 1)
	if v2 {
		return setting{bases[0], "cpu.weight", strconv.Itoa(min(100*ncpu, 10000))}
	}
	return setting{bases[len(bases)-1], "cpu.shares", strconv.Itoa(min(1024*ncpu, 262144))}
}

// close removes glenv's base cgroups once nothing runs in them (Close).
func (cg *cgroups) close() {
	for _, b := range cg.bases {
		_ = syscall.Rmdir(b)
	}
}

func (cg *cgroups) child(name string) *cgroup {
	c := &cgroup{v2: cg.v2}
	for _, b := range cg.bases {
		c.dirs = append(c.dirs, filepath.Join(b, name))
	}
	return c
}

// envCgroupName is the cgroup of the environment whose commands run as
// uid (one uid per environment, see sandbox.uidFor).
func envCgroupName(uid int) string { return "env-" + strconv.Itoa(uid) }

// env is the cgroup of the environment with uid (which may not exist).
func (cg *cgroups) env(uid int) *cgroup { return cg.child(envCgroupName(uid)) }

// create makes the cgroup of one command of the environment with uid,
// inside the environment's cgroup, which it creates when needed and
// gives lim: the environment's limits as its latest deploy resolved them.
func (cg *cgroups) create(uid int, lim limits.Limits) (*cgroup, error) {
	env := cg.env(uid)
	cg.mu.Lock()
	err := env.ensure(lim)
	cg.mu.Unlock()
	if err != nil {
		return nil, err
	}
	c := env.sub("c" + strconv.FormatInt(cg.seq.Add(1), 10))
	for _, d := range c.dirs {
		if err := os.Mkdir(d, 0o755); err != nil {
			c.remove()
			return nil, fmt.Errorf("create cgroup %s: %w", d, err)
		}
	}
	return c, nil
}

// removeEnv ends every process of the environment with uid and removes its
// cgroup (the environment is removed).
func (cg *cgroups) removeEnv(uid int) { cg.env(uid).remove() }

// ensure creates the environment's cgroup if it does not exist yet (v2:
// with the controllers enabled for its commands' cgroups) and sets lim.
func (c *cgroup) ensure(lim limits.Limits) error {
	for _, d := range c.dirs {
		if err := os.Mkdir(d, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("create cgroup %s: %w", d, err)
		}
	}
	if enable := v2Controllers(lim); c.v2 && enable != "" {
		p := filepath.Join(c.dirs[0], "cgroup.subtree_control")
		if err := os.WriteFile(p, []byte(enable), 0); err != nil {
			return fmt.Errorf("enable controllers %s in %s: %w", enable, p, err)
		}
	}
	return c.apply(lim)
}

// sub is the child cgroup name of c.
func (c *cgroup) sub(name string) *cgroup {
	s := &cgroup{v2: c.v2}
	for _, d := range c.dirs {
		s.dirs = append(s.dirs, filepath.Join(d, name))
	}
	return s
}

// children are c's child cgroups, in any of its hierarchies.
func (c *cgroup) children() []*cgroup {
	seen := map[string]bool{}
	var out []*cgroup
	for _, d := range c.dirs {
		entries, _ := os.ReadDir(d)
		for _, e := range entries {
			if e.IsDir() && !seen[e.Name()] {
				seen[e.Name()] = true
				out = append(out, c.sub(e.Name()))
			}
		}
	}
	return out
}

// setting is one value written to one cgroup file.
type setting struct{ dir, file, value string }

// cgroupSettings are the files that give a cgroup (dirs: v2 one, v1 the
// memory, pids and cpu ones) the limits lim, in the order to write them;
// curMemory is v1's memory.limit_in_bytes now. Pure, so it is table-tested
// for both versions on any machine.
func cgroupSettings(v2 bool, dirs []string, lim limits.Limits, curMemory int64) []setting {
	var s []setting
	mem, pids, cpu := dirs[0], dirs[0], dirs[0]
	if !v2 {
		mem, pids, cpu = dirs[0], dirs[1], dirs[2]
	}
	if lim.Memory > 0 {
		v := strconv.FormatInt(lim.Memory, 10)
		switch {
		case v2:
			s = append(s, setting{mem, "memory.max", v}, setting{mem, "memory.swap.max", "0"})
		case lim.Memory > curMemory:
			// v1 keeps memory+swap at least memory: raising, memsw goes first.
			s = append(s, setting{mem, "memory.memsw.limit_in_bytes", v}, setting{mem, "memory.limit_in_bytes", v})
		default:
			s = append(s, setting{mem, "memory.limit_in_bytes", v}, setting{mem, "memory.memsw.limit_in_bytes", v})
		}
	}
	if lim.Processes > 0 {
		s = append(s, setting{pids, "pids.max", strconv.Itoa(lim.Processes)})
	}
	if lim.CPU > 0 {
		const period = 100000
		quota := strconv.Itoa(max(1000, int(lim.CPU*period)))
		if v2 {
			s = append(s, setting{cpu, "cpu.max", quota + " " + strconv.Itoa(period)})
		} else {
			s = append(s, setting{cpu, "cpu.cfs_period_us", strconv.Itoa(period)}, setting{cpu, "cpu.cfs_quota_us", quota})
		}
	}
	return s
}

// v2Controllers is what cgroup.subtree_control must enable in a v2
// cgroup for its children to be given lim: only the controllers a limit
// needs, so a hierarchy where some are bound to v1 still works for the rest.
func v2Controllers(lim limits.Limits) string {
	var c []string
	if lim.Memory > 0 {
		c = append(c, "+memory")
	}
	if lim.Processes > 0 {
		c = append(c, "+pids")
	}
	if lim.CPU > 0 {
		c = append(c, "+cpu")
	}
	return strings.Join(c, " ")
}

// apply writes the limits.
func (c *cgroup) apply(lim limits.Limits) error {
	var cur int64
	if !c.v2 && lim.Memory > 0 {
		cur, _ = readInt(filepath.Join(c.dirs[0], "memory.limit_in_bytes"))
	}
	s := cgroupSettings(c.v2, c.dirs, lim, cur)
	for _, x := range s {
		p := filepath.Join(x.dir, x.file)
		if err := os.WriteFile(p, []byte(x.value), 0); err != nil {
			if errors.Is(err, os.ErrNotExist) && (x.file == "memory.memsw.limit_in_bytes" || x.file == "memory.swap.max") {
				continue // no swap accounting: there is no swap to escape to either
			}
			if errors.Is(err, syscall.EBUSY) {
				return fmt.Errorf("set %s to %s: the environment's running processes use more than that and the kernel could not reclaim it; raise limits.memory, or redeploy once the app uses less", p, x.value)
			}
			return fmt.Errorf("set %s to %s: %w", p, x.value, err)
		}
	}
	return nil
}

// readInt reads a cgroup file holding one number.
func readInt(p string) (int64, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

// procsFiles are the files a process writes its pid to to join the cgroup.
func (c *cgroup) procsFiles() []string {
	var out []string
	for _, d := range c.dirs {
		out = append(out, filepath.Join(d, "cgroup.procs"))
	}
	return out
}

// pids lists the processes in the cgroup.
func (c *cgroup) pids() []int {
	var out []int
	b, err := os.ReadFile(filepath.Join(c.dirs[0], "cgroup.procs"))
	if err != nil {
		return nil
	}
	for _, f := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(f); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// kill ends every process in the cgroup and waits (a bounded while) until
// none is left. A process forking while it is killed is caught by the
// next round; the pids limit bounds how many there can be.
func (c *cgroup) kill() {
	if c.v2 {
		if err := os.WriteFile(filepath.Join(c.dirs[0], "cgroup.kill"), []byte("1"), 0); err == nil {
			c.waitEmpty(5 * time.Second)
			return
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		pids := c.pids()
		if len(pids) == 0 {
			return
		}
		for _, p := range pids {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (c *cgroup) waitEmpty(d time.Duration) {
	deadline := time.Now().Add(d)
	for len(c.pids()) > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
}

// remove kills what is left in the cgroup and its children and deletes
// them, the children first (a cgroup with children cannot be removed).
func (c *cgroup) remove() {
	for _, s := range c.children() {
		s.remove()
	}
	c.kill()
	for _, d := range c.dirs {
		deadline := time.Now().Add(2 * time.Second)
		for {
			err := syscall.Rmdir(d)
			if err == nil || errors.Is(err, syscall.ENOENT) || time.Now().After(deadline) {
				break
			}
			// EBUSY until the last killed process is reaped.
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// oomKills is how many processes the kernel killed in the cgroup for
// going over its memory limit.
func (c *cgroup) oomKills() int {
	file, key := filepath.Join(c.dirs[0], "memory.oom_control"), "oom_kill"
	if c.v2 {
		file = filepath.Join(c.dirs[0], "memory.events")
	}
	f, err := os.Open(file)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), " ")
		if k == key {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}
