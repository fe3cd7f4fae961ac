package store

import (
	"database/sql"
	"sync"
)

// afterCommit holds the functions to run once a Store.Tx transaction has
// committed, by transaction: in-process listeners (the dashboard's change
// feed) hear of a change only when other readers can see it, and never
// from inside the transaction.
var afterCommit struct {
	sync.Mutex
	fns map[*sql.Tx][]func()
}

// AfterCommit runs fn after tx commits (never when it rolls back). tx must
// be one Store.Tx started; fn must not block.
func AfterCommit(tx *sql.Tx, fn func()) {
	afterCommit.Lock()
	defer afterCommit.Unlock()
	if afterCommit.fns == nil {
		afterCommit.fns = map[*sql.Tx][]func(){}
	}
	afterCommit.fns[tx] = append(afterCommit.fns[tx], fn)
}

func takeAfterCommit(tx *sql.Tx) []func() {
	afterCommit.Lock()
	defer afterCommit.Unlock()
	fns := afterCommit.fns[tx]
	delete(afterCommit.fns, tx)
	return fns
}

func runAfterCommit(tx *sql.Tx) {
	for _, fn := range takeAfterCommit(tx) {
		fn()
	}
}

// forgetTx drops what a rolled-back transaction registered, so the map
// never grows.
func forgetTx(tx *sql.Tx) { takeAfterCommit(tx) }
