package runtime

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/glenv/glenv/internal/limits"
)

// sandbox turns a shell command into a process that sees only the
// environment's own directories, its own network and its own share of the
// machine. With bubblewrap it builds a new root from read-only system
// directories plus the app (/app), data (/data) and, for builds, a home
// (/home/glenv), with private writable /tmp and /run, /proc and /dev, in
// new PID, IPC, UTS and network namespaces (and a user namespace when glenv
// is not root), with every capability dropped, the bounding set emptied
// and no_new_privs. When glenv runs as root the command drops to an
// unprivileged uid of the environment's own (setpriv) before it runs. The
// network namespace is connected by pasta (network); the limits are a
// cgroup per environment with one child per command (cgroups), or
// per-process rlimits (prlimit) where no cgroup can be made, never nothing.
type sandbox struct {
	bwrap    string // path of bwrap; "" runs commands directly
	setpriv  string
	prlimit  string
	asRoot   bool
	uidBase  int
	hide     []string
	readOnly []string // host directories visible read-only
	path     string   // PATH inside

	net    *network // nil: the host's network (isolation off or no sandbox)
	cg     *cgroups // nil: no usable cgroups; cgWhy says why
	cgWhy  string
	byUID  sync.Map      // uid → limits.Limits, set by each deploy from .glenv.yml
	dflt   limits.Limits // for a uid no deploy set limits for
	active sync.Map      // *launch → struct{}: commands running now
}

// Paths inside the sandbox.
const (
	appMount  = "/app"
	dataMount = "/data"
	homeMount = "/home/glenv"
)

var systemDirs = []string{"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt"}

// job is one command to run for an environment.
type job struct {
	shell       string // run with /bin/sh -c
	appDir      string
	appWritable bool
	dataDir     string // "" = no data directory
	home        string // "" = none; a host directory mounted writable at /home/glenv
	env         []string
	uid         int // the environment's uid when glenv is root
	port        int // the port the app serves on, forwarded from the host; 0 = none
	// net is the namespace made ahead for the app (prenet.go), forwarding
	// port; nil: bwrap makes one and pasta connects it at start.
	net *netNS
	// gated: the sandbox's shell says on fd 4 that it is set up and waits
	// on fd 3 (its gate) before it runs the command; with net only (a
	// staged app, stage.go).
	gated bool
}

func (sb *sandbox) enabled() bool { return sb.bwrap != "" }

// appPath, dataPath and homePath are where the command sees its directories.
func (sb *sandbox) appPath(j job) string {
	if sb.enabled() {
		return appMount
	}
	return j.appDir
}

func (sb *sandbox) dataPath(j job) string {
	if sb.enabled() {
		return dataMount
	}
	return j.dataDir
}

func (sb *sandbox) homePath(hostDir string) string {
	if sb.enabled() {
		return homeMount
	}
	return hostDir
}

// setLimits records the limits of the environment with uid; every command
// of it started from now on gets them.
func (sb *sandbox) setLimits(uid int, lim limits.Limits) { sb.byUID.Store(uid, lim) }

func (sb *sandbox) limitsFor(uid int) limits.Limits {
	if v, ok := sb.byUID.Load(uid); ok {
		return v.(limits.Limits)
	}
	return sb.dflt
}

// describe says how the limits are enforced, for the deploy log.
func (sb *sandbox) describe(lim limits.Limits) string {
	switch {
	case sb.cg != nil:
		return fmt.Sprintf("limits: %s (one cgroup for the whole environment: its build, hooks and app together)", lim)
	case sb.prlimit != "":
		return fmt.Sprintf("warning: limits: memory %s and processes %d per process only (prlimit): cgroups are not usable here (%s); cpu is not limited", limits.FormatSize(lim.Memory), lim.Processes, sb.cgWhy)
	default:
		return "limits: none can be enforced"
	}
}

// command returns the launch of j: nothing happens until its Start.
func (sb *sandbox) command(j job) *launch { return &launch{sb: sb, j: j} }

// argv is the command line of j: the cgroup shim (when cg is set), the
// drop from root, bwrap, rlimits and the shell.
func (sb *sandbox) argv(j job, lim limits.Limits, cg *cgroup) (argv []string, err error) {
	inner := []string{"/bin/sh", "-c", j.shell}
	gated := j.gated && j.net != nil && sb.enabled()
	if gated {
		// The command itself, as ungated, once a line comes through the
		// gate; nothing but this shell runs before (EOF: glenv gave up).
		inner = append([]string{"/bin/sh", "-c", gateScript, "glenv-gate"}, inner...)
	}
	if cg == nil && (lim.Memory > 0 || lim.Processes > 0) {
		if sb.prlimit == "" {
			return nil, fmt.Errorf("cannot enforce limits (%s): cgroups are not usable here (%s) and prlimit is not installed; install util-linux, or run glenv where it can create cgroups (as root, or in a delegated cgroup v2)", lim, sb.cgWhy)
		}
		l := []string{sb.prlimit}
		if lim.Memory > 0 {
			// An address-space limit: the nearest a process can get to a
			// memory limit without a cgroup.
			l = append(l, "--as="+strconv.FormatInt(lim.Memory, 10))
		}
		if lim.Processes > 0 {
			l = append(l, "--nproc="+strconv.Itoa(lim.Processes))
		}
		inner = append(append(l, "--"), inner...)
	}
	if !sb.enabled() {
		argv = inner
	} else {
		argv = []string{sb.bwrap, "--die-with-parent", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
			"--unshare-cgroup-try", "--hostname", "glenv", "--cap-drop", "ALL"}
		if sb.asRoot {
			// bwrap run by root works in the host's user namespace (so
			// files keep their real owners) and keeps root's capabilities:
			// keep only what setpriv needs to empty the bounding set and
			// drop to the environment's uid.
			argv = append(argv, "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SETPCAP")
		} else {
			argv = append(argv, "--unshare-user")
		}
		switch {
		case sb.net != nil && j.net == nil:
			// fd 3: bwrap says the sandbox's pid; fd 4: it waits there
			// until pasta has connected its network, so the command never
			// runs without it.
			argv = append(argv, "--unshare-net", "--info-fd", "3", "--block-fd", "4")
		case j.net != nil && !gated:
			// Started inside a namespace made ahead (prenet.go): fd 3, it
			// waits there until pasta has connected it.
			argv = append(argv, "--block-fd", "3")
		}
		for _, d := range append(systemDirs, sb.readOnly...) {
			fi, err := os.Lstat(d)
			switch {
			case err != nil:
				continue
			case fi.Mode()&os.ModeSymlink != 0:
				target, err := os.Readlink(d)
				if err == nil {
					argv = append(argv, "--symlink", target, d)
				}
			default:
				argv = append(argv, "--ro-bind", d, d)
			}
		}
		for _, h := range sb.hide {
			if !sb.visible(h) {
				continue
			}
			if fi, err := os.Stat(h); err == nil && fi.IsDir() {
				argv = append(argv, "--tmpfs", h)
			} else if err == nil {
				argv = append(argv, "--ro-bind", "/dev/null", h)
			}
		}
		// /tmp and /run are the environment's own, writable (their pages
		// count against its memory limit).
		argv = append(argv, "--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--tmpfs", "/tmp",
			"--perms", "1777", "--tmpfs", "/run")
		if sb.net != nil && sb.net.resolvConf != "" {
			// After /run: the host's /etc/resolv.conf may be a symlink
			// into it (systemd-resolved), which bwrap then follows.
			argv = append(argv, "--ro-bind", sb.net.resolvConf, "/etc/resolv.conf")
		}
		if j.appWritable {
			argv = append(argv, "--bind", j.appDir, appMount)
		} else {
			argv = append(argv, "--ro-bind", j.appDir, appMount)
		}
		if j.dataDir != "" {
			argv = append(argv, "--bind", j.dataDir, dataMount)
		}
		if j.home != "" {
			// bwrap would make /home 0700 (root's), hiding the home in it.
			argv = append(argv, "--perms", "0755", "--dir", filepath.Dir(homeMount), "--bind", j.home, homeMount)
		}
		argv = append(argv, "--chdir", appMount, "--")
		if sb.asRoot {
			// The bounding set is emptied while there is still
			// CAP_SETPCAP to do it; the uid change then clears the rest.
			uid := strconv.Itoa(j.uid)
			argv = append(argv, sb.setpriv, "--reuid="+uid, "--regid="+uid, "--clear-groups",
				"--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--")
		}
		argv = append(argv, inner...)
	}
	if cg != nil {
		// The shim joins the cgroup and then becomes the command: every
		// process of it starts inside, none can escape by racing glenv.
		shim := []string{"/bin/sh", "-c", `while [ "$1" != -- ]; do echo $$ > "$1" || { echo "glenv: cannot join cgroup $1" >&2; exit 125; }; shift; done; shift; exec "$@"`, "glenv-cgroup"}
		shim = append(shim, cg.procsFiles()...)
		argv = append(append(shim, "--"), argv...)
	}
	return argv, nil
}

// gateScript is the shell of a gated command: it says on fd 4 that the
// sandbox is set up (its mounts are made: /app's source may be renamed),
// waits for a line on fd 3 and then becomes the command (its arguments)
// without either. A SHA after the line's word is the deploy's GLENV_SHA,
// for a sandbox staged before its push (prestage.go); glenv alone writes
// the line, a hex SHA it checked.
const gateScript = `printf r >&4; exec 4>&-; read -r glenv_gate glenv_sha <&3 || exit 125; [ -z "$glenv_sha" ] || export GLENV_SHA="$glenv_sha"; exec "$@" 3<&-`

// visible reports whether p lies under a directory the sandbox shows.
func (sb *sandbox) visible(p string) bool {
	for _, d := range append(systemDirs, sb.readOnly...) {
		if p == d || strings.HasPrefix(p, d+"/") {
			return true
		}
		if real, err := filepath.EvalSymlinks(d); err == nil && (p == real || strings.HasPrefix(p, real+"/")) {
			return true
		}
	}
	return false
}

// uidFor is the uid an environment's commands run as when glenv is root:
// one per environment, so that environments cannot read or signal each
// other's files and processes, and process limits count per environment.
func (sb *sandbox) uidFor(envID int64) int {
	return sb.uidBase + int(envID%1_000_000)
}

// chown gives dir to the environment's uid (when glenv is root and
// sandboxed; otherwise files stay glenv's).
func (sb *sandbox) chown(dir string, uid int) error {
	if !sb.enabled() || !sb.asRoot {
		return nil
	}
	return filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := os.Lchown(p, uid, uid); err != nil {
			return fmt.Errorf("chown %s: %w", p, err)
		}
		return nil
	})
}
