package jobs

import (
	"context"
	"time"

	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/rivertype"
)

// River's own background writes on SQLite — the producers' fetches, the
// completer's state changes, the scheduler, the cleaners, the leader's
// election, the queues' reports — are turns on the one writer that
// acknowledgements queue behind, and they go through River's driver, not
// through the store's gate or the drain's yield. yieldingExecutor has
// each of them wait, like the drain's batches, while acknowledgements are
// in progress (yield.go's Acks), at most riverYield: River's work for the
// deploys and feedback that pushes cause then runs between acks, not in
// front of them. River's own transactions wait too (Begin: its inserts
// outside glenv's transactions, a reconcile's or a rollout deadline's,
// background work both). Queries that serve a caller (the API's job reads
// and cancels) and every statement inside a transaction (glenv's own,
// where River's job inserts run) do not wait.
type yieldingExecutor struct {
	riverdriver.Executor
	yield func(ctx context.Context)
}

// riverYield bounds one wait of River's background work for acks: a
// fetch, a completion or a maintenance pass waits at most this long, so
// under a burst jobs still start and complete (each producer fetches at
// most every FetchCooldown anyway, the completer flushes every 50 ms).
const riverYield = 20 * time.Millisecond

// riverYieldFor waits, before one of River's background writes, for the
// acknowledgements in progress to be answered, bound at most.
func (q *Environments) riverYieldFor(ctx context.Context, bound time.Duration) {
	if q.Acks == nil {
		return
	}
	idle := q.Acks.AcksIdle()
	select {
	case <-idle:
		return
	default:
	}
	awaitIdle(ctx, idle, bound)
}

func (e yieldingExecutor) Begin(ctx context.Context) (riverdriver.ExecutorTx, error) {
	e.yield(ctx)
	return e.Executor.Begin(ctx)
}

func (e yieldingExecutor) JobGetAvailable(ctx context.Context, p *riverdriver.JobGetAvailableParams) (*riverdriver.JobGetAvailableResult, error) {
	e.yield(ctx)
	return e.Executor.JobGetAvailable(ctx, p)
}

func (e yieldingExecutor) JobSetStateIfRunningMany(ctx context.Context, p *riverdriver.JobSetStateIfRunningManyParams) ([]*rivertype.JobRow, error) {
	e.yield(ctx)
	return e.Executor.JobSetStateIfRunningMany(ctx, p)
}

func (e yieldingExecutor) JobSchedule(ctx context.Context, p *riverdriver.JobScheduleParams) ([]*riverdriver.JobScheduleResult, error) {
	e.yield(ctx)
	return e.Executor.JobSchedule(ctx, p)
}

func (e yieldingExecutor) JobDeleteBefore(ctx context.Context, p *riverdriver.JobDeleteBeforeParams) (int, error) {
	e.yield(ctx)
	return e.Executor.JobDeleteBefore(ctx, p)
}

func (e yieldingExecutor) JobRescueMany(ctx context.Context, p *riverdriver.JobRescueManyParams) (*struct{}, error) {
	e.yield(ctx)
	return e.Executor.JobRescueMany(ctx, p)
}

func (e yieldingExecutor) LeaderAttemptElect(ctx context.Context, p *riverdriver.LeaderElectParams) (*riverdriver.Leader, error) {
	e.yield(ctx)
	return e.Executor.LeaderAttemptElect(ctx, p)
}

func (e yieldingExecutor) LeaderAttemptReelect(ctx context.Context, p *riverdriver.LeaderReelectParams) (*riverdriver.Leader, error) {
	e.yield(ctx)
	return e.Executor.LeaderAttemptReelect(ctx, p)
}

func (e yieldingExecutor) QueueCreateOrSetUpdatedAt(ctx context.Context, p *riverdriver.QueueCreateOrSetUpdatedAtParams) (*rivertype.Queue, error) {
	e.yield(ctx)
	return e.Executor.QueueCreateOrSetUpdatedAt(ctx, p)
}

func (e yieldingExecutor) QueueDeleteExpired(ctx context.Context, p *riverdriver.QueueDeleteExpiredParams) ([]string, error) {
	e.yield(ctx)
	return e.Executor.QueueDeleteExpired(ctx, p)
}
