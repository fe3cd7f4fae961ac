package store

import (
	"context"
	"database/sql"
	"strings"
	"sync"
	"testing"
	"time"

	"modernc.org/sqlite"
)

// SQLite syncs with fdatasync, as its own Linux builds do: an fsync also
// commits ext4's journal for the timestamps, and the writer's WAL writes
// queued behind that commit.
func TestSQLiteSyncsWithFdatasync(t *testing.T) {
	openSQLite(t)
	if !sqlite.FdatasyncEnabled() {
		t.Fatal("after opening a SQLite store, SQLite still syncs with fsync(2)")
	}
}

// The writer trace tells whose transaction held the writer (its first
// statement), how long BEGIN waited and how long the commit took, and
// reports checkpoints; the read pool is not traced.
func TestTheWriterTraceNamesEachTransactionAndCheckpoint(t *testing.T) {
	s := openSQLite(t)
	var mu sync.Mutex
	var uses []WriterUse
	TraceSQLiteWriters(func(u WriterUse) {
		if strings.HasSuffix(u.Conn, " "+s.Location) {
			mu.Lock()
			uses = append(uses, u)
			mu.Unlock()
		}
	})
	t.Cleanup(func() { TraceSQLiteWriters(nil) })
	ctx := context.Background()
	err := s.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `CREATE TABLE traced (v INTEGER)`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := s.Reader().QueryRowContext(ctx, `SELECT COUNT(*) FROM traced`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := s.ckpt.checkpoint(s.ckpt.db, "background", "PASSIVE"); err != nil {
		t.Fatal(err)
	}
	TraceSQLiteWriters(nil)
	mu.Lock()
	defer mu.Unlock()
	seen := map[string]WriterUse{}
	for _, u := range uses {
		if strings.Contains(u.Query, "SELECT COUNT(*) FROM traced") {
			t.Errorf("the read pool was traced: %+v", u)
		}
		seen[strings.Fields(u.Conn)[0]+" "+u.What] = u
	}
	for _, want := range []string{"writer begin", "writer tx-exec", "writer commit", "writer tx", "checkpoint:background PASSIVE"} {
		u, ok := seen[want]
		if !ok {
			t.Errorf("no %q in the trace: %+v", want, uses)
			continue
		}
		if u.Start.IsZero() || u.Took < 0 || u.Took > time.Minute {
			t.Errorf("%q has no plausible time: %+v", want, u)
		}
	}
	if tx := seen["writer tx"]; !strings.HasPrefix(tx.Query, "CREATE TABLE traced") {
		t.Errorf("the transaction is named %q, want its first statement", tx.Query)
	}
}
