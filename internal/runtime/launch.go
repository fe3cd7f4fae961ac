package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
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
	// stopNet ends pasta; nil without a network namespace.
	stopNet func()
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
	if l.stopNet != nil {
		l.stopNet()
		l.stopNet = nil
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
