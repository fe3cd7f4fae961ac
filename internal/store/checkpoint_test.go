package store

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"sync"
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

// walIndex reads, from the wal-index header SQLite keeps in the -shm file
// (https://www.sqlite.org/walformat.html, "The WAL-Index Header": mxFrame
// at byte 16, nBackfill at byte 96, in the machine's byte order), how many
// frames the WAL holds and how many of them a checkpoint copied into the
// database: the WAL is checkpointed whole when the two are equal.
func walIndex(s *Store) (frames, copied uint32, err error) {
	f, err := os.Open(s.Location + "-shm")
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	var hdr [100]byte
	if _, err := f.ReadAt(hdr[:], 0); err != nil {
		return 0, 0, err
	}
	return binary.NativeEndian.Uint32(hdr[16:]), binary.NativeEndian.Uint32(hdr[96:]), nil
}

// walResets reads the checkpoint sequence number in the WAL file's header
// (https://www.sqlite.org/fileformat2.html#walformat, byte 12, big-endian),
// which SQLite increments each time the WAL is written again from its start.
func walResets(t *testing.T, s *Store) uint32 {
	t.Helper()
	f, err := os.Open(s.Location + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var hdr [16]byte
	if _, err := f.ReadAt(hdr[:], 0); err != nil {
		t.Fatal(err)
	}
	return binary.BigEndian.Uint32(hdr[12:])
}

// copiedWhole hears when the WAL was checkpointed whole after a write: arm
// it after the write; it checks at once and after every checkpoint the
// loop runs (c.ran), so it never depends on which of the write's last
// commit and a checkpoint's start came first by the clock.
type copiedWhole struct {
	s     *Store
	mu    sync.Mutex
	armed bool
	C     chan struct{}
}

func newCopiedWhole(s *Store) *copiedWhole { return &copiedWhole{s: s, C: make(chan struct{}, 1)} }

// disarm forgets what was heard: call it before a write.
func (w *copiedWhole) disarm() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.armed = false
	select {
	case <-w.C:
	default:
	}
}

// arm starts listening: call it after the write.
func (w *copiedWhole) arm() {
	w.mu.Lock()
	w.armed = true
	w.mu.Unlock()
	w.check()
}

// check runs on the checkpointer's goroutine too: it reports nothing to t.
func (w *copiedWhole) check() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.armed {
		return
	}
	if frames, copied, err := walIndex(w.s); err == nil && frames > 0 && copied == frames {
		select {
		case w.C <- struct{}{}:
		default:
		}
	}
}

// wait fails t unless the WAL is copied whole within a deadline generous
// for a loaded machine.
func (w *copiedWhole) wait(t *testing.T) {
	t.Helper()
	select {
	case <-w.C:
	case <-time.After(60 * time.Second):
		frames, copied, err := walIndex(w.s)
		t.Fatalf("the WAL was not checkpointed whole within 60 s of the write: %d of %d frames copied (%v)", copied, frames, err)
	}
}

func openSQLite(t testing.TB) *Store {
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
	whole := newCopiedWhole(s)
	c.ran = func(time.Time, string, string, int, int, error) { whole.check() }
	go c.loop()
	t.Cleanup(func() { c.close() })
	write := func(n int) {
		whole.disarm() // what was copied before this write does not count
		writeWAL(t, s, n)
		whole.arm()
		whole.wait(t)
	}
	write(100) // ≈ 6.5 MB
	for range 5 {
		write(30)
	}
	if got := walSize(t, s); got > 2*checkpointAt+8<<20 {
		t.Fatalf("WAL is %d bytes after 5 checkpointed rounds of 2 MB: it grows", got)
	}
	var n int
	if err := s.Reader().QueryRowContext(context.Background(), `SELECT COUNT(*) FROM filler`).Scan(&n); err != nil || n != 250 {
		t.Fatalf("%d rows (%v), want 250: a checkpoint lost data", n, err)
	}
}

// A commit the WAL file's time does not show is still checkpointed: a
// commit's frames are written (the time changes) before the commit is
// published, and a coarse file clock can give two commits one time, so the
// loop asks SQLite whether anything was committed, not the file.
func TestACommitTheWALsTimeDoesNotShowIsStillCheckpointed(t *testing.T) {
	s := openSQLite(t)
	s.ckpt.close()
	c, err := newCheckpointer("file:"+s.Location+"?_pragma=busy_timeout(10000)", s.Location, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.interval, c.every = 20*time.Millisecond, 20*time.Millisecond
	whole := newCopiedWhole(s)
	c.ran = func(time.Time, string, string, int, int, error) { whole.check() }
	frozen := time.Unix(1_700_000_000, 0)
	freeze := func() {
		t.Helper()
		if err := os.Chtimes(s.Location+"-wal", frozen, frozen); err != nil {
			t.Fatal(err)
		}
	}
	writeWAL(t, s, 2)
	freeze()
	go c.loop()
	t.Cleanup(func() { c.close() })
	whole.arm()
	whole.wait(t)
	// The WAL's time stays what the last complete checkpoint saw. (A look
	// between the write and freeze would see the commit by the time too:
	// then this proves less, never fails wrongly.)
	whole.disarm()
	writeWAL(t, s, 1)
	freeze()
	whole.arm()
	whole.wait(t)
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
	var onWriter, complete atomic.Int64
	c.ran = func(started time.Time, on, mode string, log, done int, err error) {
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
	// Every commit is looked at, so no reset goes unseen (counting the
	// checkpoints that found fewer frames than the one before missed a
	// reset whenever the writer refilled the WAL between two looks).
	resets, seq := 0, uint32(0)
	for (complete.Load() < 5 || written() < 48<<20) && rows < 20000 {
		if _, err := s.DB.ExecContext(ctx, `INSERT INTO filler (v) VALUES ($1)`, blob); err != nil {
			t.Fatal(err)
		}
		rows++
		if now := walResets(t, s); now != seq {
			resets, seq = resets+1, now
		}
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
	if resets < 3 {
		t.Fatalf("after %d MB written, the WAL was written again from its start %d times, want at least 3", written()>>20, resets)
	}
	if got := walSize(t, s); got > walSizeLimit {
		t.Fatalf("WAL is %d bytes after %d MB written with resets at 1 MB: it grows", got, written()>>20)
	}
	var n int
	if err := s.Reader().QueryRowContext(ctx, `SELECT COUNT(*) FROM filler`).Scan(&n); err != nil || n != rows {
		t.Fatalf("%d rows (%v), want %d: a checkpoint lost data", n, err, rows)
	}
}
