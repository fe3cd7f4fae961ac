package envapi

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/riverqueue/river"

	"github.com/glenv/glenv/internal/jobs"
	"github.com/glenv/glenv/internal/store"
)

// DeleteScheduledArgs is the periodic job that deletes the environments
// DELETE …/environments/review_apps scheduled for deletion once their
// auto_delete_at has passed, as GitLab's Environments::AutoDeleteCronWorker
// deletes Environment.auto_deletable (stopped, auto_delete_at < now).
type DeleteScheduledArgs struct{}

// Kind names the job in River.
func (DeleteScheduledArgs) Kind() string { return "envapi_delete_scheduled" }

// deleteScheduledEvery is how often the job looks; a scheduled deletion is
// due a week after it was asked for, so minutes of delay do not matter.
const deleteScheduledEvery = 10 * time.Minute

// deleteBatch bounds the environments one run deletes; the next run takes
// the rest.
const deleteBatch = 100

// PeriodicJobs are envapi's periodic jobs, for the queue's
// River.PeriodicJobs().AddMany.
func PeriodicJobs() []*river.PeriodicJob {
	return []*river.PeriodicJob{river.NewPeriodicJob(river.PeriodicInterval(deleteScheduledEvery),
		func() (river.JobArgs, *river.InsertOpts) {
			// Once per interval across replicas (issue 16).
			return DeleteScheduledArgs{}, &river.InsertOpts{UniqueOpts: river.UniqueOpts{ByPeriod: deleteScheduledEvery}}
		},
		&river.PeriodicJobOpts{RunOnStart: true})}
}

// Register adds the job's worker to a queue being built (jobs.Deps.Register).
// The worker deletes through the queue, which exists only once built: queue
// points at where the caller keeps it, and is read when a job runs.
func Register(s *store.Store, queue **jobs.Queue, log *slog.Logger) func(*river.Workers) {
	if log == nil {
		log = slog.Default()
	}
	return func(ws *river.Workers) {
		river.AddWorker(ws, &deleteScheduledWorker{store: s, queue: queue, log: log})
	}
}

type deleteScheduledWorker struct {
	river.WorkerDefaults[DeleteScheduledArgs]
	store *store.Store
	queue **jobs.Queue
	log   *slog.Logger
}

func (w *deleteScheduledWorker) Work(ctx context.Context, _ *river.Job[DeleteScheduledArgs]) error {
	n, err := DeleteScheduled(ctx, w.store, *w.queue, time.Now())
	if n > 0 {
		w.log.Info("scheduled environments deleted", "count", n, "via", "api/v4 review_apps")
	}
	return err
}

// DeleteScheduled deletes the environments whose scheduled deletion is due
// at now and are still stopped (one started again since is kept), each in
// its own transaction with its runtime removal job, and forgets the
// attributes of deleted environments. It returns how many it deleted.
func DeleteScheduled(ctx context.Context, s *store.Store, q *jobs.Queue, now time.Time) (int, error) {
	due, err := store.DueForDeletion(ctx, s.Reader(), now, deleteBatch)
	if err != nil {
		return 0, fmt.Errorf("find environments due for deletion: %w", err)
	}
	deleted := 0
	for _, e := range due {
		did := false
		err := s.Tx(ctx, func(tx *sql.Tx) error {
			cur, err := store.GetEnvironmentByID(ctx, tx, e.ID)
			if err != nil || store.GitLabState(cur.State) != "stopped" {
				return err
			}
			did = true
			return q.DeleteNow(ctx, tx, &cur, "review app deleted as scheduled through the GitLab-compatible API")
		})
		switch {
		case err != nil && !errors.Is(err, store.ErrNotFound):
			return deleted, fmt.Errorf("delete scheduled environment %s: %w", e.Name, err)
		case err == nil && did:
			deleted++
		}
	}
	if _, err := store.ForgetDeletedEnvAPIAttrs(ctx, s.DB); err != nil {
		return deleted, fmt.Errorf("forget deleted environments' attributes: %w", err)
	}
	return deleted, nil
}
