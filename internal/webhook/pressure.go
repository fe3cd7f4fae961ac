package webhook

import "sync"

// pressure counts the authenticated deliveries the receiver is working on
// (reading, validating, waiting for the group commit or a flush in
// progress, being answered), so that work which can wait — the delivery
// drain in internal/jobs — can give their acknowledgements the CPU and
// SQLite's one writer first. GitLab disables a hook whose deliveries time
// out or fail repeatedly (app/models/concerns/web_hooks/auto_disabling.rb);
// a delivery's processing can wait a little.
type pressure struct {
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed when n drops to 0; nil while n is 0
}

// closedIdle is what AcksIdle returns while no delivery is in the receiver.
var closedIdle = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (p *pressure) enter() {
	p.mu.Lock()
	if p.n++; p.n == 1 {
		p.idle = make(chan struct{})
	}
	p.mu.Unlock()
}

func (p *pressure) leave() {
	p.mu.Lock()
	if p.n--; p.n == 0 {
		close(p.idle)
		p.idle = nil
	}
	p.mu.Unlock()
}

// AcksIdle returns a channel that is closed once no acknowledgement is in
// progress: already closed when none is. Work that yields to
// acknowledgements waits on it (with its own bound: under a steady burst
// it may stay open for long).
func (r *Receiver) AcksIdle() <-chan struct{} {
	p := &r.pressure
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.n == 0 {
		return closedIdle
	}
	return p.idle
}
