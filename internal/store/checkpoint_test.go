package store

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// writeWAL commits n transactions of about 64 KiB each through the writer.
func writeWAL(t *testing.T, s *Store, n int) {
	t.Helper()
	ctx := context.Background()
	if _, err := s.DB.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS filler (v TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	blob := strings.Repeat("x", 64<<10)
	for range n {
		if _, err := s.DB.ExecContext(ctx, `INSERT INTO filler (v) VALUES ($1)`, blob); err != nil {
			t.Fatal(err)
		}
	}
}

func walSize(t *testing.T, s *Store) int64 {
	t.Helper()
	fi, err := os.Stat(s.Location + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func openSQLite(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "glenv.db"), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// The writer's commits never run SQLite's automatic checkpoint: with it, a
// commit past 1,000 pages of WAL would copy them all and fsync inside the
// transaction an acknowledgement waits for.
func TestTheWritersCommitsNeverCheckpoint(t *testing.T) {
	s := openSQLite(t)
	var pages int
	if err := s.DB.QueryRowContext(context.Background(), `PRAGMA wal_autocheckpoint`).Scan(&pages); err != nil || pages != 0 {
		t.Fatalf("writer's wal_autocheckpoint = %d (%v), want 0", pages, err)
	}
	s.ckpt.close()      // only the writer now: nothing may checkpoint
	writeWAL(t, s, 200) // ≈ 13 MB: three times what an automatic checkpoint lets the WAL reach
	if got := walSize(t, s); got < 3*checkpointAt {
		t.Fatalf("WAL is %d bytes after 13 MB of commits: something checkpointed inside a commit", got)
	}
}

// The background connection checkpoints the WAL as it grows, and a
// checkpointed WAL is written again from its start: it does not grow
// without bound.
func TestTheBackgroundCheckpointKeepsTheWALBounded(t *testing.T) {
	s := openSQLite(t)
	s.ckpt.close()
	c, err := newCheckpointer("file:"+s.Location+"?_pragma=busy_timeout(10000)", s.Location, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.interval, c.every = 2*time.Millisecond, 2*time.Millisecond
	// full hears of complete checkpoints that began after the last write.
	full := make(chan struct{}, 1)
	var wrote atomic.Int64
	c.ran = func(started time.Time, on, mode string, log, done int, err error) {
		if err == nil && log > 0 && log == done && started.UnixNano() > wrote.Load() {
			select {
			case full <- struct{}{}:
			default:
			}
		}
	}
	go c.loop()
	t.Cleanup(func() { c.close() })
	waitFull := func() {
		t.Helper()
		select {
		case <-full:
		case <-time.After(30 * time.Second):
			t.Fatal("no complete checkpoint within 30 s")
		}
	}
	write := func(n int) {
		select { // completions before this write do not count
		case <-full:
		default:
		}
		writeWAL(t, s, n)
		// Checkpoints that began during the write do not count either.
		wrote.Store(time.Now().UnixNano())
	}
	write(100) // ≈ 6.5 MB
	waitFull()
	for range 5 {
		write(30)
		waitFull()
	}
	if got := walSize(t, s); got > 2*checkpointAt+8<<20 {
		t.Fatalf("WAL is %d bytes after 5 checkpointed rounds of 2 MB: it grows", got)
	}
	var n int
	if err := s.Reader().QueryRowContext(context.Background(), `SELECT COUNT(*) FROM filler`).Scan(&n); err != nil || n != 250 {
		t.Fatalf("%d rows (%v), want 250: a checkpoint lost data", n, err)
	}
}

// Under writes that never pause, a background checkpoint never catches up
// with the writer; the WAL is still reset and stays bounded, and without
// a RESTART checkpoint, which would stop the writer for the whole backlog:
// the writer's own connection copies the little left between two of its
// transactions.
func TestUnderSteadyWritesTheWALIsResetWithoutStoppingTheWriter(t *testing.T) {
	s := openSQLite(t)
	s.ckpt.close()
	c, err := newCheckpointer("file:"+s.Location+"?_pragma=busy_timeout(10000)", s.Location, s.DB)
	if err != nil {
		t.Fatal(err)
	}
	// Looks far enough apart for the writer to begin a transaction between
	// a reset and the next checkpoint, as in production (100 ms).
	c.interval, c.every, c.at = 5*time.Millisecond, 5*time.Millisecond, 256<<10
	c.resetFrames, c.restartFrames = 256, 1<<30 // reset at 1 MB; never RESTART
	var onWriter, complete, resets atomic.Int64
	lastLog := 0 // the checkpointer's goroutine alone touches it
	c.ran = func(started time.Time, on, mode string, log, done int, err error) {
		if err == nil {
			// The WAL holds fewer frames than at the last look: it was
			// written again from its start.
			if log < lastLog {
				resets.Add(1)
			}
			lastLog = log
		}
		if mode != "PASSIVE" {
			t.Errorf("%s checkpoint on the %s connection: the writer would wait for the whole WAL", mode, on)
		}
		if on == "writer" && err == nil {
			onWriter.Add(1)
			if log == done {
				complete.Add(1)
			}
		}
	}
	go c.loop()
	t.Cleanup(func() { c.close() })
	ctx := context.Background()
	if _, err := s.DB.ExecContext(ctx, `CREATE TABLE filler (v TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	blob := strings.Repeat("x", 16<<10)
	// Writes back to back, 48 MB and until the WAL was reset on the writer
	// a few times (bounded: the test fails rather than hangs).
	rows := 0
	written := func() int64 { return int64(rows) * int64(len(blob)) }
	var largest int64
	for (complete.Load() < 5 || written() < 48<<20) && rows < 20000 {
		if _, err := s.DB.ExecContext(ctx, `INSERT INTO filler (v) VALUES ($1)`, blob); err != nil {
			t.Fatal(err)
		}
		rows++
		// The commit after a reset does not truncate the file (an
		// acknowledgement's commit would wait for it): it only grows.
		size := walSize(t, s)
		if size < largest {
			t.Fatalf("WAL file went from %d to %d bytes: a commit truncated it", largest, size)
		}
		largest = size
	}
	if complete.Load() < 5 {
		t.Fatalf("after %d MB written back to back, %d of %d checkpoints on the writer copied the whole WAL, want 5",
			written()>>20, complete.Load(), onWriter.Load())
	}
	// A reset WAL is written again from its start; its file is kept for
	// that (not truncated in the commit after the reset), within walSizeLimit.
	if resets.Load() < 3 {
		t.Fatalf("after %d MB written, the WAL was written again from its start %d times, want at least 3", written()>>20, resets.Load())
	}
	if got := walSize(t, s); got > walSizeLimit {
		t.Fatalf("WAL is %d bytes after %d MB written with resets at 1 MB: it grows", got, written()>>20)
	}
	var n int
	if err := s.Reader().QueryRowContext(ctx, `SELECT COUNT(*) FROM filler`).Scan(&n); err != nil || n != rows {
		t.Fatalf("%d rows (%v), want %d: a checkpoint lost data", n, err, rows)
	}
}
