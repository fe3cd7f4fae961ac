package jobs

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/riverqueue/river"

	"github.com/glenv/glenv/internal/store"
)

// GitLab answers a stop at once with the environment "stopped" when it has
// no stop jobs, and lets a stopped environment be deleted straight away. The
// GitLab-compatible API (internal/envapi) does the same: the rows change
// inside the caller's transaction, and a DeleteArgs job with KeepEnvironment
// removes the runtime afterwards, so the process really stops.

// StopNow makes env inactive (GitLab "stopped") inside tx, records a stop
// activity and enqueues the removal of its runtime.
func (q *Queue) StopNow(ctx context.Context, tx *sql.Tx, env *store.Environment, reason string) error {
	env.State, env.DeployedSHA = store.StateInactive, ""
	if err := store.SaveEnvironment(ctx, tx, env); err != nil {
		return err
	}
	return q.removeRuntime(ctx, tx, *env, store.ActivityStop, reason)
}

// DeleteNow leaves a tombstone of env inside tx (the name can be used again),
// records a delete activity and enqueues the removal of its runtime.
func (q *Queue) DeleteNow(ctx context.Context, tx *sql.Tx, env *store.Environment, reason string) error {
	env.State, env.DeletedAt = store.StateDeleted, store.Now()
	if err := store.SaveEnvironment(ctx, tx, env); err != nil {
		return err
	}
	return q.removeRuntime(ctx, tx, *env, store.ActivityDelete, reason)
}

func (q *Queue) removeRuntime(ctx context.Context, tx *sql.Tx, env store.Environment, kind, reason string) error {
	act := store.Activity{IntegrationName: env.IntegrationName, EnvironmentID: env.ID, EnvironmentName: env.Name,
		Kind: kind, State: store.ActivityPending, Description: reason}
	if err := store.InsertActivity(ctx, tx, &act); err != nil {
		return err
	}
	if err := q.insertTx(ctx, tx, &DeleteArgs{EnvironmentID: env.ID, ActivityID: act.ID, KeepEnvironment: true}, nil); err != nil {
		return err
	}
	return q.notify(ctx, tx, env.ID)
}

// NotifyChanged queues GitLab feedback for an environment created or edited
// inside tx by a caller outside this package.
func (q *Queue) NotifyChanged(ctx context.Context, tx *sql.Tx, envID int64) error {
	return q.notify(ctx, tx, envID)
}

// finishStopped carries out a job enqueued by StopNow or DeleteNow: it finds
// the environment already inactive or deleted, removes its runtime and
// completes the activity. It reports false, leaving the job to the
// deactivate path of deleteWorker.Work, when the environment is in any other
// state (deactivating through the native API, or activated again since, in
// which case removing the runtime would stop the new deploy).
func (w *deleteWorker) finishStopped(ctx context.Context, job *river.Job[DeleteArgs]) (bool, error) {
	if !job.Args.KeepEnvironment {
		return false, nil
	}
	s := w.q.store
	env, err := store.GetEnvironmentOrTombstone(ctx, s.Reader(), job.Args.EnvironmentID)
	if err != nil || (env.State != store.StateInactive && env.State != store.StateDeleted) {
		return false, nil
	}
	logf := func(line string) { _ = store.AppendActivityLog(ctx, s.DB, job.Args.ActivityID, line) }
	if err := w.deps.Runtime.Remove(ctx, env, logf); err != nil {
		return true, fmt.Errorf("remove environment %s: %w", env.Name, err)
	}
	result := "stopped"
	if env.State == store.StateDeleted {
		result = "deleted"
	}
	return true, store.SetActivityState(ctx, s.DB, job.Args.ActivityID, store.ActivityComplete, result)
}
