package jobs

import (
	"context"
	"os"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/riverqueue/river/rivertype"

	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/store/storetest"
)

// tripCounter counts what pgx sends PostgreSQL: each statement alone
// (BEGIN and COMMIT included) is a round trip, and so is a batch
// (pipeline) whatever it holds, once its statements are prepared.
type tripCounter struct{ trips, stmts, failed atomic.Int64 }

func (c *tripCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.trips.Add(1)
	c.stmts.Add(1)
	return ctx
}
func (c *tripCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (c *tripCounter) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	c.trips.Add(1)
	return ctx
}
func (c *tripCounter) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {
	c.stmts.Add(1)
}
func (c *tripCounter) TraceBatchEnd(_ context.Context, _ *pgx.Conn, d pgx.TraceBatchEndData) {
	if d.Err != nil {
		c.failed.Add(1) // a declined one-trip ack: an ERROR in PostgreSQL's log
	}
}

// postgresOnly opens a fresh PostgreSQL store, or skips: outside CI a
// developer may run without a server; CI must not skip silently.
func postgresOnly(t testing.TB) (*store.Store, string) {
	t.Helper()
	if os.Getenv(storetest.EnvVar) == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set: this PostgreSQL test cannot run", storetest.EnvVar)
		}
		t.Skipf("%s is not set", storetest.EnvVar)
	}
	url := storetest.FreshPostgres(t)
	s, err := store.Open(context.Background(), url, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, url
}

// On PostgreSQL an ack batch of new deliveries while a drain waits is ONE
// round trip of two statements (the insert with the drain's lock, the
// check for the drain), committed before AcceptDeliveries returns; the
// transaction of old took five (BEGIN, insert, lock, look, COMMIT). The
// first ack, with no drain yet, is declined and inserts the drain in a
// transaction; a duplicate is declined and recorded as one there.
func TestAPostgreSQLAckWhileADrainWaitsIsOneRoundTrip(t *testing.T) {
	s, url := postgresOnly(t)
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	count := &tripCounter{}
	cfg.Tracer = count
	db := stdlib.OpenDB(*cfg)
	t.Cleanup(func() { db.Close() })
	s.DB = db // s.Reader() stays the store's own pool: reads are not counted
	s.SetAckPool(db)
	w := newWorld(t, s)
	ctx := context.Background()
	ack := func(key string) ([]bool, int64, int64) {
		t.Helper()
		trips, stmts := count.trips.Load(), count.stmts.Load()
		dups, err := w.q.AcceptDeliveries(ctx, []*store.Delivery{w.pushDelivery(key), w.pushDelivery(key + "-2")}, []bool{true, true})
		if err != nil {
			t.Fatal(err)
		}
		return dups, count.trips.Load() - trips, count.stmts.Load() - stmts
	}
	ack("first") // no drain known: the transaction inserts it, no failing check sent
	if f := count.failed.Load(); f != 0 {
		t.Fatalf("%d one-trip acks failed with no drain known; want the transaction straight away (each failure is an ERROR line in PostgreSQL's log)", f)
	}
	ack("warm") // prepares the pipeline's statements on a connection
	for _, k := range []string{"a", "b", "c"} {
		// The pool may hand out a connection that has not prepared them yet.
		if _, trips, stmts := ack(k); trips > 2 || stmts != 2 {
			t.Fatalf("ack %q: %d round trips, %d statements; want 1 (2 on a fresh connection) and 2", k, trips, stmts)
		}
	}
	n, err := store.CountDeliveries(ctx, s.Reader(), store.DeliveryAccepted)
	if err != nil || n != 10 {
		t.Fatalf("%d accepted deliveries (%v), want the 10 acknowledged, committed", n, err)
	}
	jobs, err := w.q.CountJobs(ctx, ProcessDeliveryArgs{}.Kind(), rivertype.JobStateAvailable)
	if err != nil || jobs != 1 {
		t.Fatalf("%d drain jobs (%v), want the one the first ack inserted", jobs, err)
	}
	if dups, trips, _ := ack("a"); !dups[0] || !dups[1] || trips < 3 {
		t.Fatalf("repeated keys: dups %v in %d round trips; want them recorded as duplicates by the transaction", dups, trips)
	}
	// The decline made the drain's existence unsure: the next ack looks in
	// a transaction (which finds the drain), and the one after is one trip.
	failed := count.failed.Load()
	ack("d")
	if _, trips, stmts := ack("e"); trips > 2 || stmts != 2 || count.failed.Load() != failed {
		t.Fatalf("after a decline: %d round trips, %d statements, %d more failed; want one trip again and no failure",
			trips, stmts, count.failed.Load()-failed)
	}
}
