package jobs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/riverqueue/river"

	"github.com/glenv/glenv/internal/gitsha"
	"github.com/glenv/glenv/internal/lifecycle"
	"github.com/glenv/glenv/internal/store"
)

// PrebuildArgs asks for an inactive environment's head to be fetched and
// built without running it (--prebuild-branches, issue 17).
type PrebuildArgs struct {
	EnvironmentID int64  `json:"environment_id"`
	SHA           string `json:"sha"`
	ActivityID    int64  `json:"activity_id"`
}

func (PrebuildArgs) Kind() string { return "prebuild" }

// Prebuilder is a runtime that can build an environment's head without
// running it; activating the environment then reuses the build. A runtime
// without it (the Kubernetes runtime builds in the cluster, the record
// runtime builds nothing) completes prebuilds with nothing done.
type Prebuilder interface {
	Prebuild(ctx context.Context, req DeployRequest) error
}

type prebuildWorker struct {
	river.WorkerDefaults[PrebuildArgs]
	q    *Environments
	deps Deps
}

// Work claims the prebuild through the state machine, builds outside any
// transaction and records the result; a newer push (a newer prebuild) or
// an activation cancels it, and an activation waits for the runtime's
// environment lock and reuses what was built so far.
func (w *prebuildWorker) Work(ctx context.Context, job *river.Job[PrebuildArgs]) error {
	a := job.Args
	env, o, err := w.q.Trigger(ctx, a.EnvironmentID, lifecycle.Input{Trigger: lifecycle.TriggerPrebuildStarted, Activity: a.ActivityID, SHA: a.SHA}, record{})
	if errors.Is(err, store.ErrNotFound) {
		return w.q.finishActivity(ctx, a.ActivityID, a.EnvironmentID, store.ActivityCancelled, "environment deleted before the prebuild started")
	}
	if err != nil || o.Activity != store.ActivityRunning {
		return err // superseded: the transition cancelled the activity
	}
	finish := func(trigger lifecycle.Trigger, reason string) error {
		bctx, cancel := bookkeeping(ctx)
		defer cancel()
		_, _, err := w.q.Trigger(bctx, a.EnvironmentID, lifecycle.Input{Trigger: trigger, Activity: a.ActivityID, SHA: a.SHA, Reason: reason}, record{})
		if errors.Is(err, store.ErrNotFound) {
			return w.q.finishActivity(bctx, a.ActivityID, a.EnvironmentID, store.ActivityCancelled, "environment deleted during the prebuild")
		}
		return err
	}
	pb, ok := w.deps.Runtime.(Prebuilder)
	if !ok {
		return finish(lifecycle.TriggerPrebuildSucceeded, "")
	}
	dw := deployWorker{q: w.q, deps: w.deps}
	req, reason := dw.request(ctx, env, DeployArgs{EnvironmentID: a.EnvironmentID, SHA: a.SHA, ActivityID: a.ActivityID})
	if reason != "" {
		return finish(lifecycle.TriggerPrebuildFailed, reason)
	}
	var closeLog func()
	req.Log, closeLog = w.q.activityLog(ctx, a.ActivityID)
	pctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// Only a newer head or the environment's end stops a prebuild: an
	// activation meanwhile waits for it and reuses its build.
	go dw.watchSupersede(pctx, cancel, env.ID, func(cur store.Environment) bool {
		return cur.HeadSHA == a.SHA && cur.DeletedAt.IsZero() && cur.State != store.StateStopping
	})
	perr := pb.Prebuild(pctx, req)
	closeLog()
	switch {
	case errors.Is(context.Cause(pctx), errSuperseded):
		return finish(lifecycle.TriggerPrebuildFailed, "superseded") // not own any more: recorded as cancelled
	case perr == nil:
		return finish(lifecycle.TriggerPrebuildSucceeded, "")
	case ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded):
		// glenv is draining: the retry of this job prebuilds again.
		return fmt.Errorf("prebuild of %s interrupted: %w", env.Name, ctx.Err())
	}
	return finish(lifecycle.TriggerPrebuildFailed, "prebuild failed: "+perr.Error())
}

// prebuildAfter starts a prebuild of env's new head inside tx when its
// integration prebuilds branches and env is an inactive branch environment
// (the state machine decides); anything else is left as it is.
func (q *Environments) prebuildAfter(ctx context.Context, tx *sql.Tx, in store.Integration, env *store.Environment, rec record) error {
	if !in.PrebuildBranches || env.State != store.StateInactive || env.Kind != string(lifecycle.KindBranch) || env.HeadSHA == "" {
		return nil
	}
	rec.Description = "prebuild of " + gitsha.Short(env.HeadSHA) + " (--prebuild-branches): built, not run, so activating it starts at once"
	rec.SHA = env.HeadSHA
	_, err := q.transition(ctx, tx, env, in.DefaultBranch, lifecycle.Input{Trigger: lifecycle.TriggerPrebuild}, rec)
	if errors.Is(err, ErrRefused) {
		return nil
	}
	return err
}
