package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"time"
)

// The pure-Go SQLite parses every statement anew on each call, and parsing
// was half of glenv's CPU under webhook load (River's queries are long).
// database/sql offers no per-connection statement cache, and the driver has
// none, so this connector keeps one: each connection prepares a query once
// and reuses the prepared statement, unless it is still busy with open rows.

// cachingConnector opens connections of the wrapped driver with a statement cache.
type cachingConnector struct {
	drv driver.Driver
	dsn string
	// name is what trace.go calls its connections ("" : not traced).
	name string
}

func (c cachingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.drv.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	return &cachedConn{Conn: conn, stmts: map[string]*cachedStmt{}, name: c.name}, nil
}

func (c cachingConnector) Driver() driver.Driver { return c.drv }

// openCachedSQLite opens a pool of the "sqlite" driver with statement
// caching; name, when set, has trace.go trace its connections.
func openCachedSQLite(dsn, name string) (*sql.DB, error) {
	probe, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	drv := probe.Driver()
	probe.Close()
	return sql.OpenDB(cachingConnector{drv: drv, dsn: dsn, name: name}), nil
}

const maxCachedStmts = 512

type cachedStmt struct {
	stmt driver.Stmt
	busy bool // rows from it are open
}

type cachedConn struct {
	driver.Conn
	stmts map[string]*cachedStmt
	name  string    // trace.go's name for it; "" when not traced
	tx    *tracedTx // the open transaction, while tracing
}

var _ interface {
	driver.ExecerContext
	driver.QueryerContext
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.SessionResetter
	driver.Validator
	driver.NamedValueChecker
} = (*cachedConn)(nil)

// stmt returns the cached prepared statement for query, preparing it once;
// nil when it is busy or the cache is full.
func (c *cachedConn) stmt(ctx context.Context, query string) (*cachedStmt, error) {
	if s, ok := c.stmts[query]; ok {
		if s.busy {
			return nil, nil
		}
		return s, nil
	}
	if len(c.stmts) >= maxCachedStmts {
		return nil, nil
	}
	st, err := c.PrepareContext(ctx, positional(query))
	if err != nil {
		return nil, err
	}
	s := &cachedStmt{stmt: st}
	c.stmts[query] = s
	return s, nil
}

func (c *cachedConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if c.name != "" && tracing() {
		start := time.Now()
		r, err := c.execContext(ctx, query, args)
		c.traceStmt("exec", query, start, err)
		return r, err
	}
	return c.execContext(ctx, query, args)
}

func (c *cachedConn) execContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	s, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return c.Conn.(driver.ExecerContext).ExecContext(ctx, positional(query), args)
	}
	return s.stmt.(driver.StmtExecContext).ExecContext(ctx, args)
}

func (c *cachedConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if c.name != "" && tracing() {
		start := time.Now()
		r, err := c.queryContext(ctx, query, args)
		c.traceStmt("query", query, start, err)
		return r, err
	}
	return c.queryContext(ctx, query, args)
}

func (c *cachedConn) queryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	s, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return c.Conn.(driver.QueryerContext).QueryContext(ctx, positional(query), args)
	}
	rows, err := s.stmt.(driver.StmtQueryContext).QueryContext(ctx, args)
	if err != nil {
		return nil, err
	}
	s.busy = true
	return &cachedRows{Rows: rows, s: s}, nil
}

func (c *cachedConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	return c.Conn.(driver.ConnPrepareContext).PrepareContext(ctx, query)
}

func (c *cachedConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if c.name == "" || !tracing() {
		return c.Conn.(driver.ConnBeginTx).BeginTx(ctx, opts)
	}
	start := time.Now()
	tx, err := c.Conn.(driver.ConnBeginTx).BeginTx(ctx, opts)
	traceWriter(c.name, "begin", "", start, err)
	if err != nil {
		return nil, err
	}
	c.tx = &tracedTx{Tx: tx, c: c, start: start}
	return c.tx, nil
}

func (c *cachedConn) ResetSession(ctx context.Context) error {
	if r, ok := c.Conn.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (c *cachedConn) IsValid() bool {
	if v, ok := c.Conn.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

func (c *cachedConn) CheckNamedValue(nv *driver.NamedValue) error {
	if ch, ok := c.Conn.(driver.NamedValueChecker); ok {
		return ch.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

func (c *cachedConn) Close() error {
	var errs []error
	for _, s := range c.stmts {
		errs = append(errs, s.stmt.Close())
	}
	c.stmts = nil
	return errors.Join(append(errs, c.Conn.Close())...)
}

// cachedRows frees its statement for reuse when closed.
type cachedRows struct {
	driver.Rows
	s *cachedStmt
}

func (r *cachedRows) Close() error {
	err := r.Rows.Close()
	r.s.busy = false
	return err
}

// ColumnTypeDatabaseTypeName forwards the optional interface River's driver relies on.
func (r *cachedRows) ColumnTypeDatabaseTypeName(i int) string {
	if t, ok := r.Rows.(driver.RowsColumnTypeDatabaseTypeName); ok {
		return t.ColumnTypeDatabaseTypeName(i)
	}
	return ""
}

// traceStmt reports one statement of a traced connection (trace.go).
func (c *cachedConn) traceStmt(what, query string, start time.Time, err error) {
	if c.tx != nil {
		if c.tx.first == "" {
			c.tx.first = query
		}
		what = "tx-" + what
	}
	traceWriter(c.name, what, query, start, err)
}

// tracedTx reports its commit and its whole span (trace.go).
type tracedTx struct {
	driver.Tx
	c     *cachedConn
	start time.Time
	first string // its first statement: says whose transaction it was
}

func (t *tracedTx) Commit() error { return t.end("commit", t.Tx.Commit) }

func (t *tracedTx) Rollback() error { return t.end("rollback", t.Tx.Rollback) }

func (t *tracedTx) end(what string, fn func() error) error {
	start := time.Now()
	err := fn()
	traceWriter(t.c.name, what, t.first, start, err)
	traceWriter(t.c.name, "tx", t.first, t.start, err)
	t.c.tx = nil
	return err
}
