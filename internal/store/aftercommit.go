package store

import (
	"database/sql"
	"sync"
)

// afterCommit holds what runs once a transaction of Tx has committed.
type afterCommit struct {
	mu  sync.Mutex
	fns map[*sql.Tx][]func()
}

// AfterCommit runs fn once tx, a transaction of Tx (or TxUrgent,
// TxDeferrable), has committed, and never when it rolls back. It is how an
// effect that must not happen inside a transaction follows one at once:
// jobs wake River's local workers for the jobs tx queued. fn must not block.
func (s *Store) AfterCommit(tx *sql.Tx, fn func()) {
	s.commits.mu.Lock()
	defer s.commits.mu.Unlock()
	if s.commits.fns == nil {
		s.commits.fns = map[*sql.Tx][]func(){}
	}
	s.commits.fns[tx] = append(s.commits.fns[tx], fn)
}

// ended forgets tx's functions and runs them when it committed.
func (s *Store) ended(tx *sql.Tx, committed bool) {
	s.commits.mu.Lock()
	fns := s.commits.fns[tx]
	delete(s.commits.fns, tx)
	s.commits.mu.Unlock()
	if committed {
		for _, fn := range fns {
			fn()
		}
	}
}
