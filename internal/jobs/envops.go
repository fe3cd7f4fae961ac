package jobs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/glenv/glenv/internal/lifecycle"
	"github.com/glenv/glenv/internal/store"
)

// EnvOp is an operation a person asks for on one environment.
type EnvOp string

const (
	OpActivate   EnvOp = "activate"
	OpDeactivate EnvOp = "deactivate"
	OpRedeploy   EnvOp = "redeploy"
	OpDelete     EnvOp = "delete"
	// OpSyncData refreshes an environment's data from its parent and redeploys it.
	OpSyncData EnvOp = "sync-data"
	// OpPause stops an active environment's app, keeping its build and data.
	OpPause EnvOp = "pause"
	// OpResume deploys a paused environment again.
	OpResume EnvOp = "resume"
)

var opTriggers = map[EnvOp]lifecycle.Trigger{
	OpActivate: lifecycle.TriggerActivate, OpDeactivate: lifecycle.TriggerDeactivate, OpRedeploy: lifecycle.TriggerRedeploy,
	OpDelete: lifecycle.TriggerDelete, OpSyncData: lifecycle.TriggerSyncData, OpPause: lifecycle.TriggerPause,
	OpResume: lifecycle.TriggerResume,
}

func opWords(op EnvOp, env store.Environment) string {
	switch op {
	case OpSyncData:
		return "data synced from " + env.Parent + " by request"
	case OpActivate:
		return "activated by request"
	case OpDeactivate:
		return "deactivated by request"
	}
	return string(op) + " by request"
}

// Operate carries out op on the environment with id in one short
// transaction: the state machine decides, and the work (deploy, data reset,
// removal) is enqueued for jobs that run after the commit. It returns the
// environment as it then is; refusals wrap ErrRefused and say why.
func (q *Environments) Operate(ctx context.Context, id int64, op EnvOp) (store.Environment, error) {
	trigger, ok := opTriggers[op]
	if !ok {
		return store.Environment{}, fmt.Errorf("%w: unknown operation %q (activate, deactivate, redeploy, sync-data, delete, pause, resume)", ErrRefused, op)
	}
	var out store.Environment
	err := q.store.Tx(ctx, func(tx *sql.Tx) error {
		if err := q.lock(ctx, tx, id); err != nil {
			return err
		}
		env, err := store.GetEnvironmentByID(ctx, tx, id)
		if err != nil {
			return err
		}
		def, err := defaultBranchOf(ctx, tx, env)
		if err != nil {
			return err
		}
		if _, err := q.transition(ctx, tx, &env, def, lifecycle.Input{Trigger: trigger}, record{Description: opWords(op, env)}); err != nil {
			return err
		}
		out = env
		return nil
	})
	return out, err
}

// AppGaveUp records that an environment's app stopped and will not be
// restarted (the runtime gave up on it): an active environment becomes
// failed, with an activity saying why, until its next deploy. It runs on
// its own bounded context, as the runtime calls it from its supervisor.
func (q *Environments) AppGaveUp(ctx context.Context, envID int64, reason string) error {
	bctx, cancel := bookkeeping(ctx)
	defer cancel()
	return q.store.Tx(bctx, func(tx *sql.Tx) error {
		if err := q.lock(bctx, tx, envID); err != nil {
			return err
		}
		env, err := store.GetEnvironmentByID(bctx, tx, envID)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		before := subjectOf(env, "")
		o, err := q.transition(bctx, tx, &env, "", lifecycle.Input{Trigger: lifecycle.TriggerAppGaveUp, Reason: reason}, record{})
		if err != nil || !o.Changed(before) {
			return err
		}
		act := store.Activity{IntegrationName: env.IntegrationName, EnvironmentID: env.ID, EnvironmentName: env.Name,
			Kind: store.ActivityStop, State: store.ActivityFailed, SHA: env.DeployedSHA, Result: reason,
			Description: "the app kept failing and is no longer restarted; push or run environment:redeploy"}
		return store.InsertActivity(bctx, tx, &act)
	})
}

// MarkFailed is AppGaveUp's former name.
//
// Deprecated: use AppGaveUp.
func (q *Environments) MarkFailed(ctx context.Context, envID int64, reason string) error {
	return q.AppGaveUp(ctx, envID, reason)
}

// clearPending ends activityID and, when the environment still waits for
// it, stops waiting.
func (q *Environments) clearPending(ctx context.Context, envID, activityID int64, state, result string) error {
	return q.store.Tx(ctx, func(tx *sql.Tx) error {
		if err := store.SetActivityState(ctx, tx, activityID, state, result); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE environments SET pending_activity_id = 0 WHERE id = $1 AND pending_activity_id = $2`, envID, activityID); err != nil {
			return err
		}
		return q.notify(ctx, tx, envID)
	})
}

// StopNow is GitLab's stop (/api/v4) inside the caller's tx: the
// environment becomes inactive (GitLab "stopped") at once, and a job
// removes its runtime after the commit. The default branch's environment
// and one already stopped are left as they are.
func (q *Environments) StopNow(ctx context.Context, tx *sql.Tx, env *store.Environment, reason string) error {
	return q.StopNowForce(ctx, tx, env, false, reason)
}

// StopNowForce is StopNow with GitLab's force=true: a stopping environment
// is stopped too.
func (q *Environments) StopNowForce(ctx context.Context, tx *sql.Tx, env *store.Environment, force bool, reason string) error {
	cur, err := q.reload(ctx, tx, env.ID)
	if err != nil {
		return err
	}
	*env = cur
	def, err := defaultBranchOf(ctx, tx, *env)
	if err != nil {
		return err
	}
	_, err = q.transition(ctx, tx, env, def, lifecycle.Input{Trigger: lifecycle.TriggerStop, Force: force}, record{Description: reason})
	return err
}

// DeleteNow is GitLab's delete (/api/v4) of a stopped environment inside
// the caller's tx: a tombstone at once (the name can be used again), and a
// job removes its runtime after the commit.
func (q *Environments) DeleteNow(ctx context.Context, tx *sql.Tx, env *store.Environment, reason string) error {
	cur, err := q.reload(ctx, tx, env.ID)
	if err != nil {
		return err
	}
	*env = cur
	def, err := defaultBranchOf(ctx, tx, *env)
	if err != nil {
		return err
	}
	_, err = q.transition(ctx, tx, env, def, lifecycle.Input{Trigger: lifecycle.TriggerDeleteStopped}, record{Description: reason})
	return err
}

// NotifyChanged queues GitLab feedback for an environment created or edited
// inside tx by a caller outside this package.
func (q *Environments) NotifyChanged(ctx context.Context, tx *sql.Tx, envID int64) error {
	return q.notify(ctx, tx, envID)
}

// Wake deploys a paused environment again because someone visited it (the
// proxy calls it for a paused environment's host); it reports whether a
// deploy was started. Any other environment is left as it is.
func (q *Environments) Wake(ctx context.Context, id int64) (bool, error) {
	_, o, err := q.Trigger(ctx, id, lifecycle.Input{Trigger: lifecycle.TriggerWake}, record{Description: "woken by a visit"})
	return o.Starts != "", err
}

// CreateManual stores an environment created through GitLab's API (it
// follows no branch, merge request or tag) inside the caller's tx, made
// available by the state machine. A taken name or host wraps
// store.ErrConflict, as store.SaveEnvironment does.
func (q *Environments) CreateManual(ctx context.Context, tx *sql.Tx, env *store.Environment) error {
	env.Ref, env.State = "", store.StateInactive
	if err := store.SaveEnvironment(ctx, tx, env); err != nil {
		return err
	}
	// created_at is the moment the transition saves, as updated_at is:
	// GitLab's one insert gives both the same (lib/api/environments.rb:90,
	// environments.create), and nothing outside tx saw the first save.
	env.State, env.CreatedAt = "", time.Time{}
	if _, err := q.transition(ctx, tx, env, "", lifecycle.Input{Trigger: lifecycle.TriggerCreate, Activate: true}, record{}); err != nil {
		return err
	}
	if env.CreatedAt.IsZero() { // the transition saved nothing
		return store.SaveEnvironment(ctx, tx, env)
	}
	return nil
}
