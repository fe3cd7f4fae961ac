package webhook

import (
	"sync"
	"time"
)

// pressure counts the authenticated deliveries the receiver is working on
// (reading, validating, waiting for the group commit or a flush in
// progress, being answered), so that work which can wait — the delivery
// drain in internal/jobs — can give their acknowledgements the CPU and
// SQLite's one writer first. GitLab disables a hook whose deliveries time
// out or fail repeatedly (app/models/concerns/web_hooks/auto_disabling.rb);
// a delivery's processing can wait a little.
type pressure struct {
	mu sync.Mutex
	n  int
	// idle is closed once n has stayed 0 for ackQuiet; nil while quiet.
	idle  chan struct{}
	quiet *time.Timer
	zero  time.Time // the last fall to 0: a stale timer closes nothing
}

// ackQuiet is how long no acknowledgement must be in progress before the
// receiver counts as idle. Senders that each wait on their reply all get
// it from one group commit and send again at once: bench/ack counted ~75 %
// of such gaps under 100 µs and ~10 % over 800 µs, while at a steady 500/s
// about 60 % of the gaps between deliveries are longer than 1 ms. Shorter,
// the gaps of a burst let processing run at full speed through it.
const ackQuiet = time.Millisecond

// closedIdle is what AcksIdle returns while the receiver is quiet.
var closedIdle = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (p *pressure) enter() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.n++; p.n > 1 {
		return
	}
	if p.idle == nil {
		p.idle = make(chan struct{})
	} else if p.quiet != nil {
		p.quiet.Stop() // not quiet after all; one already firing closes nothing (settle)
	}
}

func (p *pressure) leave() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.n--; p.n > 0 {
		return
	}
	p.zero = time.Now()
	if p.quiet == nil {
		p.quiet = time.AfterFunc(ackQuiet, p.settle)
		return
	}
	p.quiet.Reset(ackQuiet)
}

// inProgress is how many deliveries are in progress now.
func (p *pressure) inProgress() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

// settle closes idle if the receiver has been quiet for ackQuiet. A timer
// that fired just before an enter stopped it finds n > 0, or a later fall
// to 0 too recent, and closes nothing: the timer Reset by that fall will.
func (p *pressure) settle() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.n == 0 && p.idle != nil && time.Since(p.zero) >= ackQuiet {
		close(p.idle)
		p.idle = nil
	}
}

// AcksIdle returns a channel that is closed once no acknowledgement has
// been in progress for a short while (ackQuiet): already closed when the
// receiver is quiet. Work that yields to acknowledgements waits on it,
// with its own bound: under a steady burst it may stay open for long.
func (r *Receiver) AcksIdle() <-chan struct{} {
	p := &r.pressure
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.idle == nil {
		return closedIdle
	}
	return p.idle
}
