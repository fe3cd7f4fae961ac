package runtime

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// network connects a sandbox's network namespace (bwrap --unshare-net: its
// own loopback, nothing else) to the world with pasta, from Debian's passt
// package. pasta is a userspace network: it needs no root, no veth pair,
// no forwarding or NAT rules on the host (so it works the same whether
// glenv runs as root or not and leaves the host's firewall alone), and it
// forwards exactly the ports it is told:
//
//   - -t 127.0.0.1/PORT: glenv (on the host's loopback) reaches the app's
//     PORT on the namespace's loopback, and nothing else of it;
//   - -T PGPORT: the app reaches the services PostgreSQL on the host's
//     127.0.0.1:PGPORT, and no other port of the host's loopback (-T, -u
//     and -U otherwise default to "auto", every bound port: hence none);
//   - --no-map-gw: the gateway address does not lead to the host either;
//   - --config-net (egress allowed only): the namespace gets an interface
//     and a default route, so connections to the outside world leave
//     through pasta's ordinary sockets. Without it the interface stays
//     down and only the forwarded ports exist.
//
// slirp4netns was the alternative; it forwards to the namespace's
// interface address instead of its loopback (apps would have to listen on
// 0.0.0.0) and reaches the host's loopback all or nothing.
type network struct {
	pasta  string
	egress bool
	asRoot bool
	runDir string // pasta's pid files
	// dns are pasta's DNS forwarding arguments and resolvConf the file
	// bound at the sandbox's /etc/resolv.conf ("" = the host's): planDNS.
	dns        []string
	resolvConf string
	// hostResolvConf, when set, is shown to pasta at /etc/resolv.conf
	// (Options.HostResolvConf).
	hostResolvConf string
}

// attach connects the network namespace of the sandbox whose first
// process is pid: port (0 = none) forwarded from the host's 127.0.0.1,
// dbPorts of the host's loopback reachable from inside. It returns once
// pasta serves, with the function that stops it.
func (n *network) attach(ctx context.Context, pid, port int, dbPorts []int) (stop func(), err error) {
	// bwrap adds 127.0.0.1 to the namespace's lo and brings it up while
	// its first process starts; pasta brings lo up too, and whichever
	// comes second fails (bwrap: "loopback: Failed RTM_NEWADDR"). pasta
	// goes once bwrap's loopback is there.
	if err := waitLoopback(ctx, pid); err != nil {
		return nil, err
	}
	// pasta changes its uid before it opens namespaces by path, and may
	// then no longer look into the sandbox's /proc: glenv opens them and
	// hands them over as /proc/self/fd/N. Under root the sandbox has no
	// user namespace of its own (bwrap works in the host's).
	netns, err := os.Open("/proc/" + strconv.Itoa(pid) + "/ns/net")
	if err != nil {
		return nil, fmt.Errorf("network: open the sandbox's net namespace: %w", err)
	}
	files := []*os.File{netns}
	if !n.asRoot {
		// The user namespace that owns the network namespace, asked of
		// the network namespace itself: /proc/PID/ns/user would race
		// with bwrap, which (for --dev) maps root first, sets up the
		// mounts and then unshares a second, nested user namespace to map
		// the real uid back. Opened after that, it names the nested one,
		// which holds no rights over the network namespace, and pasta
		// fails with "Couldn't switch to pasta namespaces".
		userns, err := ownerUserns(netns)
		if err != nil {
			netns.Close()
			return nil, err
		}
		files = []*os.File{userns, netns}
	}
	defer closeFiles(files)
	stop, _, err = n.connect(ctx, files, port, dbPorts)
	return stop, err
}

// ownerUserns opens the user namespace that owns the namespace ns
// (ioctl NS_GET_USERNS, Linux 4.9).
func ownerUserns(ns *os.File) (*os.File, error) {
	fd, err := unix.IoctlRetInt(int(ns.Fd()), unix.NS_GET_USERNS)
	if err != nil {
		return nil, fmt.Errorf("network: find the user namespace that owns the sandbox's network namespace: %w", err)
	}
	return os.NewFile(uintptr(fd), "userns"), nil
}

// pastaSeq names pasta's pid files apart.
var pastaSeq atomic.Int64

// connect runs pasta on the namespaces in files (the user namespace first
// when there is one, then the network namespace) and returns once it
// serves, with the function that stops it and pasta's pid.
func (n *network) connect(ctx context.Context, files []*os.File, port int, dbPorts []int) (stop func(), pid int, err error) {
	// The pid file stays until pasta is stopped: a glenv killed meanwhile
	// finds it on its next start (reapPasta).
	pidFile := filepath.Join(n.runDir, "pasta-"+strconv.FormatInt(pastaSeq.Add(1), 10)+".pid")
	defer func() {
		if err != nil {
			os.Remove(pidFile)
		}
	}()
	args := n.args(port, dbPorts, pidFile)
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	argv := append([]string{n.pasta}, args...)
	if n.hostResolvConf != "" {
		argv = append([]string{"unshare", "--mount", "--propagation", "private", "/bin/sh", "-c",
			`mount --bind "$0" /etc/resolv.conf && exec "$@"`, n.hostResolvConf}, argv...)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.ExtraFiles = files
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// pasta forks into the background once the namespace is connected
	// and its ports listen: the foreground process exiting 0 is the
	// signal that the app may start.
	if err := cmd.Run(); err != nil {
		return nil, 0, fmt.Errorf("network: pasta could not connect the sandbox (%v): %s", err, pastaHint(out.String()))
	}
	b, err := os.ReadFile(pidFile)
	daemon, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || daemon <= 1 {
		return nil, 0, fmt.Errorf("network: pasta started but wrote no pid to %s", pidFile)
	}
	return func() { stopPasta(daemon); os.Remove(pidFile) }, daemon, nil
}

// reapPasta stops the pasta daemons a killed glenv left running, named by
// the pid files in runDir it finds at its next start. pasta is a daemon:
// it is no child of glenv and does not die with it, and it holds its
// sandbox's network namespace (and forwarded port) open. A pid is only
// killed while it is still that pasta: its command line names the file.
func reapPasta(runDir string) (reaped int) {
	files, _ := filepath.Glob(filepath.Join(runDir, "pasta-*.pid"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		if err == nil && pid > 1 && pastaOf(pid, f) {
			stopPasta(pid)
			reaped++
		}
		os.Remove(f)
	}
	return reaped
}

// StopLeftPasta stops the pasta daemons that a glenv killed with SIGKILL
// left running from the runtime directory dir, as the next start in dir
// would: for a directory no glenv starts in again (a test's, a replica's
// that is gone for good). It reports how many it stopped.
func StopLeftPasta(dir string) int { return reapPasta(filepath.Join(dir, "tmp")) }

// pastaOf reports whether process pid runs with pidFile among its
// arguments (pasta's --pid): a pid reused by another process is not.
func pastaOf(pid int, pidFile string) bool {
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	for _, arg := range strings.Split(string(cmdline), "\x00") {
		if arg == pidFile {
			return true
		}
	}
	return false
}

func (n *network) args(port int, dbPorts []int, pidFile string) []string {
	var args []string
	if n.asRoot {
		// Root pasta would switch to nobody, who may not enter a network
		// namespace of the host's user namespace; it keeps uid 0 but
		// drops what it does not need and isolates itself (an empty
		// mount namespace, seccomp).
		args = append(args, "--runas", "0", "--netns", "/proc/self/fd/3")
	} else {
		args = append(args, "--userns", "/proc/self/fd/3", "--netns", "/proc/self/fd/4")
	}
	args = append(args, "--quiet", "--pid", pidFile,
		"--no-map-gw", "-u", "none", "-U", "none")
	if n.egress {
		args = append(args, "--config-net")
		args = append(args, n.dns...)
	}
	if port > 0 {
		args = append(args, "-t", "127.0.0.1/"+strconv.Itoa(port))
	} else {
		args = append(args, "-t", "none")
	}
	if len(dbPorts) > 0 {
		ps := make([]string, len(dbPorts))
		for i, p := range dbPorts {
			ps[i] = strconv.Itoa(p)
		}
		args = append(args, "-T", strings.Join(ps, ","))
	} else {
		args = append(args, "-T", "none")
	}
	return args
}

// waitLoopback waits until the namespace of pid routes 127.0.0.1, which
// it does once its lo has the address and is up.
func waitLoopback(ctx context.Context, pid int) error {
	path := "/proc/" + strconv.Itoa(pid) + "/net/fib_trie"
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("network: the sandbox ended before its loopback was up (%v); its message is in the output above", err)
		}
		if bytes.Contains(b, []byte("127.0.0.1")) {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("network: the sandbox's loopback did not come up within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

// stopPasta kills pasta and waits (a bounded while) until it is gone, so
// its ports are closed when the launch's Wait returns. pasta daemonized:
// it is not glenv's child, so glenv watches /proc rather than waiting.
func stopPasta(pid int) {
	_ = syscall.Kill(pid, syscall.SIGKILL)
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		// Gone, or a zombie (exited: its sockets are closed).
		if err != nil || statState(string(b)) == "Z" {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// alive reports whether the process pid still runs (not a zombie).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	return err == nil && statState(string(b)) != "Z"
}

// statState is the state field of /proc/PID/stat ("pid (comm) S ...").
func statState(stat string) string {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 || i+3 > len(stat) {
		return ""
	}
	return stat[i+2 : i+3]
}

func closeFiles(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

func pastaHint(out string) string {
	out = strings.TrimSpace(out)
	if strings.Contains(out, "tun") {
		out += "; pasta needs /dev/net/tun (mode 0666 as udev sets it, or glenv running as root)"
	}
	if strings.Contains(out, "External interface not usable") {
		out += "; pasta needs a network interface with a default route on the host"
	}
	if out == "" {
		out = "no output"
	}
	return out
}

// dbPorts are the ports of the host's loopback the command's database URLs
// (DATABASE_URL*) point at: the only ones its namespace forwards.
func dbPorts(env []string) []int {
	var ports []int
	seen := map[int]bool{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if k != "DATABASE_URL" && !strings.HasPrefix(k, "DATABASE_URL_") {
			continue
		}
		u, err := url.Parse(v)
		if err != nil {
			continue
		}
		host, port := u.Hostname(), u.Port()
		if port == "" {
			port = "5432"
		}
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			continue // elsewhere: reached (or not) like the rest of the world
		}
		if p, err := strconv.Atoi(port); err == nil && p > 0 && !seen[p] {
			seen[p] = true
			ports = append(ports, p)
		}
	}
	return ports
}
