package jobs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/riverqueue/river"

	"github.com/glenv/glenv/internal/gitsha"
	"github.com/glenv/glenv/internal/lifecycle"
	"github.com/glenv/glenv/internal/runtime"
	"github.com/glenv/glenv/internal/store"
)

// RolloutDeadlineArgs is the deadline of a deploy whose runtime rolls it
// out on its own (runtime.ErrRollingOut: Kubernetes). The deploy job
// returns once the objects are applied, so no worker waits for the
// cluster; this job, scheduled at the deploy's deadline, fails the deploy
// if it is still rolling out then. It is a River job, so the deadline
// outlives a glenv restart, and while it waits the repair sweep and the
// restart leave the environment to the rollout.
type RolloutDeadlineArgs struct {
	EnvironmentID int64  `json:"environment_id"`
	ActivityID    int64  `json:"activity_id"`
	SHA           string `json:"sha"`
	// Timeout is the deploy's deadline, for the failure's message.
	Timeout time.Duration `json:"timeout"`
}

func (RolloutDeadlineArgs) Kind() string { return "rollout_deadline" }

type rolloutDeadlineWorker struct {
	river.WorkerDefaults[RolloutDeadlineArgs]
	q    *Environments
	deps Deps
}

// Work fails the deploy unless it ended: a last look at the rollout (the
// watch may have missed its end while glenv was down) decides.
func (w *rolloutDeadlineWorker) Work(ctx context.Context, job *river.Job[RolloutDeadlineArgs]) error {
	a := job.Args
	env, err := store.GetEnvironmentByID(ctx, w.q.store.Reader(), a.EnvironmentID)
	if errors.Is(err, store.ErrNotFound) || err == nil && !rollingOut(env, a.ActivityID) {
		return nil // ended, superseded or deleted: nothing is late
	}
	if err != nil {
		return err
	}
	ro, ok := w.deps.Runtime.(runtime.Rollouts)
	end := runtime.RolloutEnd{EnvironmentID: a.EnvironmentID, ActivityID: a.ActivityID, SHA: a.SHA}
	if !ok {
		end.Failure = fmt.Sprintf("the deploy did not finish within %s and this runtime cannot say why", a.Timeout)
		return w.q.RolloutEnded(ctx, end)
	}
	done, failure, err := ro.RolloutState(ctx, env)
	if err != nil {
		return err // River retries the last look
	}
	switch {
	case failure != "":
		end.Failure = failure
	case !done:
		end.Failure = fmt.Sprintf("the deploy did not become Available within its deadline (%s, --job-rescue-after); see `glenv environment:logs` and the pods' events", a.Timeout)
	}
	return w.q.RolloutEnded(ctx, end)
}

// rollingOut reports whether env still waits for the rollout of activity.
func rollingOut(env store.Environment, activity int64) bool {
	return env.DeletedAt.IsZero() && env.State == store.StateDeploying && env.PendingActivityID == activity
}

// RolloutEnded moves an environment whose rollout ended to active or failed
// through the state machine, when it still waits for that rollout; an end
// reported twice, late, or for a superseded deploy changes nothing (it is
// checked inside the transaction, so the activity a newer request owns is
// never touched).
func (q *Environments) RolloutEnded(ctx context.Context, end runtime.RolloutEnd) error {
	in := lifecycle.Input{Trigger: lifecycle.TriggerDeploySucceeded, Activity: end.ActivityID, SHA: end.SHA}
	line := fmt.Sprintf("%s serving %s: the rollout finished\n", time.Now().UTC().Format("15:04:05.000"), gitsha.Short(end.SHA))
	if end.Failure != "" {
		in.Trigger, in.Reason = lifecycle.TriggerDeployFailed, end.Failure
		line = fmt.Sprintf("%s rollout failed: %s\n", time.Now().UTC().Format("15:04:05.000"), end.Failure)
	}
	// Most reports are for rollouts already recorded (the watch's first
	// list after a restart): a read, not a write transaction, says so.
	env, err := store.GetEnvironmentByID(ctx, q.store.Reader(), end.EnvironmentID)
	if errors.Is(err, store.ErrNotFound) || err == nil && !rollingOut(env, end.ActivityID) {
		return nil
	}
	if err != nil {
		return err
	}
	return q.store.Tx(ctx, func(tx *sql.Tx) error {
		env, err := q.reload(ctx, tx, end.EnvironmentID)
		if errors.Is(err, store.ErrNotFound) || err == nil && !rollingOut(env, end.ActivityID) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := store.AppendActivityLog(ctx, tx, end.ActivityID, line); err != nil {
			return err
		}
		def, err := defaultBranchOf(ctx, tx, env)
		if err != nil {
			return err
		}
		_, err = q.transition(ctx, tx, &env, def, in, record{})
		return err
	})
}

// scheduleRolloutDeadline records the deadline of a deploy the runtime rolls
// out on its own (unique per activity: a retried deploy job does not add a
// second).
func (q *Environments) scheduleRolloutDeadline(ctx context.Context, a DeployArgs, timeout time.Duration) error {
	_, err := q.River.Insert(ctx, RolloutDeadlineArgs{EnvironmentID: a.EnvironmentID, ActivityID: a.ActivityID, SHA: a.SHA, Timeout: timeout},
		&river.InsertOpts{ScheduledAt: time.Now().Add(timeout), UniqueOpts: river.UniqueOpts{ByArgs: true}})
	if err != nil {
		return fmt.Errorf("schedule the rollout's deadline: %w", err)
	}
	return nil
}
