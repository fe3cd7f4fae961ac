package jobs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/riverqueue/river"

	"github.com/glenv/glenv/internal/lifecycle"
	"github.com/glenv/glenv/internal/runtime"
	"github.com/glenv/glenv/internal/store"
)

type deployWorker struct {
	river.WorkerDefaults[DeployArgs]
	q    *Environments
	deps Deps
}

// DataResetter is a runtime that can drop an environment's data so that the
// next deploy clones it from the parent again.
type DataResetter interface {
	ResetData(ctx context.Context, envID int64) error
}

// Work carries out one deploy: it claims the deploy (building → deploying)
// in a short transaction, runs the runtime outside any transaction, and
// records the result on a fresh bounded context, so a deploy that outlived
// its job or a draining glenv still leaves the environment right.
func (w *deployWorker) Work(ctx context.Context, job *river.Job[DeployArgs]) error {
	a := job.Args
	started := lifecycle.Input{Trigger: lifecycle.TriggerDeployStarted, Activity: a.ActivityID, SHA: a.SHA}
	env, o, err := w.q.Trigger(ctx, a.EnvironmentID, started, record{})
	if errors.Is(err, store.ErrNotFound) {
		return w.q.finishActivity(ctx, a.ActivityID, a.EnvironmentID, store.ActivityCancelled, "environment deleted before the deploy started")
	}
	if err != nil || o.Activity != store.ActivityRunning {
		return err // superseded: the transition cancelled the activity
	}
	if a.ResetData {
		// environment:sync --data: drop the data here, outside any
		// transaction, so the deploy below clones the parent's afresh.
		if r, ok := w.deps.Runtime.(DataResetter); ok {
			if err := r.ResetData(ctx, env.ID); err != nil {
				return w.finish(ctx, a, lifecycle.TriggerDeployFailed, fmt.Sprintf("reset data of %s: %v", env.Name, err))
			}
		}
	}
	req, reason := w.request(ctx, env, a)
	if reason != "" {
		return w.finish(ctx, a, lifecycle.TriggerDeployFailed, reason)
	}
	var closeLog func()
	req.Log, closeLog = w.q.activityLog(ctx, a.ActivityID)
	dctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go w.watchSupersede(dctx, cancel, env.ID, func(cur store.Environment) bool {
		return cur.PendingActivityID == a.ActivityID && cur.State == store.StateDeploying
	})
	derr := w.deps.Runtime.Deploy(dctx, req)
	// The whole log is stored before the activity is marked finished, so a
	// follower that sees it finished has every line.
	closeLog()
	switch {
	case errors.Is(context.Cause(dctx), errSuperseded):
		return w.finish(ctx, a, lifecycle.TriggerDeploySuperseded, "")
	case errors.Is(derr, runtime.ErrRollingOut):
		// Applied; the runtime reports the rollout's end (rollout.go).
		// The worker is free again; the deadline is a job of its own.
		bctx, cancel := bookkeeping(ctx)
		defer cancel()
		return w.q.scheduleRolloutDeadline(bctx, a, w.timeout(job))
	case derr == nil:
		return w.finish(ctx, a, lifecycle.TriggerDeploySucceeded, "")
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return w.finish(ctx, a, lifecycle.TriggerDeployTimedOut, fmt.Sprintf("the deploy ran longer than its job may (%s)", w.timeout(job)))
	case ctx.Err() != nil:
		// glenv is draining: leave the deploy to the retry of this job or
		// to the restart, which both deploy it again.
		return fmt.Errorf("deploy of %s interrupted: %w", env.Name, ctx.Err())
	}
	return w.finish(ctx, a, lifecycle.TriggerDeployFailed, derr.Error())
}

func (w *deployWorker) timeout(job *river.Job[DeployArgs]) time.Duration {
	if d := w.Timeout(job); d > 0 {
		return d
	}
	return w.q.jobTimeout
}

// request builds the runtime's request, or says why it cannot be built.
func (w *deployWorker) request(ctx context.Context, env store.Environment, a DeployArgs) (DeployRequest, string) {
	s := w.q.store
	in, err := store.GetIntegration(ctx, s.Reader(), env.IntegrationName)
	if err != nil {
		return DeployRequest{}, "integration " + env.IntegrationName + " is gone: " + err.Error()
	}
	req := DeployRequest{Integration: in, Env: env, SHA: a.SHA, CloneParentData: a.CloneParentData, ActivityID: a.ActivityID}
	if w.deps.TokenFor != nil {
		if req.Token, err = w.deps.TokenFor(in); err != nil {
			return DeployRequest{}, err.Error()
		}
	}
	if env.Parent != "" {
		if p, err := store.GetEnvironment(ctx, s.Reader(), env.IntegrationName, env.Parent); err == nil && p.DeletedAt.IsZero() {
			req.Parent = &p
		}
	}
	return req, ""
}

// finish records the deploy's end through the state machine on a fresh
// bounded context: the job's own may be dead (timed out, draining).
func (w *deployWorker) finish(ctx context.Context, a DeployArgs, trigger lifecycle.Trigger, reason string) error {
	bctx, cancel := bookkeeping(ctx)
	defer cancel()
	_, _, err := w.q.Trigger(bctx, a.EnvironmentID, lifecycle.Input{Trigger: trigger, Activity: a.ActivityID, SHA: a.SHA, Reason: reason}, record{})
	if errors.Is(err, store.ErrNotFound) {
		return w.q.finishActivity(bctx, a.ActivityID, a.EnvironmentID, store.ActivityCancelled, "environment deleted during the deploy")
	}
	return err
}

var errSuperseded = errors.New("superseded by a newer request")

// supersedeEvery is the longest a running deploy goes without looking
// whether it was superseded.
const supersedeEvery = 2 * time.Second

// watchSupersede cancels a running deploy (or prebuild) once the
// environment is gone or wanted no longer says it is wanted (a newer push,
// a stop, a delete, a sync took over), so the newer work need not wait for
// a build nobody wants.
//
// It looks every 250 ms at first, then less often, up to every
// supersedeEvery: a burst holds a hundred deploys at once, and a read each
// every 250 ms was 12 % of glenv's CPU in a burst on Kubernetes; a long
// build can as well notice a newer push within two seconds.
func (w *deployWorker) watchSupersede(ctx context.Context, cancel context.CancelCauseFunc, envID int64, wanted func(store.Environment) bool) {
	every := 250 * time.Millisecond
	t := time.NewTimer(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			every = min(2*every, supersedeEvery)
			t.Reset(every)
			cur, err := store.GetEnvironmentByID(ctx, w.q.store.Reader(), envID)
			if errors.Is(err, store.ErrNotFound) || err == nil && !wanted(cur) {
				cancel(errSuperseded)
				return
			}
		}
	}
}

// finishActivity ends an activity whose environment is gone.
func (q *Environments) finishActivity(ctx context.Context, activityID, envID int64, state, result string) error {
	return q.store.Tx(ctx, func(tx *sql.Tx) error {
		if err := store.SetActivityState(ctx, tx, activityID, state, result); err != nil {
			return err
		}
		return q.notify(ctx, tx, envID)
	})
}
