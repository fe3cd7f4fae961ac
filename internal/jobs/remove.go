package jobs

import (
	"context"
	"errors"
	"fmt"

	"github.com/riverqueue/river"

	"github.com/glenv/glenv/internal/lifecycle"
	"github.com/glenv/glenv/internal/store"
)

type deleteWorker struct {
	river.WorkerDefaults[DeleteArgs]
	q    *Environments
	deps Deps
}

// Work removes an environment's runtime (app, port, directory, databases)
// when the environment still waits for this removal, then records the
// result through the state machine: a stopping environment becomes inactive
// (deactivate) or a tombstone (delete); one GitLab's API already stopped or
// deleted stays so. A removal overtaken by a newer request (say, activated
// again) removes nothing: it would stop the new deploy.
func (w *deleteWorker) Work(ctx context.Context, job *river.Job[DeleteArgs]) error {
	s, a := w.q.store, job.Args
	env, err := store.GetEnvironmentOrTombstone(ctx, s.Reader(), a.EnvironmentID)
	if errors.Is(err, store.ErrNotFound) {
		return w.q.finishActivity(ctx, a.ActivityID, a.EnvironmentID, store.ActivityComplete, "already deleted")
	}
	if err != nil {
		return err
	}
	if env.PendingActivityID == a.ActivityID {
		if err := store.SetActivityState(ctx, s.DB, a.ActivityID, store.ActivityRunning, ""); err != nil {
			return err
		}
		logf, closeLog := w.q.activityLog(ctx, a.ActivityID)
		err := w.deps.Runtime.Remove(ctx, env, logf)
		closeLog()
		if err != nil {
			return fmt.Errorf("remove environment %s: %w", env.Name, err)
		}
	}
	bctx, cancel := bookkeeping(ctx)
	defer cancel()
	_, _, err = w.q.Trigger(bctx, a.EnvironmentID, lifecycle.Input{Trigger: lifecycle.TriggerRemoved, Activity: a.ActivityID, Keep: a.KeepEnvironment}, record{})
	return err
}

// AppPauser is a runtime that can stop an environment's app and keep its
// build and data, so that waking it is a start, not a deploy.
type AppPauser interface {
	Pause(ctx context.Context, envID int64) error
}

type pauseWorker struct {
	river.WorkerDefaults[PauseArgs]
	q    *Environments
	deps Deps
}

// Work stops a paused environment's app when the environment is still
// paused by this request; runtimes that cannot pause leave the app running
// (the environment still shows paused until it is woken).
func (w *pauseWorker) Work(ctx context.Context, job *river.Job[PauseArgs]) error {
	s, a := w.q.store, job.Args
	env, err := store.GetEnvironmentByID(ctx, s.Reader(), a.EnvironmentID)
	if errors.Is(err, store.ErrNotFound) || err == nil && (env.PendingActivityID != a.ActivityID || env.State != store.StatePaused) {
		return w.q.finishActivity(ctx, a.ActivityID, a.EnvironmentID, store.ActivityCancelled, "the environment changed before it was paused")
	}
	if err != nil {
		return err
	}
	result := "paused"
	if p, ok := w.deps.Runtime.(AppPauser); ok {
		if err := p.Pause(ctx, env.ID); err != nil {
			return fmt.Errorf("pause environment %s: %w", env.Name, err)
		}
	} else {
		result = "paused (this runtime keeps the app running)"
	}
	bctx, cancel := bookkeeping(ctx)
	defer cancel()
	return w.q.clearPending(bctx, env.ID, a.ActivityID, store.ActivityComplete, result)
}
