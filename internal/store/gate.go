package store

import (
	"context"
	"database/sql"
	"sync"
	"time"
)

// gate lets urgent writes (acknowledging a webhook) go before deferrable ones
// (processing deliveries). On SQLite the single writer would otherwise serve
// them in arrival order and make GitLab wait for background work; on
// PostgreSQL they would compete for the same CPUs and connections. A
// deferrable write waits at most maxDefer, so it is never starved: bursts are
// acknowledged first and processed right after.
type gate struct {
	mu     sync.Mutex
	cond   *sync.Cond
	urgent int
}

const maxDefer = 20 * time.Millisecond

func newGate() *gate {
	g := &gate{}
	g.cond = sync.NewCond(&g.mu)
	return g
}

// TxUrgent is Tx for writes a caller is waiting on.
func (s *Store) TxUrgent(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return s.urgently(func() error { return s.Tx(ctx, fn) })
}

// urgently runs fn, a write a caller is waiting on, as urgent.
func (s *Store) urgently(fn func() error) error {
	if s.gate == nil {
		return fn()
	}
	s.gate.mu.Lock()
	s.gate.urgent++
	s.gate.mu.Unlock()
	defer func() {
		s.gate.mu.Lock()
		s.gate.urgent--
		s.gate.cond.Broadcast()
		s.gate.mu.Unlock()
	}()
	return fn()
}

// TxDeferrable is Tx for background writes: it lets urgent ones go first.
func (s *Store) TxDeferrable(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if s.gate != nil {
		deadline := time.Now().Add(maxDefer)
		s.gate.mu.Lock()
		for s.gate.urgent > 0 && time.Now().Before(deadline) {
			// sync.Cond has no timed wait: a timer wakes us at the deadline.
			t := time.AfterFunc(time.Until(deadline), func() {
				s.gate.mu.Lock()
				s.gate.cond.Broadcast()
				s.gate.mu.Unlock()
			})
			s.gate.cond.Wait()
			t.Stop()
		}
		s.gate.mu.Unlock()
	}
	return s.Tx(ctx, fn)
}
