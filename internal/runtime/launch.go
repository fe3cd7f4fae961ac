package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/glenv/glenv/internal/limits"
)

// launch is one sandboxed command while it runs: its process, its cgroup
// and its network. Start sets them up in an order that never lets the
// command run without its limits or network; Wait takes them down.
type launch struct {
	sb  *sandbox
	j   job
	cmd *exec.Cmd
	out io.Writer // stdout and stderr; set before Start
	lim limits.Limits
	cg  *cgroup
	// stopNet ends pasta; nil without a network namespace. A gated
	// launch gets it when its gate opens, while Wait may already end it:
	// netMu guards both, and ended says cleanup ran.
	netMu   sync.Mutex
	stopNet func()
	ended   bool
	// gate is a gated launch's until open: a line written to it lets the
	// command run (sandbox.go's gateScript). setUp is closed once the
	// sandbox is set up (or failed to be: setUpOK says which).
	gate    *os.File
	gateSHA string // when set, the gate's line sets GLENV_SHA (prestage.go)
	setUp   chan struct{}
	setUpOK bool
	// why is set when glenv ended the command on purpose (its disk went
	// over the limit): Wait's error says so, and the app is not restarted.
	why atomic.Pointer[string]
}

// stopError is how a launch ended when its exit status alone does not say
// why: glenv stopped it, or the kernel killed it over its memory limit.
type stopError struct {
	why   string
	err   error
	final bool // glenv stopped it: starting it again would not help
}

func (e *stopError) Error() string { return e.why }
func (e *stopError) Unwrap() error { return e.err }

// Start runs the command: cgroup first, then the process (which joins
// the cgroup before anything else), then its network; the command itself
// starts only once pasta serves.
func (l *launch) Start() error { return l.start(context.Background()) }

func (l *launch) start(ctx context.Context) error {
	sb := l.sb
	l.lim = sb.limitsFor(l.j.uid)
	if sb.cg != nil {
		cg, err := sb.cg.create(l.j.uid, l.lim)
		if err != nil {
			return fmt.Errorf("limits: %w", err)
		}
		l.cg = cg
	}
	// A namespace made ahead (prenet.go) is being connected already: the
	// sandbox starts in it at once and its command runs once pasta serves.
	prepared := l.j.net
	isolated := sb.enabled() && sb.net != nil && prepared == nil
	argv, err := sb.argv(l.j, l.lim, l.cg)
	if err != nil {
		l.cleanup()
		return err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = l.j.appDir
	cmd.Env = append([]string{"PATH=" + sb.path, "LANG=C.UTF-8"}, l.j.env...)
	cmd.Stdout, cmd.Stderr = l.out, l.out
	// Pdeathsig: the command dies with glenv; Setpgid: stop kills the group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	l.cmd = cmd
	var infoR, infoW, blockR, blockW *os.File
	if l.j.gated && prepared != nil && sb.enabled() {
		return l.startGated(cmd, prepared)
	}
	if isolated || prepared != nil {
		if blockR, blockW, err = os.Pipe(); err != nil {
			l.cleanup()
			return err
		}
		defer blockW.Close()
		cmd.ExtraFiles = []*os.File{blockR}
	}
	if isolated {
		if infoR, infoW, err = os.Pipe(); err != nil {
			blockR.Close()
			l.cleanup()
			return err
		}
		cmd.ExtraFiles = []*os.File{infoW, blockR}
		defer infoR.Close()
	}
	if prepared != nil {
		err = startIn(prepared.ns, cmd)
	} else {
		err = cmd.Start()
	}
	if infoW != nil {
		infoW.Close()
	}
	if blockR != nil {
		blockR.Close()
	}
	if err != nil {
		l.cleanup()
		return err
	}
	if !isolated && prepared == nil {
		sb.active.Store(l, struct{}{})
		return nil
	}
	if prepared != nil {
		if err = prepared.wait(); err == nil {
			// pasta is the launch's now: it stops with the command.
			l.stopNet, prepared.stop = prepared.stop, nil
		}
	} else {
		var pid int
		if pid, err = sandboxPid(infoR); err == nil {
			l.stopNet, err = sb.net.attach(ctx, pid, l.j.port, dbPorts(l.j.env))
		}
	}
	if err != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		l.cleanup()
		return err
	}
	if _, err := blockW.Write([]byte{'1'}); err != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		l.cleanup()
		return fmt.Errorf("sandbox: bubblewrap exited before the command started (%v); its message is in the output above", err)
	}
	sb.active.Store(l, struct{}{})
	return nil
}

// startGated starts a gated command in the namespace made ahead: its
// sandbox is set up at once and waits at the gate until open.
func (l *launch) startGated(cmd *exec.Cmd, prepared *netNS) error {
	gateR, gateW, err := os.Pipe()
	if err != nil {
		l.cleanup()
		return err
	}
	readyR, readyW, err := os.Pipe()
	if err != nil {
		gateR.Close()
		gateW.Close()
		l.cleanup()
		return err
	}
	cmd.ExtraFiles = []*os.File{gateR, readyW}
	err = startIn(prepared.ns, cmd)
	gateR.Close()
	readyW.Close()
	if err != nil {
		gateW.Close()
		readyR.Close()
		l.cleanup()
		return err
	}
	l.gate, l.setUp = gateW, make(chan struct{})
	go func() {
		defer close(l.setUp)
		defer readyR.Close()
		var b [1]byte
		n, _ := readyR.Read(b[:])
		l.setUpOK = n == 1
	}()
	l.sb.active.Store(l, struct{}{})
	return nil
}

// isSetUp reports whether a gated launch's sandbox is set up by now.
func (l *launch) isSetUp() bool {
	select {
	case <-l.setUp:
		return l.setUpOK
	default:
		return false
	}
}

// waitSetUp waits until a gated launch's sandbox is set up, and reports
// whether it was.
func (l *launch) waitSetUp(ctx context.Context) bool {
	select {
	case <-l.setUp:
		return l.setUpOK
	case <-ctx.Done():
		return false
	}
}

// open lets a gated command run once pasta serves its namespace; pasta is
// the launch's from then on and stops with it. An error leaves the
// command to be stopped by the caller.
func (l *launch) open(ctx context.Context) error {
	gate := l.gate
	l.gate = nil
	if gate == nil {
		return errors.New("sandbox: the command has no gate")
	}
	defer gate.Close()
	prepared := l.j.net
	select {
	case <-prepared.ready:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	if prepared.err != nil {
		return prepared.err
	}
	// The gate first: a sandbox that died before it leaves pasta to the
	// namespace, for the app to be started there again.
	line := "go\n"
	if l.gateSHA != "" {
		line = "go " + l.gateSHA + "\n"
	}
	if _, err := gate.Write([]byte(line)); err != nil {
		return fmt.Errorf("sandbox: the staged sandbox exited before its gate opened (%v); its message is in the output above", err)
	}
	l.netMu.Lock()
	defer l.netMu.Unlock()
	if l.ended {
		return errors.New("sandbox: the staged command exited as soon as its gate opened; its message is in the output above")
	}
	l.stopNet, prepared.stop = prepared.stop, nil
	return nil
}

// sandboxPid reads bwrap's --info-fd: the pid of the sandbox's first
// process, whose namespaces pasta joins. EOF means bwrap failed; its
// message went to the command's output.
func sandboxPid(r *os.File) (int, error) {
	_ = r.SetReadDeadline(time.Now().Add(30 * time.Second))
	var info struct {
		ChildPid int `json:"child-pid"`
	}
	if err := json.NewDecoder(r).Decode(&info); err != nil || info.ChildPid <= 0 {
		return 0, fmt.Errorf("sandbox: bubblewrap did not start (%v); its message is in the output above", err)
	}
	return info.ChildPid, nil
}

// pid is the command's process (and process group) id.
func (l *launch) pid() int { return l.cmd.Process.Pid }

// Wait waits for the command to exit, then ends whatever is left of it
// (processes in its cgroup, pasta) and says why it ended when its exit
// status alone does not.
func (l *launch) Wait() error {
	err := l.cmd.Wait()
	oom := 0
	if l.cg != nil {
		oom = l.cg.oomKills()
	}
	l.cleanup()
	if why := l.why.Load(); why != nil {
		return &stopError{why: *why, err: err, final: true}
	}
	if oom > 0 {
		return &stopError{err: err, why: fmt.Sprintf("%s: the kernel killed %d of its processes because the environment's processes (build, hooks and app) together went over the memory limit %s (limits.memory in .glenv.yml)",
			exitStatus(err), oom, limits.FormatSize(l.lim.Memory))}
	}
	return err
}

// cleanup removes the cgroup (killing every process still in it) and
// stops pasta.
func (l *launch) cleanup() {
	l.sb.active.Delete(l)
	l.netMu.Lock()
	stopNet := l.stopNet
	l.stopNet, l.ended = nil, true
	l.netMu.Unlock()
	if stopNet != nil {
		stopNet()
	}
	if l.cg != nil {
		l.cg.remove()
		l.cg = nil
	}
}

// stop ends the command on purpose, for why: its process group, then
// everything in its cgroup.
func (l *launch) stop(why string) {
	l.why.CompareAndSwap(nil, &why)
	_ = syscall.Kill(-l.pid(), syscall.SIGKILL)
	if l.cg != nil {
		l.cg.kill()
	}
}

// finalStop reports whether err says glenv stopped the command for good.
func finalStop(err error) (string, bool) {
	var se *stopError
	if errors.As(err, &se) && se.final {
		return se.why, true
	}
	return "", false
}
