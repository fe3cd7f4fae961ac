package activitylog_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/glenv/glenv/internal/activitylog"
	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/store/storetest"
)

func newActivity(t testing.TB, s *store.Store) int64 {
	t.Helper()
	a := store.Activity{IntegrationName: "app", Kind: store.ActivityDeploy, State: store.ActivityRunning}
	if err := store.InsertActivity(context.Background(), s.DB, &a); err != nil {
		t.Fatal(err)
	}
	return a.ID
}

// readAll reads a log page by page as a follower would, from offset 0.
func readAll(t testing.TB, s *store.Store, id int64) string {
	t.Helper()
	var b strings.Builder
	var offset int64
	for {
		p, err := activitylog.Read(context.Background(), s.Reader(), id, offset)
		if err != nil {
			t.Fatal(err)
		}
		if p.Text == "" {
			return b.String()
		}
		b.WriteString(p.Text)
		offset = p.Next
	}
}

func closeWriter(t testing.TB, w *activitylog.Writer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func line(i int) string { return fmt.Sprintf("%06d step output of a long build\n", i) }

// 20,000 lines (the reproduced build) land in a few chunks, read back
// whole and in order: each flush adds one row and rewrites none.
func TestManyLinesAreBatchedIntoFewAppendOnlyChunks(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		id := newActivity(t, s)
		w := activitylog.New(s, activitylog.Options{}).Writer(id)
		var want strings.Builder
		for i := range 20000 {
			w.Line(line(i))
			want.WriteString(line(i))
		}
		closeWriter(t, w)
		if got := readAll(t, s, id); got != want.String() {
			t.Fatalf("log read back differs: %d bytes, want %d", len(got), want.Len())
		}
		var chunks, stored int64
		if err := s.Reader().QueryRowContext(context.Background(), `SELECT COUNT(*), SUM(end_off - start_off) FROM activity_log_chunks WHERE activity_id = $1`, id).Scan(&chunks, &stored); err != nil {
			t.Fatal(err)
		}
		if chunks > 200 || stored != int64(want.Len()) {
			t.Fatalf("20,000 lines became %d chunks holding %d bytes; want at most 200 chunks holding exactly the %d bytes written", chunks, stored, want.Len())
		}
	})
}

// blockWrites holds the database's writes until the returned func is
// called: on SQLite by holding its one writer connection in a write
// transaction, on PostgreSQL by locking the chunk table.
func blockWrites(t *testing.T, s *store.Store) (release func()) {
	t.Helper()
	tx, err := s.DB.BeginTx(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Dialect == store.Postgres {
		_, err = tx.Exec(`LOCK TABLE activity_log_chunks IN ACCESS EXCLUSIVE MODE`)
	} else {
		_, err = tx.Exec(`UPDATE activities SET state = state WHERE id = 0`)
	}
	if err != nil {
		t.Fatal(err)
	}
	released := false
	release = func() {
		if !released {
			released = true
			_ = tx.Rollback()
		}
	}
	t.Cleanup(release)
	return release
}

// A deploy is never slowed by its own logging: with the database unable to
// take writes, Line still returns at once; what did not fit is dropped and
// the log says how much, where. (store.AppendActivityLog, what workers
// called per line, waits for the database instead.)
func TestALineNeverWaitsForTheDatabase(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		id := newActivity(t, s)
		logs := activitylog.New(s, activitylog.Options{FlushSize: 4 << 10, MaxBuffer: 16 << 10, FlushInterval: 10 * time.Millisecond})
		w := logs.Writer(id)
		w.Line("before the database stalled\n")
		release := blockWrites(t, s)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := range 5000 {
				w.Line(line(i))
			}
		}()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatal("Line blocked while the database could not take writes")
		}
		release()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := w.Flush(ctx); err != nil {
			t.Fatalf("flush once the database is back: %v", err)
		}
		w.Line("after it recovered\n")
		closeWriter(t, w)
		got := readAll(t, s, id)
		if !strings.HasPrefix(got, "before the database stalled\n") || !strings.HasSuffix(got, "after it recovered\n") {
			t.Fatalf("log lost its first or last line:\n%.300s … %.300s", got, got[max(0, len(got)-300):])
		}
		m := regexp.MustCompile(`\[… (\d+) lines dropped: [^\]]*\]\n`).FindAllStringSubmatch(got, -1)
		if len(m) == 0 {
			t.Fatalf("no dropped-lines marker in a log that could not keep up:\n%.500s", got)
		}
		kept := strings.Count(got, "step output")
		dropped := 0
		for _, x := range m {
			var n int
			fmt.Sscan(x[1], &n)
			dropped += n
		}
		if kept+dropped != 5000 || kept == 0 {
			t.Fatalf("%d lines kept + %d reported dropped, want 5000 in all", kept, dropped)
		}
		// What was kept is in order: the lines before a marker precede the ones after.
		prev := -1
		for _, l := range strings.Split(got, "\n") {
			var n int
			if _, err := fmt.Sscanf(l, "%06d step", &n); err == nil {
				if n <= prev {
					t.Fatalf("line %d after line %d: order lost", n, prev)
				}
				prev = n
			}
		}
	})
}

// A log over MaxSize keeps its tail while it is written, and a reader from
// the start is told how much was cut.
func TestALongLogKeepsItsTailAndSaysItWasCut(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		id := newActivity(t, s)
		w := activitylog.New(s, activitylog.Options{FlushSize: 8 << 10, MaxSize: 64 << 10}).Writer(id)
		total := 0
		for i := range 10000 {
			w.Line(line(i))
			total += len(line(i))
		}
		closeWriter(t, w)
		got := readAll(t, s, id)
		if !strings.HasPrefix(got, "[… ") || !strings.Contains(got, "bytes cut from the start of this log") {
			t.Fatalf("a capped log does not say it was cut:\n%.300s", got)
		}
		if !strings.HasSuffix(got, line(9999)) {
			t.Fatalf("the tail was not kept: …%q", got[max(0, len(got)-100):])
		}
		if len(got) > 64<<10*5/4+8<<10+200 {
			t.Fatalf("%d bytes kept of %d written; the cap is 64KiB (within a quarter and a chunk)", len(got), total)
		}
	})
}

// A follower resumes from the offset it got and sees every byte exactly
// once while the log is being written.
func TestAFollowerResumingFromOffsetsSeesEveryByteOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		id := newActivity(t, s)
		w := activitylog.New(s, activitylog.Options{FlushSize: 1 << 10, FlushInterval: time.Millisecond}).Writer(id)
		var want strings.Builder
		var got strings.Builder
		var offset int64
		for i := range 2000 {
			w.Line(line(i))
			want.WriteString(line(i))
			if i%100 == 0 {
				p, err := activitylog.Read(ctx, s.Reader(), id, offset)
				if err != nil {
					t.Fatal(err)
				}
				got.WriteString(p.Text)
				offset = p.Next
			}
		}
		closeWriter(t, w)
		for {
			p, err := activitylog.Read(ctx, s.Reader(), id, offset)
			if err != nil {
				t.Fatal(err)
			}
			if p.Text == "" {
				break
			}
			got.WriteString(p.Text)
			offset = p.Next
		}
		if got.String() != want.String() {
			t.Fatalf("follower read %d bytes, want the %d written, once each", got.Len(), want.Len())
		}
	})
}

func TestLinesAfterCloseAreIgnoredAndCloseIsIdempotent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		id := newActivity(t, s)
		w := activitylog.New(s, activitylog.Options{}).Writer(id)
		w.Line("one\n")
		closeWriter(t, w)
		w.Line("late\n")
		closeWriter(t, w)
		if got := readAll(t, s, id); got != "one\n" {
			t.Fatalf("log = %q", got)
		}
	})
}

// Lines that reach the database after retention forgot their activity are
// dropped, not stored as chunks of a log nothing can read or remove, and
// the writer does not retry them.
func TestLinesOfAForgottenActivityLeaveNoChunks(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		id := newActivity(t, s)
		w := activitylog.New(s, activitylog.Options{}).Writer(id)
		if _, err := s.DB.ExecContext(ctx, `DELETE FROM activities WHERE id = $1`, id); err != nil {
			t.Fatal(err)
		}
		w.Line("late\n")
		closeWriter(t, w)
		var chunks int
		if err := s.Reader().QueryRowContext(ctx, `SELECT COUNT(*) FROM activity_log_chunks WHERE activity_id = $1`, id).Scan(&chunks); err != nil {
			t.Fatal(err)
		}
		if chunks != 0 {
			t.Fatalf("%d chunks of a forgotten activity's log were stored", chunks)
		}
		if _, err := store.AppendLog(ctx, s.DB, id, "direct\n"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("AppendLog to a forgotten activity: %v, want ErrNotFound", err)
		}
	})
}
