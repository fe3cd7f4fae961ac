package store_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/store/storetest"
)

func newActivity(t *testing.T, s *store.Store, envID int64) int64 {
	t.Helper()
	a := store.Activity{IntegrationName: "app", EnvironmentID: envID, Kind: store.ActivityDeploy, State: store.ActivityRunning}
	if err := store.InsertActivity(context.Background(), s.DB, &a); err != nil {
		t.Fatal(err)
	}
	return a.ID
}

func TestALogIsAppendOnlyAndReadFromAnyOffset(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		id := newActivity(t, s, 0)
		for _, line := range []string{"fetch ✓\n", "build\n", "bad \xff byte and a \x00 NUL\n"} {
			if _, err := store.AppendLog(ctx, s.DB, id, line); err != nil {
				t.Fatalf("append %q: %v", line, err)
			}
		}
		want := "fetch ✓\nbuild\nbad \uFFFD byte and a \uFFFD NUL\n"
		tests := []struct {
			name       string
			offset     int64
			text       string
			from, next int64
		}{
			{"from the start: the whole log", 0, want, 0, int64(len(want))},
			{"from inside a chunk: the rest of it and what follows", 3, want[3:], 3, int64(len(want))},
			{"from a chunk boundary", int64(len("fetch ✓\n")), want[len("fetch ✓\n"):], int64(len("fetch ✓\n")), int64(len(want))},
			{"at the end: nothing, resume there", int64(len(want)), "", int64(len(want)), int64(len(want))},
			{"past the end: nothing, resume from the end", 1 << 20, "", int64(len(want)), int64(len(want))},
		}
		for _, tt := range tests {
			p, err := store.ReadLog(ctx, s.Reader(), id, tt.offset, 1<<20)
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			if p.Text != tt.text || p.From != tt.from || p.Next != tt.next {
				t.Errorf("%s: got %q [%d,%d), want %q [%d,%d)", tt.name, p.Text, p.From, p.Next, tt.text, tt.from, tt.next)
			}
		}
		// Each append is one row holding only what it added: nothing is rewritten.
		var rows, stored int64
		if err := s.Reader().QueryRowContext(ctx, `SELECT COUNT(*), SUM(end_off - start_off) FROM activity_log_chunks WHERE activity_id = $1`, id).Scan(&rows, &stored); err != nil {
			t.Fatal(err)
		}
		if rows != 3 || stored != int64(len(want)) {
			t.Fatalf("%d chunks holding %d bytes, want 3 holding %d", rows, stored, len(want))
		}
		if _, err := store.ReadLog(ctx, s.Reader(), id+1000, 0, 10); err != store.ErrNotFound {
			t.Fatalf("log of a missing activity: %v, want ErrNotFound", err)
		}
	})
}

func TestCappingALogKeepsItsTailAndRecordsTheCut(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		id := newActivity(t, s, 0)
		for i := range 10 {
			if _, err := store.AppendLog(ctx, s.DB, id, strings.Repeat(string(rune('a'+i)), 99)+"\n"); err != nil {
				t.Fatal(err)
			}
		}
		cut, err := store.CapLog(ctx, s.DB, id, 250)
		if err != nil {
			t.Fatal(err)
		}
		// 1000 bytes, keep 250: the chunks ending at or before 750 go; the
		// one straddling 750 stays whole.
		if cut != 700 {
			t.Fatalf("cut %d bytes, want 700", cut)
		}
		p, err := store.ReadLog(ctx, s.Reader(), id, 0, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if p.Cut != 700 || p.From != 700 || p.Next != 1000 || !strings.HasPrefix(p.Text, "hhh") || !strings.HasSuffix(p.Text, "jjj\n") {
			t.Fatalf("after the cap: cut %d, [%d,%d) %q", p.Cut, p.From, p.Next, p.Text)
		}
		if again, err := store.CapLog(ctx, s.DB, id, 250); err != nil || again != 0 {
			t.Fatalf("capping again: %d %v, want nothing more cut", again, err)
		}
		// Appending after a cap continues the same offsets.
		if end, err := store.AppendLog(ctx, s.DB, id, "more\n"); err != nil || end != 1005 {
			t.Fatalf("append after the cap: end %d %v, want 1005", end, err)
		}
		// A log cut whole still knows its end.
		if _, err := store.CapLog(ctx, s.DB, id, 0); err != nil {
			t.Fatal(err)
		}
		if end, err := store.LogEnd(ctx, s.Reader(), id); err != nil || end != 1005 {
			t.Fatalf("end of a log cut whole: %d %v, want 1005", end, err)
		}
		if end, err := store.AppendLog(ctx, s.DB, id, "x\n"); err != nil || end != 1007 {
			t.Fatalf("append to a log cut whole: %d %v, want 1007", end, err)
		}
	})
}

// Logs written before chunks existed (one TEXT column per activity) stay
// readable after the upgrade, at the same offsets.
func TestLogsWrittenBeforeTheUpgradeStayReadable(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			url, dir := b.URL(t), t.TempDir()
			s, err := store.Open(ctx, url, dir)
			if err != nil {
				t.Fatal(err)
			}
			id := newActivity(t, s, 0)
			// Undo migration 0005 and write the log the old way.
			for _, stmt := range []string{
				`DROP TABLE activity_log_chunks`,
				`DROP INDEX deliveries_body_kept`,
				`ALTER TABLE activities DROP COLUMN log_cut`,
				`ALTER TABLE deliveries DROP COLUMN body_dropped_at`,
				`DROP INDEX IF EXISTS environments_deleted`, // migration 0026 dropped it already
				`DROP INDEX activities_completed`,
				`DELETE FROM glenv_migrations WHERE version = 5`,
				`UPDATE activities SET log = log || 'built ✓' || CHR(10) WHERE id = $1`,
			} {
				var args []any
				if strings.Contains(stmt, "$1") {
					args = []any{id}
				}
				if s.Dialect == store.SQLite {
					stmt = strings.ReplaceAll(stmt, "CHR(10)", "char(10)")
				}
				if _, err := s.DB.ExecContext(ctx, stmt, args...); err != nil {
					t.Fatalf("%s: %v", stmt, err)
				}
			}
			s.Close()
			s, err = store.Open(ctx, url, dir)
			if err != nil {
				t.Fatalf("upgrade: %v", err)
			}
			defer s.Close()
			p, err := store.ReadLog(ctx, s.Reader(), id, 0, 1<<20)
			if err != nil || p.Text != "built ✓\n" {
				t.Fatalf("old log after the upgrade: %q %v", p.Text, err)
			}
			if end, err := store.AppendLog(ctx, s.DB, id, "next\n"); err != nil || end != int64(len("built ✓\nnext\n")) {
				t.Fatalf("append after the upgrade: %d %v", end, err)
			}
		})
	}
}

func TestListsCarryNoBodies(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		d := &store.Delivery{IntegrationName: "app", Event: "Push Hook", Headers: "{}", Body: strings.Repeat("x", 1<<16), Status: store.DeliveryAccepted}
		if _, err := store.InsertDelivery(ctx, s.DB, d); err != nil {
			t.Fatal(err)
		}
		ds, err := store.ListDeliveries(ctx, s.Reader(), "", 10)
		if err != nil || len(ds) != 1 || ds[0].Body != "" || ds[0].Headers != "{}" {
			t.Fatalf("list: %d deliveries, body %d bytes, %v", len(ds), len(ds[0].Body), err)
		}
		if one, err := store.GetDeliveryWithoutBody(ctx, s.Reader(), d.ID); err != nil || one.Body != "" || one.Event != "Push Hook" {
			t.Fatalf("get without body: %+v %v", one, err)
		}
		if full, err := store.GetDelivery(ctx, s.Reader(), d.ID); err != nil || len(full.Body) != 1<<16 {
			t.Fatalf("the worker's get must still load the body: %d bytes, %v", len(full.Body), err)
		}
	})
}

func TestRetentionDropsBodiesOfDoneDeliveriesOnly(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		mk := func(key, status string) int64 {
			d := &store.Delivery{IntegrationName: "app", Event: "Push Hook", IdempotencyKey: key, Headers: `{"X-Gitlab-Event":"Push Hook"}`, Body: `{"big":true}`, Status: status}
			if _, err := store.InsertDelivery(ctx, s.DB, d); err != nil {
				t.Fatal(err)
			}
			return d.ID
		}
		processed, waiting, failed := mk("a", store.DeliveryAccepted), mk("b", store.DeliveryAccepted), mk("c", store.DeliveryAccepted)
		dup := mk("a", store.DeliveryAccepted)
		if err := store.FinishDelivery(ctx, s.DB, processed, store.DeliveryProcessed, "deployed"); err != nil {
			t.Fatal(err)
		}
		if err := store.FinishDelivery(ctx, s.DB, failed, store.DeliveryFailed, "gave up"); err != nil {
			t.Fatal(err)
		}
		drop := func(before time.Time, limit int) (n int, err error) {
			err = s.Tx(ctx, func(tx *sql.Tx) (err error) {
				n, err = store.DropDeliveryBodies(ctx, tx, before, limit)
				return err
			})
			return n, err
		}
		if n, err := drop(time.Now().Add(-time.Hour), 100); err != nil || n != 0 {
			t.Fatalf("bodies younger than the retention: dropped %d %v", n, err)
		}
		total := 0
		for {
			n, err := drop(time.Now().Add(time.Second), 1)
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				break
			}
			total += n
		}
		if total != 3 {
			t.Fatalf("dropped %d bodies in batches of one, want 3 (processed, failed, duplicate)", total)
		}
		for id, kept := range map[int64]bool{processed: false, failed: false, dup: false, waiting: true} {
			d, err := store.GetDelivery(ctx, s.Reader(), id)
			if err != nil {
				t.Fatal(err)
			}
			if kept != (d.Body != "") || kept != d.BodyDroppedAt.IsZero() || d.Headers == "" {
				t.Errorf("delivery %d (%s): body %q dropped at %v headers %q; want kept=%v and headers kept", id, d.Status, d.Body, d.BodyDroppedAt, d.Headers, kept)
			}
			if id == processed && d.Result != "deployed" {
				t.Errorf("the result went with the body: %q", d.Result)
			}
		}
	})
}

func TestRetentionForgetsOldTombstonesWithTheirActivitiesAndLogs(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		in := integ("app")
		if err := store.CreateIntegration(ctx, s.DB, in); err != nil {
			t.Fatal(err)
		}
		env := func(name string, deletedAgo time.Duration) int64 {
			e := &store.Environment{IntegrationID: in.ID, IntegrationName: "app", ProjectID: 42, Name: name, Slug: name,
				Host: name + "--app", Kind: "branch", Ref: name, State: store.StateActive}
			if deletedAgo > 0 {
				e.State, e.DeletedAt = store.StateDeleted, store.Now().Add(-deletedAgo)
			}
			if err := store.SaveEnvironment(ctx, s.DB, e); err != nil {
				t.Fatal(err)
			}
			a := newActivity(t, s, e.ID)
			if _, err := store.AppendLog(ctx, s.DB, a, "log of "+name+"\n"); err != nil {
				t.Fatal(err)
			}
			return e.ID
		}
		old, recent, live := env("old", 40*24*time.Hour), env("recent", time.Hour), env("live", 0)
		purge := func() int {
			var n int
			if err := s.Tx(ctx, func(tx *sql.Tx) (err error) {
				n, err = store.PurgeDeletedEnvironments(ctx, tx, time.Now().Add(-30*24*time.Hour), 100)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			return n
		}
		if n := purge(); n != 1 {
			t.Fatalf("purged %d environments, want 1", n)
		}
		count := func(query string, id int64) int {
			var n int
			if err := s.Reader().QueryRowContext(ctx, query, id).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		for id, want := range map[int64]int{old: 0, recent: 1, live: 1} {
			if n := count(`SELECT COUNT(*) FROM environments WHERE id = $1`, id); n != want {
				t.Errorf("environment %d: %d rows, want %d", id, n, want)
			}
			if n := count(`SELECT COUNT(*) FROM activities WHERE environment_id = $1`, id); n != want {
				t.Errorf("activities of environment %d: %d, want %d", id, n, want)
			}
			if n := count(`SELECT COUNT(*) FROM activity_log_chunks c JOIN activities a ON a.id = c.activity_id WHERE a.environment_id = $1`, id); n != want {
				t.Errorf("log chunks of environment %d: %d, want %d", id, n, want)
			}
		}
		var orphans int
		if err := s.Reader().QueryRowContext(ctx, `SELECT COUNT(*) FROM activity_log_chunks WHERE activity_id NOT IN (SELECT id FROM activities)`).Scan(&orphans); err != nil || orphans != 0 {
			t.Fatalf("%d log chunks left without their activity (%v)", orphans, err)
		}
		if n := purge(); n != 0 {
			t.Fatalf("a second pass purged %d more", n)
		}
	})
}
