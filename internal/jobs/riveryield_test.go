package jobs

import (
	"context"
	"database/sql"
	"slices"
	"testing"
	"time"

	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/rivertype"

	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/store/storetest"
)

// recordingExecutor records which of River's executor methods were called;
// the rest of the interface is left nil (a call would panic).
type recordingExecutor struct {
	riverdriver.Executor
	calls *[]string
}

func (e recordingExecutor) rec(name string) { *e.calls = append(*e.calls, name) }

func (e recordingExecutor) Begin(context.Context) (riverdriver.ExecutorTx, error) {
	e.rec("Begin")
	return nil, nil
}
func (e recordingExecutor) JobGetAvailable(context.Context, *riverdriver.JobGetAvailableParams) (*riverdriver.JobGetAvailableResult, error) {
	e.rec("JobGetAvailable")
	return nil, nil
}
func (e recordingExecutor) JobSetStateIfRunningMany(context.Context, *riverdriver.JobSetStateIfRunningManyParams) ([]*rivertype.JobRow, error) {
	e.rec("JobSetStateIfRunningMany")
	return nil, nil
}
func (e recordingExecutor) JobSchedule(context.Context, *riverdriver.JobScheduleParams) ([]*riverdriver.JobScheduleResult, error) {
	e.rec("JobSchedule")
	return nil, nil
}
func (e recordingExecutor) JobDeleteBefore(context.Context, *riverdriver.JobDeleteBeforeParams) (int, error) {
	e.rec("JobDeleteBefore")
	return 0, nil
}
func (e recordingExecutor) JobRescueMany(context.Context, *riverdriver.JobRescueManyParams) (*struct{}, error) {
	e.rec("JobRescueMany")
	return nil, nil
}
func (e recordingExecutor) LeaderAttemptElect(context.Context, *riverdriver.LeaderElectParams) (*riverdriver.Leader, error) {
	e.rec("LeaderAttemptElect")
	return nil, nil
}
func (e recordingExecutor) LeaderAttemptReelect(context.Context, *riverdriver.LeaderReelectParams) (*riverdriver.Leader, error) {
	e.rec("LeaderAttemptReelect")
	return nil, nil
}
func (e recordingExecutor) QueueCreateOrSetUpdatedAt(context.Context, *riverdriver.QueueCreateOrSetUpdatedAtParams) (*rivertype.Queue, error) {
	e.rec("QueueCreateOrSetUpdatedAt")
	return nil, nil
}
func (e recordingExecutor) QueueDeleteExpired(context.Context, *riverdriver.QueueDeleteExpiredParams) ([]string, error) {
	e.rec("QueueDeleteExpired")
	return nil, nil
}
func (e recordingExecutor) JobGetByID(context.Context, *riverdriver.JobGetByIDParams) (*rivertype.JobRow, error) {
	e.rec("JobGetByID")
	return nil, nil
}
func (e recordingExecutor) JobCancel(context.Context, *riverdriver.JobCancelParams) (*rivertype.JobRow, error) {
	e.rec("JobCancel")
	return nil, nil
}

// River's background writes wait for the acknowledgements in progress
// first; what serves a caller (the API's job reads and cancels) does not.
func TestRiversBackgroundWritesYieldToAcknowledgementsFirst(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		rule   string
		call   func(e riverdriver.Executor)
		method string
		yields bool
	}{
		{"a producer's fetch yields", func(e riverdriver.Executor) { e.JobGetAvailable(ctx, nil) }, "JobGetAvailable", true},
		{"the completer yields", func(e riverdriver.Executor) { e.JobSetStateIfRunningMany(ctx, nil) }, "JobSetStateIfRunningMany", true},
		{"the scheduler yields", func(e riverdriver.Executor) { e.JobSchedule(ctx, nil) }, "JobSchedule", true},
		{"the job cleaner yields", func(e riverdriver.Executor) { e.JobDeleteBefore(ctx, nil) }, "JobDeleteBefore", true},
		{"the rescuer yields", func(e riverdriver.Executor) { e.JobRescueMany(ctx, nil) }, "JobRescueMany", true},
		{"an election yields", func(e riverdriver.Executor) { e.LeaderAttemptElect(ctx, nil) }, "LeaderAttemptElect", true},
		{"a re-election yields", func(e riverdriver.Executor) { e.LeaderAttemptReelect(ctx, nil) }, "LeaderAttemptReelect", true},
		{"a queue's report yields", func(e riverdriver.Executor) { e.QueueCreateOrSetUpdatedAt(ctx, nil) }, "QueueCreateOrSetUpdatedAt", true},
		{"the queue cleaner yields", func(e riverdriver.Executor) { e.QueueDeleteExpired(ctx, nil) }, "QueueDeleteExpired", true},
		{"River's own transaction yields", func(e riverdriver.Executor) { e.Begin(ctx) }, "Begin", true},
		{"a job read for the API does not yield", func(e riverdriver.Executor) { e.JobGetByID(ctx, nil) }, "JobGetByID", false},
		{"a cancel for the API does not yield", func(e riverdriver.Executor) { e.JobCancel(ctx, nil) }, "JobCancel", false},
	}
	for _, tc := range cases {
		t.Run(tc.rule, func(t *testing.T) {
			var calls []string
			e := yieldingExecutor{Executor: recordingExecutor{calls: &calls}, yield: func(context.Context) { calls = append(calls, "yield") }}
			tc.call(e)
			want := []string{tc.method}
			if tc.yields {
				want = []string{"yield", tc.method}
			}
			if !slices.Equal(calls, want) {
				t.Fatalf("calls %v, want %v", calls, want)
			}
		})
	}
}

// busyAcks is a receiver with an acknowledgement in progress until idle
// is closed.
type busyAcks struct{ idle chan struct{} }

func (a busyAcks) AcksIdle() <-chan struct{} { return a.idle }

// On SQLite, River's client works through the yielding executor, and its
// wait ends when the receiver is idle (or its bound, or ctx, does).
func TestRiverOnSQLiteWaitsForTheReceiverToBeIdle(t *testing.T) {
	s := storetest.Open(t, storetest.Backends()[0])
	q, err := NewQueue(s, Deps{Runtime: RecordRuntime{}}, QueueConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := q.River.Driver().GetExecutor().(yieldingExecutor); !ok {
		t.Fatalf("River's executor on SQLite is %T, not the yielding one", q.River.Driver().GetExecutor())
	}
	acks := busyAcks{idle: make(chan struct{})}
	q.Acks = acks
	waited := make(chan struct{})
	go func() {
		q.riverYieldFor(context.Background(), time.Hour)
		close(waited)
	}()
	select {
	case <-waited:
		t.Fatal("the wait ended while an acknowledgement was in progress")
	default:
	}
	close(acks.idle)
	select {
	case <-waited:
	case <-time.After(20 * time.Second):
		t.Fatal("the wait did not end when the receiver became idle")
	}
	ctx, cancel := context.WithCancel(context.Background())
	q.Acks = busyAcks{idle: make(chan struct{})}
	cancel()
	q.riverYieldFor(ctx, time.Hour) // returns: its context ended
}

// The SQLite drain reads its batch ahead through the read pool; its
// write transaction keeps only those still accepted: a delivery finished
// meanwhile (by an operator, a retention sweep) is not processed again.
func TestADeliveryReadAheadButFinishedMeanwhileIsNotProcessedAgain(t *testing.T) {
	s := storetest.Open(t, storetest.Backends()[0])
	w := newWorld(t, s)
	ctx := context.Background()
	batch := []*store.Delivery{w.pushDelivery("a"), w.pushDelivery("b"), w.pushDelivery("c")}
	if _, err := store.InsertDeliveries(ctx, s.DB, batch); err != nil {
		t.Fatal(err)
	}
	ahead, err := store.NextAcceptedDeliveries(ctx, s.Reader(), s.Dialect, perTx(s.Dialect))
	if err != nil || len(ahead) != 3 {
		t.Fatalf("read ahead %d deliveries (%v), want 3", len(ahead), err)
	}
	if err := store.FinishDelivery(ctx, s.DB, batch[1].ID, store.DeliveryProcessed, "by hand"); err != nil {
		t.Fatal(err)
	}
	q, err := NewQueue(s, Deps{Runtime: w.rt}, QueueConfig{})
	if err != nil {
		t.Fatal(err)
	}
	dw := &deliveryWorker{q: q, deps: q.deps}
	var got []int64
	err = s.Tx(ctx, func(tx *sql.Tx) error {
		ds, err := dw.nextBatch(ctx, tx, true, ahead, perTx(s.Dialect))
		for _, d := range ds {
			got = append(got, d.ID)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{batch[0].ID, batch[2].ID}; !slices.Equal(got, want) {
		t.Fatalf("batch %v, want %v (the delivery finished meanwhile left out)", got, want)
	}
}
