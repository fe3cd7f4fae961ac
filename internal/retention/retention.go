// Package retention keeps glenv's database from growing without bound: a
// River periodic job drops webhook deliveries' bodies after
// --delivery-body-retention (headers and results stay), forgets the
// deliveries whole after --delivery-retention, keeps each
// activity's log within --activity-log-max-size (its tail, marked where it
// was cut), drops logs --activity-log-retention after their activity
// completed, keeps each environment's newest --activity-history
// activities, and forgets deleted environments (tombstones, with their
// activities and logs) after --deleted-environment-retention.
//
// Work goes in small batches, each its own short deferrable transaction, so
// webhook acknowledgements go first and no transaction grows with a
// backlog. It must not call GitLab or the runtime.
package retention

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/riverqueue/river"

	"github.com/glenv/glenv/internal/store"
)

// Settings say what to keep; a zero age keeps that kind forever, a zero
// size keeps logs whole.
type Settings struct {
	DeliveryBodies      time.Duration
	Deliveries          time.Duration // whole deliveries, once processed
	DeletedEnvironments time.Duration
	LogMaxSize          int64
	// Logs is how long logs stay after their activity completed.
	Logs time.Duration
	// ActivityHistory is how many activities each environment keeps
	// (0: all), besides those store.ForgetActivities always keeps.
	ActivityHistory int
	// Batch is the most rows one transaction touches (default 500).
	Batch int
}

// Report is what one pass did.
type Report struct {
	DeliveriesForgotten int
	ActivitiesForgotten int
	BodiesDropped       int
	EnvironmentsPurged  int
	LogsCapped          int
	LogsDropped         int
	LogBytesCut         int64
}

// Cutoffs are the times before which deliveries, bodies, tombstones and
// logs go; a zero time means keep them.
type Cutoffs struct {
	Deliveries, Bodies, Tombstones, Logs time.Time
}

// CutoffsAt decides, at now, what is old enough to go.
func CutoffsAt(now time.Time, s Settings) Cutoffs {
	var c Cutoffs
	if s.Deliveries > 0 {
		c.Deliveries = now.Add(-s.Deliveries)
	}
	if s.DeliveryBodies > 0 {
		c.Bodies = now.Add(-s.DeliveryBodies)
	}
	if s.DeletedEnvironments > 0 {
		c.Tombstones = now.Add(-s.DeletedEnvironments)
	}
	if s.Logs > 0 {
		c.Logs = now.Add(-s.Logs)
	}
	return c
}

// logsSinceMargin widens the window of logs a pass looks at beyond the last
// pass's start: chunks are stamped by the writer's clock, maybe on another
// replica.
const logsSinceMargin = time.Minute

// Retention runs passes over one store.
type Retention struct {
	st  *store.Store
	s   Settings
	log *slog.Logger
	now func() time.Time

	mu sync.Mutex
	// logsSince is where the next pass starts looking for logs to cap: the
	// start of the last complete pass (zero: look at every log, as the
	// first pass after a start does).
	logsSince time.Time
}

// New returns a Retention for st.
func New(st *store.Store, s Settings, log *slog.Logger) *Retention {
	if s.Batch <= 0 {
		s.Batch = 500
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Retention{st: st, s: s, log: log, now: time.Now}
}

// Run makes one pass and says what it did.
func (r *Retention) Run(ctx context.Context) (Report, error) {
	var rep Report
	start := r.now()
	cut := CutoffsAt(start, r.s)
	for _, step := range []struct {
		before time.Time
		what   string
		fn     func(context.Context, *sql.Tx, time.Time, int) (int, error)
		count  *int
	}{
		// Whole deliveries before their bodies: no body is dropped from a
		// delivery about to go.
		{cut.Deliveries, "forget old deliveries", store.ForgetDeliveries, &rep.DeliveriesForgotten},
		{cut.Bodies, "drop delivery bodies", store.DropDeliveryBodies, &rep.BodiesDropped},
		{cut.Tombstones, "forget deleted environments", store.PurgeDeletedEnvironments, &rep.EnvironmentsPurged},
	} {
		if step.before.IsZero() {
			continue
		}
		if err := r.inBatches(ctx, step.before, step.fn, step.count); err != nil {
			return rep, fmt.Errorf("%s: %w", step.what, err)
		}
	}
	if r.s.ActivityHistory > 0 {
		if err := r.forgetActivities(ctx, &rep); err != nil {
			return rep, err
		}
	}
	if !cut.Logs.IsZero() {
		if err := r.dropLogs(ctx, cut.Logs, &rep); err != nil {
			return rep, err
		}
	}
	if r.s.LogMaxSize > 0 {
		if err := r.capLogs(ctx, &rep); err != nil {
			return rep, err
		}
	}
	r.mu.Lock()
	r.logsSince = start.Add(-logsSinceMargin)
	r.mu.Unlock()
	return rep, nil
}

// inBatches runs fn, each batch in a short transaction of its own, until a
// batch finds fewer than Batch rows, adding what each did to count.
func (r *Retention) inBatches(ctx context.Context, before time.Time, fn func(context.Context, *sql.Tx, time.Time, int) (int, error), count *int) error {
	for {
		var n int
		err := r.st.TxDeferrable(ctx, func(tx *sql.Tx) (err error) {
			n, err = fn(ctx, tx, before, r.s.Batch)
			return err
		})
		if err != nil {
			return err
		}
		*count += n
		if n < r.s.Batch {
			return nil
		}
	}
}

// forgetActivities keeps every environment's history to ActivityHistory
// activities, an environment and a batch at a time.
func (r *Retention) forgetActivities(ctx context.Context, rep *Report) error {
	envs, err := store.CrowdedEnvironments(ctx, r.st.Reader(), r.s.ActivityHistory)
	if err != nil {
		return fmt.Errorf("list environments with long histories: %w", err)
	}
	for _, id := range envs {
		// Most long-lived environments stay over the count with activities
		// that must stay: a reader finds that without a write transaction.
		some, err := store.ForgettableActivities(ctx, r.st.Reader(), id, r.s.ActivityHistory, 1)
		if err != nil {
			return fmt.Errorf("look at the history of environment %d: %w", id, err)
		}
		if len(some) == 0 {
			continue
		}
		forget := func(ctx context.Context, tx *sql.Tx, _ time.Time, limit int) (int, error) {
			return store.ForgetActivities(ctx, tx, id, r.s.ActivityHistory, limit)
		}
		if err := r.inBatches(ctx, time.Time{}, forget, &rep.ActivitiesForgotten); err != nil {
			return fmt.Errorf("forget old activities of environment %d: %w", id, err)
		}
	}
	return nil
}

// dropLogs drops the whole logs of activities completed before before.
func (r *Retention) dropLogs(ctx context.Context, before time.Time, rep *Report) error {
	var after int64
	for {
		ids, err := store.ActivitiesWithLogCompletedBefore(ctx, r.st.Reader(), before, after, r.s.Batch)
		if err != nil {
			return fmt.Errorf("list old logs: %w", err)
		}
		for _, id := range ids {
			err := r.st.TxDeferrable(ctx, func(tx *sql.Tx) error {
				_, err := store.CapLog(ctx, tx, id, 0)
				return err
			})
			if err != nil {
				return fmt.Errorf("drop the log of activity %d: %w", id, err)
			}
			rep.LogsDropped++
			after = id
		}
		if len(ids) < r.s.Batch {
			return nil
		}
	}
}

// capLogs cuts the head of every log written since the last pass that is
// over LogMaxSize (writers cap their own logs too; this catches the ones
// whose writer died, and the logs written before the cap was lowered).
func (r *Retention) capLogs(ctx context.Context, rep *Report) error {
	r.mu.Lock()
	since := r.logsSince
	r.mu.Unlock()
	var after int64
	for {
		ids, err := store.ActivitiesWithLogSince(ctx, r.st.Reader(), since, after, r.s.Batch)
		if err != nil {
			return fmt.Errorf("list logs to cap: %w", err)
		}
		for _, id := range ids {
			var n int64
			err := r.st.TxDeferrable(ctx, func(tx *sql.Tx) (err error) {
				n, err = store.CapLog(ctx, tx, id, r.s.LogMaxSize)
				return err
			})
			if err != nil {
				return fmt.Errorf("cap the log of activity %d: %w", id, err)
			}
			if n > 0 {
				rep.LogsCapped++
				rep.LogBytesCut += n
			}
			after = id
		}
		if len(ids) < r.s.Batch {
			return nil
		}
	}
}

// Args is the retention job.
type Args struct{}

// Kind names the job in River.
func (Args) Kind() string { return "retention" }

type worker struct {
	river.WorkerDefaults[Args]
	r *Retention
}

// Timeout lets a pass over a large backlog finish; the next pass goes on
// from where an interrupted one stopped.
func (w *worker) Timeout(*river.Job[Args]) time.Duration { return 15 * time.Minute }

func (w *worker) Work(ctx context.Context, job *river.Job[Args]) error {
	rep, err := w.r.Run(ctx)
	if rep != (Report{}) {
		w.r.log.Info("retention", "deliveries_forgotten", rep.DeliveriesForgotten, "delivery_bodies_dropped", rep.BodiesDropped, "deleted_environments_forgotten", rep.EnvironmentsPurged,
			"activities_forgotten", rep.ActivitiesForgotten,
			"logs_dropped", rep.LogsDropped,
			"logs_capped", rep.LogsCapped, "log_bytes_cut", rep.LogBytesCut, "job", job.ID)
	}
	return err
}

// Register adds the retention worker to a queue: pass it in
// jobs.Deps.Register.
func Register(r *Retention) func(*river.Workers) {
	return func(w *river.Workers) { river.AddWorker(w, &worker{r: r}) }
}

// PeriodicJobs runs retention at start and every interval, once per
// interval across replicas (a new River leader's run at start joins the
// interval's job).
func PeriodicJobs(interval time.Duration) []*river.PeriodicJob {
	return []*river.PeriodicJob{river.NewPeriodicJob(river.PeriodicInterval(interval),
		func() (river.JobArgs, *river.InsertOpts) {
			return Args{}, &river.InsertOpts{UniqueOpts: river.UniqueOpts{ByPeriod: interval}}
		}, &river.PeriodicJobOpts{RunOnStart: true})}
}
