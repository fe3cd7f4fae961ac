package feedback

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivertype"

	"github.com/glenv/glenv/internal/gitlab"
	"github.com/glenv/glenv/internal/store"
)

// Notify asks, inside tx, for GitLab to be brought up to date with an
// environment: it bumps the environment's notification counter, then queues
// a SyncArgs job unless one is already waiting or running. internal/jobs
// calls it whenever a deploy or delete changes state.
func Notify(ctx context.Context, tx *sql.Tx, client *river.Client[*sql.Tx], envID int64) error {
	if err := store.RequestFeedback(ctx, tx, envID); err != nil {
		return fmt.Errorf("request GitLab feedback for environment %d: %w", envID, err)
	}
	if _, err := client.InsertTx(ctx, tx, SyncArgs{EnvironmentID: envID}, SyncInsertOpts()); err != nil {
		return fmt.Errorf("queue GitLab feedback for environment %d: %w", envID, err)
	}
	return nil
}

// completeTx marks the job completed inside tx.
func completeTx(ctx context.Context, s *store.Store, tx *sql.Tx, job *river.Job[SyncArgs]) error {
	var err error
	if s.Dialect == store.SQLite {
		_, err = river.JobCompleteTx[*riversqlite.Driver](ctx, tx, job)
	} else {
		_, err = river.JobCompleteTx[*riverdatabasesql.Driver](ctx, tx, job)
	}
	return err
}

// SyncInsertOpts are the options every SyncArgs job must be inserted with:
// one job per environment while it waits or runs, so piled-up updates are
// sent once, as the newest state. (River requires running among the states.)
func SyncInsertOpts() *river.InsertOpts {
	return &river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: []rivertype.JobState{
		rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning,
		rivertype.JobStateScheduled, rivertype.JobStateRetryable}}}
}

type syncWorker struct {
	river.WorkerDefaults[SyncArgs]
	s *Syncer
}

func (w *syncWorker) Timeout(*river.Job[SyncArgs]) time.Duration { return w.s.t.SyncTimeout }

// NextRetry backs off from a failed sync (a 5xx, a time-out) exponentially.
func (w *syncWorker) NextRetry(job *river.Job[SyncArgs]) time.Time {
	return time.Now().Add(w.s.t.backoff(job.Attempt))
}

// Work syncs one environment. A fresh job first waits until the
// environment has been quiet for the debounce time, so updates arriving
// together fold into this job and GitLab hears only the newest state.
func (w *syncWorker) Work(ctx context.Context, job *river.Job[SyncArgs]) error {
	s, envID := w.s, job.Args.EnvironmentID
	if wait := s.debounce(ctx, envID, job.CreatedAt); wait > 0 {
		return river.JobSnooze(wait)
	}
	complete := func(ctx context.Context, tx *sql.Tx) error { return completeTx(ctx, s.deps.Store, tx, job) }
	changed, err := s.sync(ctx, envID, fmt.Sprintf("job-%d", job.ID), complete)
	var wait *waitError
	var perm *permanentError
	switch {
	case errors.As(err, &wait):
		d := max(time.Until(wait.Until), 10*time.Millisecond)
		if wait.Busy {
			d = min(d, 500*time.Millisecond)
		}
		// Jitter spreads the syncs a rate limit held back.
		return river.JobSnooze(d + rand.N(d/10+1))
	case errors.As(err, &perm), errors.Is(err, gitlab.ErrUnauthorized):
		s.log.Error("GitLab feedback gave up; the sweep tries again later", "environment_id", envID, "job", job.ID, "error", err)
		return river.JobCancel(err)
	case err != nil:
		s.log.Warn("GitLab feedback failed; retrying with backoff", "environment_id", envID, "job", job.ID,
			"attempt", job.Attempt, "error", err)
		return err
	case changed:
		return river.JobSnooze(0) // the environment moved on while we synced
	}
	return nil
}

// debounce returns how long a fresh job should wait for the environment to
// be quiet, never holding it back past MaxDebounce after it was queued.
func (s *Syncer) debounce(ctx context.Context, envID int64, queued time.Time) time.Duration {
	if s.t.Debounce <= 0 || time.Since(queued) >= s.t.MaxDebounce {
		return 0
	}
	v, err := store.FeedbackVersion(ctx, s.deps.Store.Reader(), envID)
	if err != nil {
		return 0
	}
	quietAt := time.UnixMicro(v).Add(s.t.Debounce)
	return min(time.Until(quietAt), time.Until(queued.Add(s.t.MaxDebounce)))
}

type sweepWorker struct {
	river.WorkerDefaults[SweepArgs]
	s *Syncer
}

// Work queues a sync for every environment GitLab does not show as it is.
func (w *sweepWorker) Work(ctx context.Context, job *river.Job[SweepArgs]) error {
	ids, err := store.FeedbackBacklog(ctx, w.s.deps.Store.Reader(), time.Now().Add(-w.s.t.MaxAge))
	if err != nil || len(ids) == 0 {
		return err
	}
	client, err := river.ClientFromContextSafely[*sql.Tx](ctx)
	if err != nil {
		return err
	}
	params := make([]river.InsertManyParams, 0, len(ids))
	for _, id := range ids {
		params = append(params, river.InsertManyParams{Args: SyncArgs{EnvironmentID: id}, InsertOpts: SyncInsertOpts()})
	}
	if _, err := client.InsertMany(ctx, params); err != nil {
		return fmt.Errorf("queue %d feedback syncs: %w", len(ids), err)
	}
	w.s.log.Debug("feedback sweep", "environments", len(ids))
	return nil
}
