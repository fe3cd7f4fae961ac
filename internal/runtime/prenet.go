package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	goruntime "runtime"
	"sync"

	"golang.org/x/sys/unix"
)

// A deploy's network namespace is made ahead (netns.go says what it is):
// connecting one with pasta is the slowest part of starting a sandbox, and
// nothing in it depends on the build. So when glenv runs as root, a deploy
// makes its app's namespace, connected and forwarding the app's port,
// while it fetches and builds; the app's sandbox is then started inside it
// (bwrap without --unshare-net) instead of making one and waiting for
// pasta. The namespace is the same as the one bwrap would make: its own
// loopback, pasta's interface, the app's port forwarded from the host's
// 127.0.0.1 and nothing else. Without root glenv cannot make a namespace
// outside bwrap's user namespace, and does as before.

// netNS is a network namespace glenv made, being connected by pasta.
type netNS struct {
	ns    *os.File // /proc/thread-self/ns/net of the thread that made it
	port  int
	ready chan struct{} // closed once pasta connected it, or failed to
	err   error         // why pasta failed
	stop  func()        // pasta, once ready; the launch takes it over
	pasta int           // pasta's pid, once ready
	// release frees a spare's namespace and port (spareNet).
	release func()
}

// wait waits until pasta serves the namespace.
func (n *netNS) wait() error {
	<-n.ready
	return n.err
}

// close stops pasta (unless a launch took it over) and lets the namespace
// go (it lives on while a command started in it runs).
func (n *netNS) close() {
	<-n.ready
	if n.stop != nil {
		n.stop()
		n.stop = nil
	}
	n.ns.Close()
}

// prepareNet makes a namespace at once and has pasta connect it, forwarding
// port and no database port (an app with services.postgresql falls back to
// bwrap's own namespace), in the background: a sandbox can be started in
// the namespace meanwhile, and its command let run once wait returns.
func (n *network) prepareNet(ctx context.Context, port int) (*netNS, error) {
	ns, err := newNetNS()
	if err != nil {
		return nil, err
	}
	nn := &netNS{ns: ns, port: port, ready: make(chan struct{})}
	go func() {
		defer close(nn.ready)
		nn.stop, nn.pasta, nn.err = n.connect(ctx, []*os.File{ns}, port, nil)
	}()
	return nn, nil
}

// newNetNS makes an empty network namespace and returns a handle on it. The
// namespace is made on a thread of its own that then goes back to the
// host's namespace, so no other goroutine ever runs in it.
func newNetNS() (*os.File, error) {
	return onThreadIn(nil, func() (*os.File, error) {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return nil, fmt.Errorf("network: make a namespace: %w", err)
		}
		return os.Open("/proc/thread-self/ns/net")
	})
}

// startIn starts cmd inside the network namespace ns: the child is forked
// from a thread that has entered ns (a child inherits its thread's
// namespaces) and that then returns to the host's. The thread lives on,
// so the child's Pdeathsig (bound to the thread that forked it) fires only
// when glenv itself dies.
func startIn(ns *os.File, cmd *exec.Cmd) error {
	_, err := onThreadIn(ns, func() (struct{}, error) { return struct{}{}, cmd.Start() })
	return err
}

// onThreadIn runs fn on a locked thread, in ns when it is set, and puts
// the thread back in the host's network namespace afterwards. A thread
// that cannot go back is never reused: its goroutine ends locked, and Go
// ends the thread with it.
func onThreadIn[T any](ns *os.File, fn func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		goruntime.LockOSThread()
		host, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			goruntime.UnlockOSThread()
			done <- result{err: fmt.Errorf("network: %w", err)}
			return
		}
		defer host.Close()
		if ns != nil {
			if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
				goruntime.UnlockOSThread()
				done <- result{err: fmt.Errorf("network: enter the namespace: %w", err)}
				return
			}
		}
		v, err := fn()
		if berr := unix.Setns(int(host.Fd()), unix.CLONE_NEWNET); berr != nil {
			// Stay locked: this thread must never run other goroutines.
			done <- result{v: v, err: errors.Join(err, fmt.Errorf("network: leave the namespace: %w", berr))}
			return
		}
		goruntime.UnlockOSThread()
		done <- result{v: v, err: err}
	}()
	r := <-done
	return r.v, r.err
}

// netAhead is the app's namespace, made when the deploy starts and
// connected while it fetches and builds.
type netAhead struct {
	ns   *netNS
	used bool
	// pre is the sandbox staged in the spare before the push, until
	// stageApp takes or discards it (prestage.go).
	pre *prestaged
}

// netAhead makes a namespace for the deploy's app, or returns nil where
// glenv cannot (not root, no sandbox or no pasta) or could not.
func (r *Runtime) netAhead(ctx context.Context, logf func(string, ...any)) *netAhead {
	if !r.sb.enabled() || r.sb.net == nil || !r.sb.asRoot {
		return nil
	}
	if spare, pre := r.spare.takeWith(); spare != nil {
		return &netAhead{ns: spare, pre: pre}
	}
	port, err := r.ports.take()
	if err != nil {
		return nil
	}
	ns, err := r.sb.net.prepareNet(ctx, port)
	if err != nil {
		r.ports.free(port)
		logf("warning: the app's network could not be made ahead (%v); its sandbox makes its own", err)
		return nil
	}
	return &netAhead{ns: ns}
}

// take hands the namespace and its port to the caller, who then owns both.
func (a *netAhead) take() (*netNS, int) {
	if a == nil {
		return nil, 0
	}
	a.used = true
	return a.ns, a.ns.port
}

// release frees what the deploy did not take, in the background: a deploy
// that failed early does not wait for pasta.
func (a *netAhead) release(r *Runtime) {
	if a == nil {
		return
	}
	pre := a.pre
	a.pre = nil
	if a.used {
		pre.discard()
		return
	}
	go func() {
		pre.discard()
		a.ns.close()
		r.ports.free(a.ns.port)
	}()
}

// spareNet is one namespace made and connected before any deploy asks for
// it: pasta takes longer to connect one than a redeploy takes to fetch and
// build, so the deploy that takes the spare starts its app at once, and
// the next spare is made meanwhile. It is never more than one namespace
// and one pasta, made after the first deploy and gone with Close. A spare
// is as fresh as a namespace made for the deploy: nothing ever ran in it,
// and it forwards only its own port.
//
// The next spare is made once the deploy's new process answered its
// first request (settle.go), or settleFor after the switch: pasta's start,
// made at the switch, ran beside that first request on a machine of two
// cores (the bench's served phase, switch → first answer of the new
// commit, 19.5 → 9.5 ms median of 10 pushes each, load 17). A deploy that
// begins while the refill still waits drops it (its own end refills), so
// no pasta is born in the middle of a deploy: that deploy makes its
// namespace itself, as it would without a spare.
type spareNet struct {
	mu     sync.Mutex
	ns     *netNS
	pre    *prestaged // the next deploy's sandbox, staged in ns (prestage.go)
	making bool
	closed bool
	// waiting is closed to drop a refill that waits for the first answer.
	waiting chan struct{}
}

// take hands over the spare, if there is one that is (or may still get)
// connected; a refill that waits to begin is dropped.
func (s *spareNet) take() *netNS {
	ns, pre := s.takeWith()
	pre.discard()
	return ns
}

// takeWith is take with the sandbox staged in the spare, if any: the
// caller uses or discards it.
func (s *spareNet) takeWith() (*netNS, *prestaged) {
	s.mu.Lock()
	ns, pre := s.ns, s.pre
	s.ns, s.pre = nil, nil
	if s.waiting != nil {
		close(s.waiting)
		s.waiting = nil
	}
	s.mu.Unlock()
	if ns == nil {
		return nil, nil
	}
	select {
	case <-ns.ready:
		if ns.err != nil || !alive(ns.pasta) {
			go func() {
				pre.discard()
				ns.release()
			}()
			return nil, nil
		}
	default: // still connecting: sooner than one made now
	}
	return ns, pre
}

// dropStaged discards the sandbox staged for env, if there is one; the
// spare namespace stays.
func (s *spareNet) dropStaged(env int64) {
	s.mu.Lock()
	pre := s.pre
	if pre == nil || pre.env != env {
		s.mu.Unlock()
		return
	}
	s.pre = nil
	s.mu.Unlock()
	pre.discard()
}

// refill makes the next spare in the background once after answered its
// first request (nil: at once), unless one is there or being made, or a
// deploy begins first.
func (s *spareNet) refill(r *Runtime, after *Backend) { s.refillFor(r, after, 0, 0) }

// refillFor is refill that also stages the next deploy's sandbox of env
// (its app running as uid) in the new spare (prestage.go); env 0: none.
func (s *spareNet) refillFor(r *Runtime, after *Backend, env int64, uid int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ns != nil || s.making || s.closed {
		return
	}
	s.making = true
	waiting := make(chan struct{})
	s.waiting = waiting
	r.background(func() {
		if !s.settledOrDropped(r, after, waiting) {
			return
		}
		ns, pre := r.newSpare(env, uid)
		s.mu.Lock()
		defer s.mu.Unlock()
		s.making = false
		if s.closed || ns == nil {
			if ns != nil {
				go func() {
					pre.discard()
					ns.release()
				}()
			}
			return
		}
		if pre != nil && (r.runningApp(env) != pre.from || !pre.from.up()) {
			// Paused, removed, redeployed or exited meanwhile.
			go pre.discard()
			pre = nil
		}
		s.ns, s.pre = ns, pre
	})
}

// newSpare makes a namespace on a port of its own, with the next deploy's
// sandbox of env staged in it (prestage.go; env 0: none); nil where it
// could not.
func (r *Runtime) newSpare(env int64, uid int) (*netNS, *prestaged) {
	port, err := r.ports.take()
	if err != nil {
		return nil, nil
	}
	ns, err := r.sb.net.prepareNet(context.Background(), port)
	if err != nil {
		r.ports.free(port)
		return nil, nil
	}
	ns.release = func() {
		ns.close()
		r.ports.free(ns.port)
	}
	if env == 0 {
		return ns, nil
	}
	return ns, r.prestage(env, uid, ns)
}

// settledOrDropped waits until after settled (settle.go) and reports
// true, or until a deploy dropped the refill (take) and reports false,
// with the refill ended.
func (s *spareNet) settledOrDropped(r *Runtime, after *Backend, waiting chan struct{}) bool {
	r.settledOr(after, waiting)
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-waiting:
		s.making = false
		return false
	default:
	}
	s.waiting = nil
	return true
}

// close ends the spare (Close).
func (s *spareNet) close() {
	s.mu.Lock()
	ns, pre := s.ns, s.pre
	s.ns, s.pre, s.closed = nil, nil, true
	if s.waiting != nil {
		close(s.waiting)
		s.waiting = nil
	}
	s.mu.Unlock()
	pre.discard()
	if ns != nil {
		ns.release()
	}
}
