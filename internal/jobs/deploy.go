package jobs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/riverqueue/river"

	"github.com/glenv/glenv/internal/gitsha"
	"github.com/glenv/glenv/internal/store"
)

type deployWorker struct {
	river.WorkerDefaults[DeployArgs]
	q    *Queue
	deps Deps
}

func (w *deployWorker) Work(ctx context.Context, job *river.Job[DeployArgs]) error {
	s, a := w.q.store, job.Args
	env, err := store.GetEnvironmentByID(ctx, s.Reader(), a.EnvironmentID)
	if errors.Is(err, store.ErrNotFound) {
		return w.finish(ctx, a, store.ActivityCancelled, "environment deleted before the deploy started")
	}
	if err != nil {
		return err
	}
	if env.HeadSHA != a.SHA || env.State != store.StateBuilding {
		return w.finish(ctx, a, store.ActivityCancelled,
			fmt.Sprintf("superseded: the environment's head is now %s (state %s)", gitsha.Short(env.HeadSHA), env.State))
	}
	in, err := store.GetIntegration(ctx, s.Reader(), env.IntegrationName)
	if err != nil {
		return w.finish(ctx, a, store.ActivityFailed, "integration "+env.IntegrationName+" is gone: "+err.Error())
	}
	req := DeployRequest{Integration: in, Env: env, SHA: a.SHA, CloneParentData: a.CloneParentData, ActivityID: a.ActivityID}
	if w.deps.TokenFor != nil {
		if req.Token, err = w.deps.TokenFor(in); err != nil {
			return w.finish(ctx, a, store.ActivityFailed, err.Error())
		}
	}
	if env.Parent != "" {
		if p, err := store.GetEnvironment(ctx, s.Reader(), env.IntegrationName, env.Parent); err == nil && p.DeletedAt.IsZero() {
			req.Parent = &p
		}
	}
	err = s.Tx(ctx, func(tx *sql.Tx) error {
		cur, err := store.GetEnvironmentByID(ctx, tx, env.ID)
		if err != nil || cur.HeadSHA != a.SHA || cur.State != store.StateBuilding {
			return errSuperseded
		}
		cur.State = store.StateDeploying
		if err := store.SaveEnvironment(ctx, tx, &cur); err != nil {
			return err
		}
		if err := store.SetActivityState(ctx, tx, a.ActivityID, store.ActivityRunning, ""); err != nil {
			return err
		}
		return w.q.notify(ctx, tx, env.ID)
	})
	if errors.Is(err, errSuperseded) {
		return w.finish(ctx, a, store.ActivityCancelled, "superseded before it started")
	}
	if err != nil {
		return err
	}
	req.Log = func(line string) { _ = store.AppendActivityLog(context.WithoutCancel(ctx), s.DB, a.ActivityID, line) }
	dctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go w.watchSupersede(dctx, cancel, env.ID, a.SHA)
	derr := w.deps.Runtime.Deploy(dctx, req)
	superseded := errors.Is(context.Cause(dctx), errSuperseded)
	return s.Tx(context.WithoutCancel(ctx), func(tx *sql.Tx) error {
		cur, err := store.GetEnvironmentByID(ctx, tx, env.ID)
		if errors.Is(err, store.ErrNotFound) {
			return store.SetActivityState(ctx, tx, a.ActivityID, store.ActivityCancelled, "environment deleted during the deploy")
		}
		if err != nil {
			return err
		}
		if superseded || cur.HeadSHA != a.SHA || cur.State != store.StateDeploying {
			if err := store.SetActivityState(ctx, tx, a.ActivityID, store.ActivityCancelled, "superseded by "+gitsha.Short(cur.HeadSHA)); err != nil {
				return err
			}
			return w.q.notify(ctx, tx, env.ID)
		}
		result, actState := "deployed "+gitsha.Short(a.SHA), store.ActivityComplete
		if derr != nil {
			cur.State, result, actState = store.StateFailed, derr.Error(), store.ActivityFailed
		} else {
			cur.State, cur.DeployedSHA = store.StateActive, a.SHA
		}
		if err := store.SaveEnvironment(ctx, tx, &cur); err != nil {
			return err
		}
		if err := store.SetActivityState(ctx, tx, a.ActivityID, actState, result); err != nil {
			return err
		}
		return w.q.notify(ctx, tx, env.ID)
	})
}

var errSuperseded = errors.New("superseded by a newer head")

// watchSupersede cancels a running deploy once the environment's head moves
// on (a newer push) or it is being stopped, so the newer deploy need not wait.
func (w *deployWorker) watchSupersede(ctx context.Context, cancel context.CancelCauseFunc, envID int64, sha string) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			cur, err := store.GetEnvironmentByID(ctx, w.q.store.Reader(), envID)
			if errors.Is(err, store.ErrNotFound) || err == nil && (cur.HeadSHA != sha || cur.State != store.StateDeploying) {
				cancel(errSuperseded)
				return
			}
		}
	}
}

func (w *deployWorker) finish(ctx context.Context, a DeployArgs, state, result string) error {
	return w.q.store.Tx(ctx, func(tx *sql.Tx) error {
		if err := store.SetActivityState(ctx, tx, a.ActivityID, state, result); err != nil {
			return err
		}
		return w.q.notify(ctx, tx, a.EnvironmentID)
	})
}
