package store

import (
	"sync/atomic"
	"time"
)

// A diagnostic of SQLite's one writer, for bench/ack's -stalls: who held
// the writer connection, and for how long, around an acknowledgement that
// was slow. Off unless a benchmark sets it; then it costs the writer one
// clock read and a call per statement and transaction.

// WriterUse is one use of a SQLite connection glenv writes through.
type WriterUse struct {
	// Conn is "writer <database file>" (the store's one writing
	// connection) or "checkpoint:<on> <database file>" (a checkpoint on
	// the checkpointer's connection, on "background", or on "writer").
	Conn string
	// What is "begin" (BEGIN IMMEDIATE, waiting on locks), "tx" (begin to
	// commit or rollback, What's Query its first statement), "exec" /
	// "query" (a statement outside a transaction, or inside for
	// "tx-exec"/"tx-query"), or a checkpoint's mode.
	What  string
	Query string
	Start time.Time
	Took  time.Duration
	Err   error
}

var writerTrace atomic.Pointer[func(WriterUse)]

// TraceSQLiteWriters has fn hear of every use of the SQLite writer and
// checkpoint connections of every store in this process (nil: stop). fn
// runs on the connection's goroutine and must not block.
func TraceSQLiteWriters(fn func(WriterUse)) {
	if fn == nil {
		writerTrace.Store(nil)
		return
	}
	writerTrace.Store(&fn)
}

func traceWriter(conn, what, query string, start time.Time, err error) {
	if fn := writerTrace.Load(); fn != nil {
		(*fn)(WriterUse{Conn: conn, What: what, Query: query, Start: start, Took: time.Since(start), Err: err})
	}
}

func tracing() bool { return writerTrace.Load() != nil }
