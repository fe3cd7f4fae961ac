package jobs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/glenv/glenv/internal/store"
)

// The delivery drain: ONE River job processes every accepted delivery, in
// id order, a few per transaction, until none is left, then completes
// itself. The receiver's group commit inserts it only when none is waiting
// or running (ensureDrain), so River's per-job cost (insert, fetch,
// completion, cleanup: each a turn on SQLite's one writer) is paid per
// drain, not per acknowledged batch.
//
// River's uniqueness cannot leave `running` out of the states a unique job
// is unique in (insert_opts.go, requiredV3states), so while the drain runs,
// an ack finds it and inserts nothing. Nothing is stranded because the
// drain's last step — seeing no accepted delivery and completing its job —
// is ONE write transaction that serialises with every ack's transaction:
//
//   - SQLite: every write transaction is BEGIN IMMEDIATE on the one writer
//     connection, so an ack commits wholly before or wholly after the
//     drain's last transaction.
//   - PostgreSQL: an ack that queues deliveries takes drainLock shared
//     before it looks for the job, and the drain takes it exclusive before
//     its last look for accepted deliveries (transaction-level advisory
//     locks, held until commit). If the ack has it first, the drain waits
//     for the ack's commit, and its look — a later statement with a fresh
//     snapshot (READ COMMITTED) — sees the ack's deliveries, so it does not
//     complete. If the drain has it first, the ack waits for the drain's
//     commit, and its look then sees the job completed and inserts a new one.
//
// Either way a committed accepted delivery always has a job that will read
// it after its commit. Acks never wait for each other (shared), and they
// wait for the drain only during its last transaction.
//
// Only one drain runs at a time, across replicas too: the unique job.
// Deliveries are processed in id order; ids are handed out at insert and
// the group commits of several flushers or replicas can commit out of id
// order, so per integration the order is that of commit, which the
// lifecycle tolerates (an environment never moves back to an older head or
// reopens after a later close), as GitLab's own retries and duplicates
// require anyway.

// drainLock is the PostgreSQL advisory lock key of the drain's last step
// ("drain" in ASCII).
const drainLock int64 = 0x647261696e

// The lock statements carry no parameter: pgx sends a statement without
// arguments in one round trip (simple protocol), not two.
var (
	drainLockShared    = fmt.Sprintf(`SELECT pg_advisory_xact_lock_shared(%d)`, drainLock)
	drainLockExclusive = fmt.Sprintf(`SELECT pg_advisory_xact_lock(%d)`, drainLock)
)

// drainStates are the states in which a drain job will still read every
// accepted delivery committed before an ack's commit: waiting to run
// (available, pending, scheduled, retryable) or running (its last step
// serialises with the ack, see above).
var drainStates = []rivertype.JobState{rivertype.JobStateAvailable, rivertype.JobStatePending,
	rivertype.JobStateRunning, rivertype.JobStateScheduled, rivertype.JobStateRetryable}

// drainOpts make the drain unique by kind: an old glenv's jobs carried
// delivery ids and no unique key, so they never count as the drain.
func drainOpts() *river.InsertOpts {
	return &river.InsertOpts{Queue: QueueDeliveries, UniqueOpts: river.UniqueOpts{ByState: drainStates}}
}

// drainWaiting finds a drain job in drainStates; the literals keep the
// query the same on both databases (PostgreSQL's state is an enum).
const drainWaiting = drainWaitingHead + `kind` + drainWaitingTail

// The parts of drainWaiting around the kind column, which SQLite's
// variant names differently (drainWaitingSQLite).
const (
	drainWaitingHead = `SELECT 1 FROM river_job WHERE state IN ('available', 'pending', 'running', 'scheduled', 'retryable')
	AND queue = 'deliveries' AND `
	drainWaitingTail = ` = 'process_delivery' AND unique_key IS NOT NULL LIMIT 1`
)

// drainWaitingSQLite is drainWaiting for SQLite, which without statistics
// chose River's index on kind and so walked every completed drain job:
// River keeps them a day (CompletedJobRetentionPeriod), one for each time
// the drain caught up and ended, so a quiet hour of spaced deliveries
// leaves hundreds and a day thousands, and the query ran in every ack's
// write transaction (1.7 ms with 10,000 of them, 6.3 ms with 20,000,
// against 21 µs). The unary + keeps kind off the index
// (https://sqlite.org/optoverview.html, "Disqualifying WHERE clause terms
// using unary-+"): the plan takes River's fetching index, (state, queue,
// …), which holds only the jobs still to run or running ahead of the
// completed ones (TestTheAckLooksForTheDrainAmongLiveJobsOnly).
// PostgreSQL plans from its statistics and took that index once it had
// them.
const drainWaitingSQLite = drainWaitingHead + `+kind` + drainWaitingTail

// drainWaitingOn is drainWaiting as d runs it best.
func drainWaitingOn(d store.Dialect) string {
	if d == store.SQLite {
		return drainWaitingSQLite
	}
	return drainWaiting
}

// ensureDrain makes sure, inside the ack's transaction tx, that a drain job
// will process the deliveries tx commits (see above), and wakes this
// process's delivery worker after the commit, also when a job was already
// there: it may be waiting for its fetch.
func (q *Environments) ensureDrain(ctx context.Context, tx *sql.Tx) error {
	if q.store.Dialect == store.Postgres {
		if _, err := tx.ExecContext(ctx, drainLockShared); err != nil {
			return fmt.Errorf("take the delivery drain's lock: %w", err)
		}
	}
	var one int
	err := tx.QueryRowContext(ctx, drainWaitingOn(q.store.Dialect)).Scan(&one)
	switch {
	case err == nil:
		// A drain will read these deliveries; no insert (an insert would
		// rewrite the job's row, and on PostgreSQL make concurrent acks
		// wait for each other on its lock).
	case errors.Is(err, sql.ErrNoRows):
		if _, err := q.River.InsertTx(ctx, tx, ProcessDeliveryArgs{}, drainOpts()); err != nil {
			return fmt.Errorf("enqueue the delivery drain: %w", err)
		}
	default:
		return fmt.Errorf("look for the delivery drain: %w", err)
	}
	q.store.AfterCommit(tx, func() {
		q.drainLikely.Store(true)
		q.wakeDrain()
	})
	return nil
}

// wakeDrain runs after an ack committed deliveries to process: a running
// drain waits for this (drainLinger); River fetches a waiting one.
func (q *Environments) wakeDrain() {
	select {
	case q.drainWake <- struct{}{}:
	default:
	}
	if q.works(QueueDeliveries) {
		q.local.inserted(QueueDeliveries)
	}
}

// drainBudget is how long one run of the drain processes before it hands
// over to a fresh run of the same job (JobSnooze(0)): under a steady
// stream it would never find the queue empty, and must end well before
// its job's timeout.
func (q *Environments) drainBudget() time.Duration {
	return min(time.Minute, q.jobTimeout/2)
}

// drainRetry is how long the drain waits after a failure that no one
// delivery explains (the database is unreachable, say) before it runs again.
const drainRetry = time.Second

// drain processes accepted deliveries, oldest first, perTx per
// transaction, until none is left; the transaction that finds none left
// also completes the job (finishIfDrained). It returns nil only once its
// job is completed, and otherwise a snooze, never an error: River would
// back its retries off for hours and discard the job after its attempts,
// while every acknowledged delivery waits on it.
func (w *deliveryWorker) drain(ctx context.Context, job *river.Job[ProcessDeliveryArgs]) error {
	budget := time.Now().Add(w.q.drainBudget())
	// idle: the drain found no delivery and heard of none for drainLinger;
	// only then does it take its last step.
	idle := false
	// last is when the last batch ended: the yield's floor counts from it
	// (from the start for the first: a drain started by a burst's first
	// acks yields to them too).
	last := time.Now()
	for {
		var ids []int64
		var done, caughtUp bool
		// On SQLite the batch is read ahead, bodies and all, through the
		// read pool or from what this process acknowledged (readAhead,
		// fresh.go), before the yield, and parsed after it (parseAll):
		// the yield then ends closest to the writer's turn, and the turn
		// holds the one writer only to check the batch is still accepted
		// and apply it.
		var ahead []store.Delivery
		var err error
		readAhead := w.q.store.Dialect == store.SQLite && !w.q.drainReadInTx
		if readAhead {
			ahead, err = w.readAhead(ctx, perTx(w.q.store.Dialect))
		}
		// Acknowledgements first (yield.go): the batch waits for those in
		// progress, within the floor, and is a small one if they still are.
		n := batchAfterYield(perTx(w.q.store.Dialect), w.q.yieldToAcks(ctx, last))
		// full: the batch is as large as allowed, so more are likely waiting.
		full := len(ahead) >= n
		ahead = ahead[:min(len(ahead), n)]
		var parsed map[int64]parsedEvent
		if err == nil && len(ahead) > 0 {
			parsed = parseAll(ahead)
		}
		switch {
		case err != nil:
		case readAhead && len(ahead) == 0 && !idle:
			// Nothing to process, and not yet time for the last step: no
			// turn on the writer at all.
			caughtUp = true
		default:
			err = w.q.store.TxDeferrable(ctx, func(tx *sql.Tx) error {
				ds, err := w.nextBatch(ctx, tx, readAhead, ahead, n)
				if err != nil {
					return err
				}
				ids = make([]int64, len(ds))
				byID := make(map[int64]store.Delivery, len(ds))
				for i, d := range ds {
					ids[i], byID[d.ID] = d.ID, d
				}
				if _, err := w.processIn(ctx, tx, ids, byID, parsed, false); err != nil {
					return err
				}
				if full || !readAhead && len(ds) == n {
					return nil // more are likely waiting: look again in a new transaction
				}
				if caughtUp = true; !idle {
					return nil
				}
				done, err = w.finishIfDrained(ctx, tx, job)
				return err
			})
		}
		if err != nil && len(ids) > 0 && ctx.Err() == nil {
			// One delivery of the batch failed (or the last step did): redo
			// the batch with each delivery isolated, which marks one that
			// can never apply failed, and counts the attempts of one that
			// fails otherwise (processIsolated).
			var retry time.Duration
			if retry, err = w.processBatch(ctx, ids, true); err == nil && retry > 0 {
				// Wait here, not in a snooze: the drain goes on with this
				// delivery first anyway, and a snoozed job would also wait
				// for River's scheduler (every few seconds).
				if !sleep(ctx, retry) {
					return river.JobSnooze(0)
				}
			}
		}
		last = time.Now()
		switch {
		case err != nil && ctx.Err() != nil:
			return river.JobSnooze(0) // shutting down: run again at the next start
		case err != nil:
			w.deps.Logger.Error("delivery drain failed; it runs again shortly", "job", job.ID, "err", err)
			return river.JobSnooze(drainRetry)
		case done:
			w.q.drainLikely.Store(false)
			return nil
		case time.Now().After(budget):
			return river.JobSnooze(0)
		}
		idle = false
		if caughtUp {
			idle = !w.q.awaitDeliveries(ctx, drainLinger)
			if !idle {
				sleep(ctx, drainGather) // a context ended: the next transaction fails on it and snoozes
			}
		}
	}
}

// nextBatch is the drain's next batch of at most n accepted deliveries,
// oldest first, in its transaction tx: those read ahead that are still
// accepted (on SQLite the drain is the only worker of its queue, so they
// all are but for one a retention sweep or an operator changed), or else
// read in tx. The drain's last step still looks for accepted deliveries
// in its write transaction (finishIfDrained), so reading ahead leaves the
// argument at the top of this file as it is: a look ahead that missed an
// ack's deliveries only makes that step find them.
func (w *deliveryWorker) nextBatch(ctx context.Context, tx *sql.Tx, readAhead bool, ahead []store.Delivery, n int) ([]store.Delivery, error) {
	if !readAhead {
		if w.q.store.Dialect == store.Postgres && !w.q.drainReadInTx {
			return w.lockNext(ctx, tx, n)
		}
		return store.NextAcceptedDeliveries(ctx, tx, w.q.store.Dialect, n)
	}
	ids := make([]int64, len(ahead))
	for i, d := range ahead {
		ids[i] = d.ID
	}
	still, err := store.AcceptedAmong(ctx, tx, ids)
	if err != nil {
		return nil, err
	}
	ds := ahead[:0:0]
	for _, d := range ahead {
		if still[d.ID] {
			ds = append(ds, d)
		}
	}
	return ds, nil
}

// drainGather is how long a drain that caught up and was woken by an ack
// lets more deliveries arrive before its next batch. At a steady few
// hundred a second each woken batch would otherwise hold one delivery: a
// write transaction (and its WAL pages: the deliveries' index pages, the
// environment, the activity) per delivery, each a turn on SQLite's one
// writer that the acknowledgements wait behind.
const drainGather = 5 * time.Millisecond

// sleep waits d, and reports false when ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// drainLinger is how long a drain that has caught up waits for more
// deliveries before it ends. At a steady few hundred deliveries a second
// it never ends, so each delivery costs its ack and its processing
// transaction, not also a job's insert, fetch and completion (each a turn
// on SQLite's one writer). Acks of this process wake it at once
// (awaitDeliveries); another replica's are processed when it ends, within
// drainLinger.
const drainLinger = 20 * time.Millisecond

// awaitDeliveries waits up to d for an ack of this process to commit
// deliveries (ensureDrain wakes it), and reports whether one did.
func (q *Environments) awaitDeliveries(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-q.drainWake:
		return true
	case <-t.C:
		return false
	case <-ctx.Done():
		return true // the next transaction fails on ctx and snoozes
	}
}

// finishIfDrained is the drain's last step, in the transaction tx that
// processed its last batch: when no accepted delivery is left it completes
// job in tx and reports true. On PostgreSQL it first takes drainLock
// exclusive, which waits for the acks in flight (see the top of this file).
func (w *deliveryWorker) finishIfDrained(ctx context.Context, tx *sql.Tx, job *river.Job[ProcessDeliveryArgs]) (bool, error) {
	if w.q.store.Dialect == store.Postgres {
		if _, err := tx.ExecContext(ctx, drainLockExclusive); err != nil {
			return false, fmt.Errorf("take the delivery drain's lock: %w", err)
		}
	}
	left, err := store.AnyAcceptedDelivery(ctx, tx)
	if err != nil || left {
		return false, err
	}
	if hook := w.q.drainEnding; hook != nil {
		hook()
	}
	if err := completeJobTx(ctx, w.q.store, tx, job); err != nil {
		return false, fmt.Errorf("complete the delivery drain: %w", err)
	}
	return true, nil
}

// maxDeliveryAttempts bounds how often processing one delivery may fail
// (for a reason other than ErrConflict, which fails it at once) before it
// is marked failed: the drain processes in order and waits for it.
const maxDeliveryAttempts = 5

// deliveryRetry is how long the drain waits before it tries a delivery
// again after its n-th failed attempt: 1, 2, 4, 8 s by default.
func (q *Environments) deliveryRetry(n int) time.Duration {
	base := q.deliveryRetryBase
	if base <= 0 {
		base = time.Second
	}
	return base << min(max(n-1, 0), 10)
}

// resumeDrain makes a drain job left running by a process that died
// available again, at start on SQLite: only one glenv serves a SQLite
// database (internal/replica's lock), so such a job is nobody's. Acks find
// it and queue no job of their own, so without this every delivery would
// wait for River's rescue (--job-rescue-after, 6 minutes by default). On
// PostgreSQL another replica may be running it: River's rescue decides.
func (q *Environments) resumeDrain(ctx context.Context) error {
	if q.store.Dialect != store.SQLite {
		return nil
	}
	_, err := q.store.DB.ExecContext(ctx, `UPDATE river_job SET state = 'available'
		WHERE state = 'running' AND queue = 'deliveries' AND kind = 'process_delivery' AND unique_key IS NOT NULL`)
	if err != nil {
		return fmt.Errorf("resume the delivery drain a stopped glenv left running: %w", err)
	}
	return nil
}

// repairDrain queues a drain when accepted deliveries have none: a drain
// job cancelled by hand, or discarded, leaves them behind (the drain
// itself never fails for good, see drain). It follows the acks' protocol
// (ensureDrain), so it races with nothing. It reports whether it queued.
func (q *Environments) repairDrain(ctx context.Context) (bool, error) {
	var queued bool
	err := q.store.TxDeferrable(ctx, func(tx *sql.Tx) error {
		left, err := store.AnyAcceptedDelivery(ctx, tx)
		if err != nil || !left {
			return err
		}
		// Look first: the usual case (a drain is there) then takes no lock.
		var one int
		if err := tx.QueryRowContext(ctx, drainWaitingOn(q.store.Dialect)).Scan(&one); err == nil {
			return nil
		}
		queued = true
		return q.ensureDrain(ctx, tx)
	})
	return queued, err
}
