package jobs

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/store/storetest"
)

// pushDelivery is an accepted push creating branch, keyed by its name.
func (w *world) pushDelivery(branch string) *store.Delivery {
	return &store.Delivery{IntegrationID: w.in.ID, IntegrationName: "app", Event: "Push Hook", IdempotencyKey: branch,
		Headers: "{}", Body: pushBody(branch), Status: store.DeliveryAccepted}
}

// startDrainQueue starts a queue on s whose River never polls and never
// sweeps within the test: only the wakes after commits move its jobs.
// prepare sets its test seams before its workers start.
func startDrainQueue(t *testing.T, s *store.Store, rt Runtime, prepare func(q *Environments)) *Environments {
	t.Helper()
	q, err := NewQueue(s, Deps{Runtime: rt}, QueueConfig{PollInterval: time.Hour, RepairInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if prepare != nil {
		prepare(q)
	}
	return runQueue(t, q)
}

// waitDelivery waits until delivery id has left status accepted and returns it.
func waitDelivery(t *testing.T, s *store.Store, id int64, within time.Duration) store.Delivery {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		d, err := store.GetDeliveryWithoutBody(context.Background(), s.Reader(), id)
		if err != nil {
			t.Fatal(err)
		}
		if d.Status != store.DeliveryAccepted {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivery %d (%s) still accepted after %s: nothing processed it", id, d.IdempotencyKey, within)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// ackWaiting reports whether an ack is waiting for the drain's last
// transaction: on SQLite for the one writer connection (database/sql
// counts the waits), on PostgreSQL for the drain's advisory lock.
func ackWaiting(s *store.Store, waitsBefore int64) (bool, error) {
	if s.Dialect == store.SQLite {
		return s.DB.Stats().WaitCount > waitsBefore, nil
	}
	var n int
	err := s.Reader().QueryRowContext(context.Background(), `SELECT COUNT(*) FROM pg_locks
		WHERE locktype = 'advisory' AND NOT granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&n)
	return n > 0, err
}

// The race a unique drain job invites: an ack that commits after the
// drain's last look for accepted deliveries, but while its job is still
// running (so the ack inserts no job), would be stranded. The drain's last
// look and its completion are one transaction that serialises with acks:
// an ack sent from between the two cannot commit until the drain has
// completed, then finds no drain and queues one. River never polls and the
// repair sweep never runs here: only that new job processes the delivery.
func TestAnAckSentAsTheDrainEndsIsProcessedWithoutPollOrSweep(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		late := w.pushDelivery("late")
		ackDone := make(chan error, 1)
		// inWindow reports, from the drain's worker goroutine, what the
		// ack did while the drain was between its last look and its
		// completion: "waiting" (right), "committed" (the bug), or an error.
		inWindow := make(chan string, 1)
		var once sync.Once
		var q *Environments
		q = startDrainQueue(t, s, w.rt, func(eq *Environments) {
			eq.drainEnding = func() {
				once.Do(func() {
					waits := s.DB.Stats().WaitCount
					go func() {
						_, err := q.AcceptDeliveries(context.Background(), []*store.Delivery{late}, []bool{true})
						ackDone <- err
					}()
					deadline := time.Now().Add(10 * time.Second)
					for time.Now().Before(deadline) {
						select {
						case err := <-ackDone:
							ackDone <- err
							inWindow <- "committed"
							return
						default:
						}
						waiting, err := ackWaiting(s, waits)
						if err != nil {
							inWindow <- err.Error()
							return
						}
						if waiting {
							inWindow <- "waiting"
							return
						}
						time.Sleep(time.Millisecond)
					}
					inWindow <- "neither committed nor waiting after 10s"
				})
			}
		})
		first := w.pushDelivery("first")
		if _, err := q.AcceptDeliveries(context.Background(), []*store.Delivery{first}, []bool{true}); err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-inWindow:
			if got != "waiting" {
				t.Fatalf("the ack sent between the drain's last look and its completion: %s, want it waiting for the drain's transaction", got)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("the drain never reached its last step")
		}
		select {
		case err := <-ackDone:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("the ack never committed")
		}
		if d := waitDelivery(t, s, first.ID, 20*time.Second); d.Status != store.DeliveryProcessed {
			t.Fatalf("first delivery %s: %s", d.Status, d.Result)
		}
		if d := waitDelivery(t, s, late.ID, 20*time.Second); d.Status != store.DeliveryProcessed {
			t.Fatalf("late delivery %s: %s", d.Status, d.Result)
		}
	})
}

// Group commits while a drain waits queue no job of their own: River's
// per-job cost is paid per drain, not per acknowledged batch. A delivery
// not to be processed is recorded as processed, so the drain never picks
// it up.
func TestAcksWhileADrainWaitsQueueOneJob(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		w := newWorld(t, s)
		for _, b := range []string{"a", "b", "c", "d"} {
			if _, err := w.q.AcceptDeliveries(ctx, []*store.Delivery{w.pushDelivery(b)}, []bool{true}); err != nil {
				t.Fatal(err)
			}
		}
		ignored := w.pushDelivery("ignored")
		if _, err := w.q.AcceptDeliveries(ctx, []*store.Delivery{ignored}, []bool{false}); err != nil {
			t.Fatal(err)
		}
		n, err := w.q.CountJobs(ctx, ProcessDeliveryArgs{}.Kind(), rivertype.JobStateAvailable)
		if err != nil || n != 1 {
			t.Fatalf("%d process_delivery jobs available (%v), want the one drain", n, err)
		}
		d, err := store.GetDeliveryWithoutBody(ctx, s.Reader(), ignored.ID)
		if err != nil || d.Status != store.DeliveryProcessed {
			t.Fatalf("a delivery not to be processed is %q (%v), want processed (recorded only)", d.Status, err)
		}
	})
}

// A delivery whose processing keeps failing (not a conflict: any error)
// is tried a bounded number of times, then marked failed with the reason,
// and the deliveries after it are processed: the drain goes in order, so
// without a bound one bad delivery would hold back all later ones.
func TestADeliveryThatKeepsFailingIsFailedAfterItsAttemptsAndTheRestGoOn(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		var poison atomic.Int64
		var tries atomic.Int32
		q := startDrainQueue(t, s, w.rt, func(q *Environments) {
			q.deliveryRetryBase = time.Millisecond
			q.deliveryFault = func(id int64) error {
				if id == poison.Load() {
					tries.Add(1)
					return errors.New("injected failure")
				}
				return nil
			}
		})
		before, bad, after := w.pushDelivery("before"), w.pushDelivery("bad"), w.pushDelivery("after")
		// Ids are known once stored: store the three, arm the fault on
		// the middle one, then ack a fourth, which queues the drain.
		ds := []*store.Delivery{before, bad, after}
		if _, err := store.InsertDeliveries(context.Background(), s.DB, ds); err != nil {
			t.Fatal(err)
		}
		poison.Store(bad.ID)
		if _, err := q.AcceptDeliveries(context.Background(), []*store.Delivery{w.pushDelivery("last")}, []bool{true}); err != nil {
			t.Fatal(err)
		}
		for _, d := range []*store.Delivery{before, after} {
			if got := waitDelivery(t, s, d.ID, 30*time.Second); got.Status != store.DeliveryProcessed {
				t.Fatalf("%s: %s %q, want processed", d.IdempotencyKey, got.Status, got.Result)
			}
		}
		got := waitDelivery(t, s, bad.ID, time.Second)
		if got.Status != store.DeliveryFailed || !strings.Contains(got.Result, "injected failure") || !strings.Contains(got.Result, "5 times") {
			t.Fatalf("bad delivery: %s %q, want failed after 5 attempts with the reason", got.Status, got.Result)
		}
		// Each attempt but the first runs twice: the batch, then isolated.
		if n := tries.Load(); n < maxDeliveryAttempts || n > 2*maxDeliveryAttempts {
			t.Fatalf("the bad delivery was tried %d times, want between %d and %d", n, maxDeliveryAttempts, 2*maxDeliveryAttempts)
		}
	})
}

// Jobs an older glenv queued name their deliveries; after an upgrade they
// are still worked, beside the drain, and every delivery applies once.
func TestJobsOfAnOlderGlenvAreStillProcessedBesideTheDrain(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		w := newWorld(t, s)
		old := []*store.Delivery{w.pushDelivery("old-1"), w.pushDelivery("old-2")}
		if _, err := store.InsertDeliveries(ctx, s.DB, old); err != nil {
			t.Fatal(err)
		}
		if _, err := w.q.River.Insert(ctx, ProcessDeliveryArgs{DeliveryIDs: []int64{old[0].ID, old[1].ID}},
			&river.InsertOpts{Queue: QueueDeliveries}); err != nil {
			t.Fatal(err)
		}
		q := startDrainQueue(t, s, w.rt, nil)
		fresh := w.pushDelivery("new")
		if _, err := q.AcceptDeliveries(ctx, []*store.Delivery{fresh}, []bool{true}); err != nil {
			t.Fatal(err)
		}
		for _, d := range append(old, fresh) {
			if got := waitDelivery(t, s, d.ID, 20*time.Second); got.Status != store.DeliveryProcessed {
				t.Fatalf("%s: %s %q", d.IdempotencyKey, got.Status, got.Result)
			}
			acts, err := store.ListActivities(ctx, s.Reader(), store.ActivityFilter{Integration: "app", DeliveryID: d.ID, Limit: 10})
			if err != nil || len(acts) != 1 {
				t.Fatalf("%s: %d activities (%v), want exactly one", d.IdempotencyKey, len(acts), err)
			}
		}
	})
}

// On SQLite a drain left running by a killed glenv is nobody's (one glenv
// serves a SQLite database): a restart makes it available at once, so the
// deliveries it held, and the ones acked since (which find it and queue
// nothing), wait for no rescue (6 minutes by default).
func TestADrainLeftRunningByADeadGlenvResumesAtStartOnSQLite(t *testing.T) {
	s := storetest.Open(t, storetest.Backends()[0])
	ctx := context.Background()
	w := newWorld(t, s)
	d := w.pushDelivery("held")
	if _, err := w.q.AcceptDeliveries(ctx, []*store.Delivery{d}, []bool{true}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DB.ExecContext(ctx, `UPDATE river_job SET state = 'running', attempt = 1 WHERE kind = 'process_delivery'`); err != nil {
		t.Fatal(err)
	}
	startDrainQueue(t, s, w.rt, nil)
	if got := waitDelivery(t, s, d.ID, 20*time.Second); got.Status != store.DeliveryProcessed {
		t.Fatalf("%s %q", got.Status, got.Result)
	}
}

// Accepted deliveries whose drain job is gone (cancelled by hand, say)
// get one from the repair sweep; with a drain there it queues nothing.
func TestTheRepairSweepQueuesADrainForAcceptedDeliveriesWithout(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		w := newWorld(t, s)
		if _, err := store.InsertDeliveries(ctx, s.DB, []*store.Delivery{w.pushDelivery("orphan")}); err != nil {
			t.Fatal(err)
		}
		for round, want := range []bool{true, false} {
			queued, err := w.q.repairDrain(ctx)
			if err != nil || queued != want {
				t.Fatalf("round %d: queued %v (%v), want %v", round+1, queued, err, want)
			}
		}
		if n, err := w.q.CountJobs(ctx, ProcessDeliveryArgs{}.Kind(), rivertype.JobStateAvailable); err != nil || n != 1 {
			t.Fatalf("%d drain jobs (%v), want 1", n, err)
		}
	})
}
