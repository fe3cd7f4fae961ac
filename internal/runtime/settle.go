package runtime

import (
	"sync"
	"time"
)

// What a deploy leaves to do once traffic is switched (stopping the old
// process and its pasta, pruning builds) waits until the new process has
// answered its first request through the proxy, or settleFor passed: on a
// machine of a few cores, that work (two processes ending, directories
// removed) ran beside the first request to the new commit and delayed it,
// while nothing is gained by doing it sooner. The old process, already out
// of the proxy's rotation, only lives that much longer. The next spare
// namespace waits for the same first answer, unless a deploy begins before
// (prenet.go).

// settleFor bounds the wait for an environment's first request after a
// switch: one that gets none (nobody is looking) does its cleanup then.
const settleFor = 500 * time.Millisecond

// firstAnswer is closed once a backend finished its first request.
type firstAnswer struct {
	once sync.Once
	ch   chan struct{}
}

func newFirstAnswer() *firstAnswer { return &firstAnswer{ch: make(chan struct{})} }

func (f *firstAnswer) done() {
	if f != nil {
		f.once.Do(func() { close(f.ch) })
	}
}

// settled waits until b answered its first request, settleFor passed or
// the runtime is closing; a nil b does not wait.
func (r *Runtime) settled(b *Backend) { r.settledOr(b, nil) }

// settledOr is settled that also ends when stop is closed (nil: never).
func (r *Runtime) settledOr(b *Backend, stop <-chan struct{}) {
	if b == nil || b.first == nil {
		return
	}
	t := time.NewTimer(settleFor)
	defer t.Stop()
	select {
	case <-b.first.ch:
	case <-t.C:
	case <-r.quit:
	case <-stop:
	}
}

// out takes b out of the proxy's rotation: nothing answers through it any
// more, so nothing waits for its first answer either (a redeploy, a
// removal or a restart right after a switch goes ahead at once).
func (b *Backend) out() {
	b.retired.Store(true)
	b.first.done()
}
