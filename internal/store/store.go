// Package store is glenv's database: the schema, its migrations and every
// query, on SQLite (the default, pure Go, WAL) and PostgreSQL (pgx). Queries
// are plain SQL written once for both: `$n` placeholders, BIGINT microsecond
// times, RETURNING and ON CONFLICT, which both databases understand.
//
// Both databases are reached through database/sql so that one transaction
// type (*sql.Tx) carries glenv's writes and River's job inserts alike; that is
// what lets a webhook delivery and its job commit atomically on either
// database. It must not call GitLab or run processes.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/jackc/pgx/v5/stdlib" // PostgreSQL driver "pgx"
	"modernc.org/sqlite"               // SQLite driver "sqlite"
)

// Dialect names the database behind a Store.
type Dialect string

const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// Store holds the connection pools.
type Store struct {
	// DB is the pool for writes and transactions (on SQLite a single
	// connection: SQLite has one writer, and River's SQLite driver wants it so).
	DB *sql.DB
	// read serves read-only queries; on SQLite a separate pool so reads never
	// queue behind the writer (WAL lets them run alongside it).
	read *sql.DB
	// acks is PostgreSQL's pool for the webhook acknowledgements' one-trip
	// commits (InsertDeliveriesPipelined), apart from DB: through DB they
	// went to whichever of its connections was idle, River's and the
	// drain's among them, so each landed on a backend that had just done
	// other work. PostgreSQL spent 162–182 µs of CPU an acknowledgement
	// that way during bench/ack's closed loop, against 137 with this pool,
	// and processing on ÷ the bare commit went from 0.79 and 0.81× to 0.90
	// and 0.90× (two runs each, interleaved).
	acks    *sql.DB
	ownAcks bool // acks is the store's own, closed with it
	Dialect Dialect
	// Location is a printable description of the database, without passwords.
	Location string
	gate     *gate         // SQLite only: urgent writes first
	ckpt     *checkpointer // SQLite only: WAL checkpoints off the writer
	commits  afterCommit
	// listen is the pool River LISTENs on (PostgreSQL only), made on first
	// use by RiverDriver and closed with the store.
	listenURL string
	listen    *pgxpool.Pool
}

// SetAckPool makes the one-trip acknowledgements commit on db (see
// Store.acks), a pool the caller closes: tests trace what acks send.
func (s *Store) SetAckPool(db *sql.DB) {
	if s.acks != nil && s.ownAcks {
		s.acks.Close()
	}
	s.acks, s.ownAcks = db, false
}

// ackConns bounds the acks pool: the receiver's PostgreSQL flushers
// (webhook.PostgresFlushers, 2) each hold one connection while they
// commit; the rest is headroom.
const ackConns = 4

// Open connects to the database named by databaseURL ("" = SQLite file
// glenv.db in dataDir, sqlite:///path, or postgres://…) and applies pending
// migrations.
func Open(ctx context.Context, databaseURL, dataDir string) (*Store, error) {
	s, err := open(databaseURL, dataDir)
	if err != nil {
		return nil, err
	}
	if err := s.DB.PingContext(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("connect to database %s: %w", s.Location, err)
	}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// SQLiteFile is the SQLite database file databaseURL names ("" when it
// names PostgreSQL, or a SQLite URL without a file).
func SQLiteFile(databaseURL, dataDir string) string {
	switch {
	case databaseURL == "":
		return filepath.Join(dataDir, "glenv.db")
	case strings.HasPrefix(databaseURL, "sqlite://"), strings.HasPrefix(databaseURL, "file:"):
		path := strings.TrimPrefix(strings.TrimPrefix(databaseURL, "sqlite://"), "file:")
		if i := strings.IndexByte(path, '?'); i >= 0 {
			path = path[:i]
		}
		return path
	}
	return ""
}

func open(databaseURL, dataDir string) (*Store, error) {
	switch {
	case strings.HasPrefix(databaseURL, "postgres://"), strings.HasPrefix(databaseURL, "postgresql://"):
		db, err := sql.Open("pgx", databaseURL)
		if err != nil {
			return nil, fmt.Errorf("--database-url: %w", err)
		}
		db.SetMaxOpenConns(20)
		db.SetMaxIdleConns(20)
		acks, err := sql.Open("pgx", databaseURL)
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("--database-url: %w", err)
		}
		acks.SetMaxOpenConns(ackConns)
		acks.SetMaxIdleConns(ackConns)
		return &Store{DB: db, read: db, acks: acks, ownAcks: true, Dialect: Postgres, Location: redact(databaseURL), gate: newGate(), listenURL: databaseURL}, nil
	case databaseURL == "", strings.HasPrefix(databaseURL, "sqlite://"), strings.HasPrefix(databaseURL, "file:"):
		path := SQLiteFile(databaseURL, dataDir)
		if path == "" {
			return nil, fmt.Errorf("--database-url %q: name a file, e.g. sqlite:///var/lib/glenv/glenv.db", databaseURL)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("create directory for SQLite database %s: %w", path, err)
		}
		// The database holds sealed secrets and deliveries: owner-only.
		if f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600); err == nil {
			f.Close()
		}
		useFdatasync()
		dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)" +
			"&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate"
		// The writer never checkpoints: see checkpoint.go. Its statement
		// journals stay in memory (temp_store): an upsert or a multi-row
		// insert copies each page it changes to one, and past 64 KiB SQLite
		// spilled it to a temporary file, two system calls a page for the
		// rest of the transaction (a third of a new environment's insert).
		// A statement journal holds only pages one statement changes.
		w, err := openCachedSQLite(dsn+fmt.Sprintf("&_pragma=wal_autocheckpoint(0)&_pragma=journal_size_limit(%d)&_pragma=temp_store(MEMORY)", walSizeLimit), "writer "+path)
		if err != nil {
			return nil, err
		}
		w.SetMaxOpenConns(1)
		w.SetConnMaxIdleTime(0)
		w.SetConnMaxLifetime(0)
		r, err := openCachedSQLite(dsn+"&_pragma=query_only(1)", "")
		if err != nil {
			w.Close()
			return nil, err
		}
		r.SetMaxOpenConns(8)
		ckpt, err := startCheckpointer(dsn, path, w)
		if err != nil {
			w.Close()
			r.Close()
			return nil, err
		}
		return &Store{DB: w, read: r, Dialect: SQLite, Location: path, gate: newGate(), ckpt: ckpt}, nil
	default:
		return nil, fmt.Errorf("--database-url %q: must be empty (SQLite in the data dir), sqlite:///path/to/glenv.db or postgres://user:pass@host/db", redact(databaseURL))
	}
}

// useFdatasync has SQLite sync its files with fdatasync(2) instead of
// fsync(2), as SQLite's own Linux builds do (its configure script finds
// fdatasync; the pure-Go translation keeps the source's default, fsync:
// modernc.org/sqlite's Fdatasync). Durability is the same: fdatasync
// writes the data and the size, everything a file needs to be read back,
// and leaves out the timestamps. On ext4 a timestamp is what made each
// checkpoint's fsync of a WAL that is rewritten in place commit the file
// system's journal, and the acknowledgements' WAL writes, which change
// the timestamps again, queue behind that commit (strace -T during
// bench/ack: WAL pwrite64 calls of 5–25 ms).
var fdatasyncOnce sync.Once

func useFdatasync() {
	fdatasyncOnce.Do(func() { _, _ = sqlite.Fdatasync(true) })
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// Close closes the pools.
func (s *Store) Close() error {
	var err error
	if s.ckpt != nil {
		// First: a checkpoint may be running on the writer.
		err = s.ckpt.close()
	}
	err = errors.Join(err, s.DB.Close())
	if s.listen != nil {
		s.listen.Close()
	}
	if s.read != s.DB {
		err = errors.Join(err, s.read.Close())
	}
	if s.acks != nil && s.ownAcks {
		err = errors.Join(err, s.acks.Close())
	}
	return err
}

// Ping checks the database answers (for /readyz).
func (s *Store) Ping(ctx context.Context) error { return s.read.PingContext(ctx) }

// Tx runs fn in one transaction, committing when it returns nil.
func (s *Store) Tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.DB.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		s.ended(tx, false)
		return err
	}
	err = tx.Commit()
	s.ended(tx, err == nil)
	return err
}

// Querier is what both *sql.DB and *sql.Tx offer; queries take one so they
// can run inside a caller's transaction or on their own.
type Querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Reader is the pool for read-only queries outside transactions.
func (s *Store) Reader() Querier { return s.read }

// ErrNotFound is returned when a queried row does not exist.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned when a unique key is already taken.
var ErrConflict = errors.New("already exists")

func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicros(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v).UTC()
}

// Now is the store's clock, in microseconds, UTC.
func Now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

func isUniqueViolation(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, "UNIQUE constraint failed") || strings.Contains(msg, "SQLSTATE 23505")
}
