package jobs

import (
	"context"
	"database/sql"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/glenv/glenv/internal/lifecycle"
	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/store/storetest"
)

// postgresURL is a fresh PostgreSQL database for a test about PostgreSQL
// itself; without a server it skips, except in CI, where it fails.
func postgresURL(t *testing.T) string {
	t.Helper()
	if os.Getenv(storetest.EnvVar) == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("set %s to a PostgreSQL server: this test is about PostgreSQL's NOTIFY", storetest.EnvVar)
		}
		t.Skipf("set %s to a PostgreSQL server to run this test about PostgreSQL's NOTIFY", storetest.EnvVar)
	}
	return storetest.FreshPostgres(t)
}

func openStore(t *testing.T, url string) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), url, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// placedOn sends every environment's runtime jobs to one queue.
type placedOn string

func (p placedOn) Queue(context.Context, *sql.Tx, int64) (string, error) { return string(p), nil }
func (p placedOn) Claim(context.Context, int64) (bool, error)            { return false, nil }

func startQueue(t *testing.T, s *store.Store, deps Deps, cfg QueueConfig) *Environments {
	t.Helper()
	q, err := NewQueue(s, deps, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return runQueue(t, q)
}

// runQueue starts q's workers until the test ends.
func runQueue(t testing.TB, q *Environments) *Environments {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	if err := q.Start(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		_ = q.Stop(sctx)
		cancel()
	})
	return q
}

// A deploy replica A queues for an environment replica B runs reaches B
// through PostgreSQL's NOTIFY (B's own queue is not A's to wake): with
// River's poll an hour away, B still starts it at once, and A never does.
func TestDeployForAnotherReplicaStartsThereWithoutPolling(t *testing.T) {
	url := postgresURL(t)
	sA, sB := openStore(t, url), openStore(t, url)
	w := newWorld(t, sA)
	rtA, rtB := &fakeRuntime{started: make(chan int64, 4)}, &fakeRuntime{started: make(chan int64, 4)}
	cfg := func(id string) QueueConfig {
		return QueueConfig{PollInterval: time.Hour, RepairInterval: time.Hour, OwnQueue: "replica-" + id, ClientID: id}
	}
	qA := startQueue(t, sA, Deps{Runtime: rtA, Placement: placedOn("replica-b")}, cfg("a"))
	startQueue(t, sB, Deps{Runtime: rtB, Placement: placedOn("replica-b")}, cfg("b"))
	env := w.env("main", "branch", store.StateActive, 0)
	ctx := context.Background()
	// B's first fetch at start may find the first deploy; it fetches only
	// once it LISTENs, so the second, queued after, needs the NOTIFY.
	for round := range 2 {
		if _, _, err := qA.Trigger(ctx, env.ID, lifecycle.Input{Trigger: lifecycle.TriggerRedeploy}, record{Description: "test"}); err != nil {
			t.Fatal(err)
		}
		select {
		case id := <-rtB.started:
			if id != env.ID {
				t.Fatalf("replica B started environment %d, want %d", id, env.ID)
			}
		case id := <-rtA.started:
			t.Fatalf("replica A started environment %d, whose jobs go to replica B's queue", id)
		case <-time.After(20 * time.Second):
			t.Fatalf("deploy %d, queued by replica A for replica B, did not start on B: B was not told", round+1)
		}
		waitActive(t, sA, env.ID)
	}
}

// The jobs a replica works itself are told to its workers after the commit,
// not NOTIFYed: PostgreSQL serialises the commits of every transaction
// that NOTIFYs on one lock, which made webhook acks from several replicas
// wait for each other. Whatever the way in (glenv's InsertTx, River's
// InsertTx inside glenv's transaction, River's Insert outside one), only
// the job for another replica's queue reaches a LISTENing connection.
func TestJobsThisReplicaWorksAreNotNotified(t *testing.T) {
	url := postgresURL(t)
	s := openStore(t, url)
	w := newWorld(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	// River's channel is schema-qualified (PGNotifyMany: current_schema()).
	if _, err := conn.Exec(ctx, `LISTEN "public.river_insert"`); err != nil {
		t.Fatal(err)
	}
	q, err := NewQueue(s, Deps{Runtime: w.rt}, QueueConfig{OwnQueue: "replica-a"})
	if err != nil {
		t.Fatal(err)
	}
	d := &store.Delivery{IntegrationID: w.in.ID, IntegrationName: "app", Event: "Push Hook", IdempotencyKey: "k1",
		Headers: "{}", Body: pushBody("feature"), Status: store.DeliveryAccepted}
	if _, err := q.AcceptDeliveries(ctx, []*store.Delivery{d}, []bool{true}); err != nil {
		t.Fatal(err)
	}
	err = s.Tx(ctx, func(tx *sql.Tx) error {
		_, err := q.River.InsertTx(ctx, tx, ReconcileArgs{Integration: "app"}, nil)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.River.Insert(ctx, ReconcileArgs{Integration: "other"}, &river.InsertOpts{Queue: "replica-a"}); err != nil {
		t.Fatal(err)
	}
	err = s.Tx(ctx, func(tx *sql.Tx) error {
		_, err := q.InsertTx(ctx, tx, ReconcileArgs{Integration: "app"}, &river.InsertOpts{Queue: "replica-b"})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// Notifications arrive in commit order: the first is the last insert's.
	n, err := conn.WaitForNotification(ctx)
	if err != nil {
		t.Fatalf("no NOTIFY for the job queued for replica B: %v", err)
	}
	if want := `{"queue": "replica-b"}`; n.Payload != want {
		t.Fatalf("first NOTIFY says %s, want %s: a job this replica works was NOTIFYed", n.Payload, want)
	}
}

// probeArgs is a job that only says it ran.
type probeArgs struct {
	N int `json:"n"`
}

func (probeArgs) Kind() string { return "test_probe" }

type probeWorker struct {
	river.WorkerDefaults[probeArgs]
	ran chan int
}

func (w *probeWorker) Work(_ context.Context, job *river.Job[probeArgs]) error {
	w.ran <- job.Args.N
	return nil
}

// River NOTIFYs a queue at most once per FetchCooldown, so a job inserted
// just after another, in a transaction that commits after the workers
// fetched the first, used to wait for the poll. Every insert wakes the
// workers here: with the poll an hour away, the second still runs (one
// cooldown after the first fetch).
func TestAnInsertRiverDidNotNotifyStillWakesTheWorkers(t *testing.T) {
	url := postgresURL(t)
	s := openStore(t, url)
	ran := make(chan int, 4)
	register := func(ws *river.Workers) { river.AddWorker(ws, &probeWorker{ran: ran}) }
	q := startQueue(t, s, Deps{Runtime: &fakeRuntime{}, Register: []func(*river.Workers){register}},
		// A second's cooldown: the second insert surely comes within it.
		// Its own queue, so no other job's wake fetches the probes.
		QueueConfig{PollInterval: time.Hour, RepairInterval: time.Hour, FetchCooldown: time.Second, OwnQueue: "probe"})
	probe := &river.InsertOpts{Queue: "probe"}
	ctx := context.Background()
	err := s.Tx(ctx, func(second *sql.Tx) error {
		err := s.Tx(ctx, func(first *sql.Tx) error {
			if _, err := q.River.InsertTx(ctx, first, probeArgs{N: 1}, probe); err != nil {
				return err
			}
			_, err := q.River.InsertTx(ctx, second, probeArgs{N: 2}, probe) // within River's limiter
			return err
		})
		if err != nil {
			return err
		}
		if n := within(t, ran, "the first job"); n != 1 {
			t.Errorf("job %d ran first, want 1", n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := within(t, ran, "the second job, inserted within River's insert limiter and committed after the fetch"); n != 2 {
		t.Fatalf("job %d ran, want 2", n)
	}
}
