package runtime

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// spareReady refills r's spare namespace and waits until pasta connected it.
func spareReady(t *testing.T, r *Runtime) *netNS {
	t.Helper()
	r.spare.refill(r, nil)
	deadline := time.Now().Add(30 * time.Second)
	for {
		r.spare.mu.Lock()
		ns := r.spare.ns
		r.spare.mu.Unlock()
		if ns != nil {
			if err := ns.wait(); err != nil {
				t.Fatal(err)
			}
			return ns
		}
		if time.Now().After(deadline) {
			t.Fatal("no spare namespace within 30s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestTheSpareNamespaceIsOneAndGoesWithTheRuntime(t *testing.T) {
	r, err := New(Options{Dir: filepath.Join(t.TempDir(), "rt")})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if !r.sb.enabled() || r.sb.net == nil || !r.sb.asRoot {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI runs as root with bubblewrap and pasta")
		}
		t.Skip("namespaces are made ahead only as root with bubblewrap and pasta")
	}
	t.Run("a spare whose pasta died is never handed out, and its port is freed", func(t *testing.T) {
		ns := spareReady(t, r)
		_ = syscall.Kill(ns.pasta, syscall.SIGKILL)
		for deadline := time.Now().Add(5 * time.Second); alive(ns.pasta); time.Sleep(2 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("pasta did not die")
			}
		}
		if got := r.spare.take(); got != nil {
			t.Fatal("a dead spare was handed out")
		}
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(2 * time.Millisecond) {
			r.ports.mu.Lock()
			held := r.ports.inUse[ns.port]
			r.ports.mu.Unlock()
			if !held {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the dead spare's port stays taken")
			}
		}
	})
	t.Run("a refill with a spare there makes no second one", func(t *testing.T) {
		ns := spareReady(t, r)
		r.spare.refill(r, nil)
		r.spare.mu.Lock()
		same, making := r.spare.ns == ns, r.spare.making
		r.spare.mu.Unlock()
		if !same || making {
			t.Fatalf("spare replaced %v, another being made %v", !same, making)
		}
	})
	t.Run("a deploy takes the spare connected", func(t *testing.T) {
		ns := spareReady(t, r)
		a := r.netAhead(t.Context(), t.Logf)
		got, port := a.take()
		defer func() { got.close(); r.ports.free(port) }()
		if got != ns || port != ns.port || !alive(ns.pasta) {
			t.Fatalf("took %p port %d, want the spare %p port %d", got, port, ns, ns.port)
		}
	})
	t.Run("the next spare is made once the new process answered its first request", func(t *testing.T) {
		if ns := r.spare.take(); ns != nil {
			ns.release()
		}
		b := &Backend{first: newFirstAnswer()}
		r.spare.refill(r, b)
		if ns := spareNow(r); ns != nil {
			t.Fatal("a spare was there before the new process answered")
		}
		b.first.done()
		ns := spareMade(t, r)
		if err := ns.wait(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("a deploy that begins before that first answer drops the refill: no pasta is born during it", func(t *testing.T) {
		if ns := r.spare.take(); ns != nil {
			ns.release()
		}
		b := &Backend{first: newFirstAnswer()}
		r.spare.refill(r, b)
		if got := r.spare.take(); got != nil {
			t.Fatal("a deploy got a spare that was still to be made")
		}
		b.first.done()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(2 * time.Millisecond) {
			r.spare.mu.Lock()
			making, ns := r.spare.making, r.spare.ns
			r.spare.mu.Unlock()
			if ns != nil {
				t.Fatal("the dropped refill made a spare anyway")
			}
			if !making {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the dropped refill never ended")
			}
		}
		// The deploy's own end refills.
		spareReady(t, r)
	})
	t.Run("Close stops the spare's pasta", func(t *testing.T) {
		ns := spareReady(t, r)
		r.Close()
		if alive(ns.pasta) {
			t.Fatal("pasta of the spare namespace outlived the runtime")
		}
		r.spare.refill(r, nil)
		if r.spare.ns != nil {
			t.Fatal("a closed runtime made a spare")
		}
	})
}

// spareNow is r's spare as it is now, nil when there is none (yet).
func spareNow(r *Runtime) *netNS {
	r.spare.mu.Lock()
	defer r.spare.mu.Unlock()
	return r.spare.ns
}

// spareMade waits until r has a spare namespace, without asking for one.
func spareMade(t *testing.T, r *Runtime) *netNS {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if ns := spareNow(r); ns != nil {
			return ns
		}
		if time.Now().After(deadline) {
			t.Fatal("no spare namespace within 30s")
		}
	}
}
