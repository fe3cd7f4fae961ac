package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"time"
)

// RestartPolicy says how an app that exits on its own after its deploy is
// started again: from the same build, in the same sandbox, after Delay,
// doubling for each failure in a row up to MaxDelay. A failure is an exit
// (or a restart that never got healthy) within StableAfter of getting
// healthy; a run that stayed up longer starts the count over. After Limit
// failures in a row the app is left stopped until the next deploy.
// Zero fields take the defaults 1s, 1m, 1m and 10.
type RestartPolicy struct {
	Delay       time.Duration
	MaxDelay    time.Duration
	StableAfter time.Duration
	Limit       int
}

func (p RestartPolicy) withDefaults() RestartPolicy {
	if p.Delay <= 0 {
		p.Delay = time.Second
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = time.Minute
	}
	if p.StableAfter <= 0 {
		p.StableAfter = time.Minute
	}
	if p.Limit <= 0 {
		p.Limit = 10
	}
	return p
}

// afterExit decides what follows an exit of an app that had served for up
// after failing failures times in a row: the new count of failures in a
// row, and either the wait before the next start or giving up.
func (p RestartPolicy) afterExit(failures int, up time.Duration) (n int, wait time.Duration, giveUp bool) {
	if up >= p.StableAfter {
		// It had been up long enough: this is news, not a crash loop.
		return 0, p.Delay, false
	}
	n = failures + 1
	if n >= p.Limit {
		return n, 0, true
	}
	wait = p.Delay
	for i := 1; i < n && wait < p.MaxDelay; i++ {
		wait *= 2
	}
	return n, min(wait, p.MaxDelay), false
}

// app is one deploy's app: its command as first started, and, once it
// serves, the goroutine that starts it again whenever it exits on its own.
// The supervisor owns the current process until halt returns it; glenv
// stops an app only after halting its supervision, so every exit the
// supervisor sees is unexpected.
type app struct {
	r       *Runtime
	name    string // the environment's, for messages
	envID   int64
	integ   string
	run     string
	health  string
	job     job // as for the first start; each start adds its PORT
	sha     string
	build   string
	redact  func(string) string
	logPath string
	log     *slog.Logger

	mu      sync.Mutex
	proc    *proc // the current process; nil while down
	serving bool  // proc passed its health check and has the backend
	halted  bool
	cancel  context.CancelFunc // ends supervision; nil until it began
	done    chan struct{}      // closed when supervision has ended
}

// launch starts the app on port with its output going to the app log (and
// to live, while a deploy watches it).
func (a *app) launch(port int, live func(string)) (*proc, error) {
	return a.launchIn(nil, port, live)
}

// launchIn is launch in a namespace made ahead for port (nil: bwrap's own).
func (a *app) launchIn(ns *netNS, port int, live func(string)) (*proc, error) {
	out, err := newOutput(a.logPath)
	if err != nil {
		return nil, err
	}
	out.setLive(live)
	j := a.job
	j.env = append(slices.Clip(a.job.env), "PORT="+strconv.Itoa(port))
	j.port, j.net = port, ns
	p, err := start(a.r.sb.command(j), out, a.redact)
	if err != nil {
		out.close()
		return nil, err
	}
	p.port, p.sha, p.build = port, a.sha, a.build
	return p, nil
}

// up reports whether the app serves right now.
func (a *app) up() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.serving
}

// supervise starts supervising p, which serves as rn's backend. It returns
// false, leaving p to the caller, when the app was halted already (Close
// during the switch).
func (a *app) supervise(rn *running, p *proc) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.halted {
		return false
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel, a.done = cancel, make(chan struct{})
	a.proc, a.serving = p, true
	a.r.supervisors.Add(1)
	go func() {
		defer close(a.done)
		defer a.r.supervisors.Add(-1)
		a.loop(ctx, rn, p)
	}()
	return true
}

// halt ends supervision and returns the process it leaves behind (nil when
// the app is down), which the caller stops and whose port it frees. Once
// halt returns, nothing starts the app again or touches the backend.
func (a *app) halt() *proc {
	a.mu.Lock()
	a.halted = true
	cancel, done := a.cancel, a.done
	a.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	p := a.proc
	a.proc, a.serving = nil, false
	return p
}

func (a *app) loop(ctx context.Context, rn *running, p *proc) {
	policy := a.r.opts.Restart
	failures := 0
	since := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.done:
		}
		if ctx.Err() != nil {
			return // halted as it exited: the caller stops what is left
		}
		up := time.Since(since)
		a.down(rn)
		// The sandbox staged from it for the next push goes too: an app
		// that exited may never run again (prestage.go).
		a.r.spare.dropStaged(a.envID)
		if why, final := finalStop(p.err); final {
			// glenv stopped it (over its disk): starting it again would
			// only fill the disk again.
			p.stop(0)
			a.r.ports.free(p.port)
			a.note("%s. The environment stays stopped until its next deploy", why)
			a.log.Error("app stopped by glenv", "why", why)
			if a.r.opts.OnGiveUp != nil {
				a.r.opts.OnGiveUp(a.envID, why)
			}
			return
		}
		// Take down what may be left of its process group and free its port.
		p.stop(0)
		a.r.ports.free(p.port)
		why := fmt.Sprintf("the app exited (%s) %s after it got healthy", exitStatus(p.err), up.Round(time.Millisecond))
		for {
			var wait time.Duration
			var giveUp bool
			failures, wait, giveUp = policy.afterExit(failures, up)
			if giveUp {
				a.note("%s; it failed %d times in a row, each within %s, so glenv no longer restarts it. "+
					"Read its output above, fix it and push, or redeploy it with `glenv environment:redeploy %s --integration %s`",
					why, failures, policy.StableAfter, a.name, a.integ)
				a.log.Error("app keeps failing; no longer restarting it", "failures", failures, "why", why)
				if a.r.opts.OnGiveUp != nil {
					a.r.opts.OnGiveUp(a.envID, fmt.Sprintf("%s; it failed %d times in a row and is no longer restarted", why, failures))
				}
				return
			}
			if failures == 0 {
				a.note("%s; starting it again in %s", why, wait)
			} else {
				a.note("%s; starting it again in %s (failure %d in a row; glenv gives up after %d)", why, wait, failures, policy.Limit)
			}
			a.log.Warn("app exited; restarting it", "why", why, "restart_in", wait, "failures", failures)
			if !sleep(ctx, wait) {
				return
			}
			var err error
			if p, err = a.restart(ctx, rn); err == nil {
				break
			}
			if ctx.Err() != nil {
				return
			}
			why, up = err.Error(), 0
		}
		since = time.Now()
		a.note("serving again on 127.0.0.1:%d", p.port)
		a.log.Info("app restarted and healthy", "port", p.port)
	}
}

// down records that the current process exited: the proxy answers with
// its status page until a restart is healthy.
func (a *app) down(rn *running) {
	a.mu.Lock()
	a.proc, a.serving = nil, false
	a.mu.Unlock()
	if b := rn.backend.Swap(nil); b != nil {
		b.out()
	}
}

// restart starts the app again on a fresh port (the old one may linger in
// TIME_WAIT) and makes it rn's backend once its health path answers.
func (a *app) restart(ctx context.Context, rn *running) (*proc, error) {
	port, err := a.r.ports.take()
	if err != nil {
		return nil, err
	}
	p, err := a.launch(port, nil)
	if err != nil {
		a.r.ports.free(port)
		return nil, fmt.Errorf("start `%s`: %w", a.run, err)
	}
	a.mu.Lock()
	a.proc = p // from here on, halt hands it to its caller to stop
	a.mu.Unlock()
	a.note("started `%s` again on 127.0.0.1:%d; waiting for GET %s to answer 2xx", a.run, port, a.health)
	if err := waitHealthy(ctx, p, a.health, a.r.opts.HealthTimeout); err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		a.mu.Lock()
		a.proc = nil
		a.mu.Unlock()
		if p.exited() {
			err = fmt.Errorf("the app exited (%s) before GET %s answered 2xx", exitStatus(p.err), a.health)
		}
		p.stop(a.r.opts.StopGrace)
		a.r.ports.free(port)
		return nil, err
	}
	a.mu.Lock()
	a.serving = true
	a.mu.Unlock()
	if b := rn.backend.Swap(backendOf(p)); b != nil {
		b.out()
	}
	return p, nil
}

// note adds a line of glenv's own to the app log, between the app's
// output. It never creates the file: a removed environment stays removed.
func (a *app) note(format string, args ...any) {
	f, err := os.OpenFile(a.logPath, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	_, _ = f.WriteString(time.Now().UTC().Format("15:04:05.000") + " glenv: " + fmt.Sprintf(format, args...) + "\n")
}

func backendOf(p *proc) *Backend {
	return &Backend{Addr: "127.0.0.1:" + strconv.Itoa(p.port)}
}

// exitStatus says how a process ended, from cmd.Wait's error.
func exitStatus(err error) string {
	var ee *exec.ExitError
	var se *stopError
	switch {
	case errors.As(err, &se):
		return se.why
	case err == nil:
		return "exit status 0"
	case errors.As(err, &ee):
		return ee.ProcessState.String()
	default:
		return err.Error()
	}
}

// sleep waits d, or returns false when ctx ends first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
