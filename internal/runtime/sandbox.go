package runtime

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// sandbox turns a shell command into a process that sees only the
// environment's own directories. With bubblewrap it builds a new root from
// read-only system directories plus the app (/app) and data (/data)
// directories, a private /tmp, /proc and /dev, in new PID, IPC and UTS
// namespaces. When glenv runs as root, bwrap keeps root's capabilities, so
// the command drops to an unprivileged uid of its own (setpriv) before it
// runs; the limits are set with prlimit.
type sandbox struct {
	bwrap    string // path of bwrap; "" runs commands directly
	setpriv  string
	prlimit  string
	asRoot   bool
	uidBase  int
	memory   int64 // RLIMIT_AS bytes, 0 = none
	procs    int   // RLIMIT_NPROC, 0 = none
	hide     []string
	readOnly []string // host directories visible read-only
	path     string   // PATH inside
}

// Paths inside the sandbox.
const (
	appMount  = "/app"
	dataMount = "/data"
)

var systemDirs = []string{"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt"}

// job is one command to run for an environment.
type job struct {
	shell       string // run with /bin/sh -c
	appDir      string
	appWritable bool
	dataDir     string // "" = no data directory
	env         []string
	uid         int // the environment's uid when glenv is root
}

func (sb *sandbox) enabled() bool { return sb.bwrap != "" }

// appPath and dataPath are where the command sees its directories.
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

// command returns the process for j; it runs in a process group of its own
// so that stopping it stops everything it started.
func (sb *sandbox) command(j job) *exec.Cmd {
	var argv []string
	inner := []string{"/bin/sh", "-c", j.shell}
	if sb.prlimit != "" && (sb.memory > 0 || sb.procs > 0) {
		lim := []string{sb.prlimit}
		if sb.memory > 0 {
			lim = append(lim, "--as="+strconv.FormatInt(sb.memory, 10))
		}
		if sb.procs > 0 {
			lim = append(lim, "--nproc="+strconv.Itoa(sb.procs))
		}
		inner = append(append(lim, "--"), inner...)
	}
	if !sb.enabled() {
		argv = inner
	} else {
		argv = []string{sb.bwrap, "--die-with-parent", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
			"--unshare-cgroup-try", "--hostname", "glenv"}
		if sb.asRoot {
			// bwrap run by root keeps every capability; keep only what
			// setpriv needs to drop to the environment's uid.
			argv = append(argv, "--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID")
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
		argv = append(argv, "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--tmpfs", "/run")
		if j.appWritable {
			argv = append(argv, "--bind", j.appDir, appMount)
		} else {
			argv = append(argv, "--ro-bind", j.appDir, appMount)
		}
		if j.dataDir != "" {
			argv = append(argv, "--bind", j.dataDir, dataMount)
		}
		argv = append(argv, "--chdir", appMount, "--")
		if sb.asRoot {
			uid := strconv.Itoa(j.uid)
			argv = append(argv, sb.setpriv, "--reuid="+uid, "--regid="+uid, "--clear-groups",
				"--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--")
		}
		argv = append(argv, inner...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = j.appDir
	cmd.Env = append([]string{"PATH=" + sb.path, "LANG=C.UTF-8"}, j.env...)
	// Pdeathsig: the app dies with glenv; Setpgid: Remove kills the group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	return cmd
}

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
