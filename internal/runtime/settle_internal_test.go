package runtime

import (
	"testing"
	"time"
)

func TestSettledWaitsForTheFirstAnswer(t *testing.T) {
	r := &Runtime{quit: make(chan struct{})}
	settledAfter := func(b *Backend) <-chan struct{} {
		done := make(chan struct{})
		go func() { r.settled(b); close(done) }()
		return done
	}
	waitDone := func(what string, done <-chan struct{}) {
		t.Helper()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: still waiting to settle", what)
		}
	}

	b := &Backend{Addr: "127.0.0.1:1", first: newFirstAnswer()}
	done := settledAfter(b)
	select {
	case <-done:
		t.Fatal("settled before the backend answered a request")
	default:
	}
	// A request through Acquire's release, as the proxy makes it.
	b.inflight.Add(1)
	b.inflight.Add(-1)
	b.first.done()
	waitDone("after the first answer", done)

	waitDone("a backend nobody asks", settledAfter(&Backend{first: newFirstAnswer()}))
	out := &Backend{first: newFirstAnswer()}
	done = settledAfter(out)
	out.out()
	waitDone("a backend taken out of the rotation (redeployed again, removed)", done)
	waitDone("no backend (a failed deploy)", settledAfter(nil))
	close(r.quit)
	waitDone("a closing runtime", settledAfter(&Backend{first: newFirstAnswer()}))
}

func TestAcquireReleaseMarksTheFirstAnswer(t *testing.T) {
	r := &Runtime{envs: map[int64]*running{1: {host: "h"}}, hosts: map[string]int64{"h": 1}, quit: make(chan struct{})}
	b := &Backend{Addr: "127.0.0.1:1", first: newFirstAnswer()}
	r.envs[1].backend.Store(b)
	_, release, ok := r.Acquire("h")
	if !ok {
		t.Fatal("no backend acquired")
	}
	select {
	case <-b.first.ch:
		t.Fatal("first answer marked before the request was released")
	default:
	}
	release()
	select {
	case <-b.first.ch:
	default:
		t.Fatal("the released request did not mark the first answer")
	}
	if n := b.inflight.Load(); n != 0 {
		t.Fatalf("%d requests in flight after the release", n)
	}
}
