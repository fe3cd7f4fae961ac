package jobs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/glenv/glenv/internal/lifecycle"
	"github.com/glenv/glenv/internal/store"
)

// ErrRefused is an environment operation that the rules forbid; the message says why.
var ErrRefused = errors.New("refused")

// EnvOp is an operation a person asks for on one environment.
type EnvOp string

const (
	OpActivate   EnvOp = "activate"
	OpDeactivate EnvOp = "deactivate"
	OpRedeploy   EnvOp = "redeploy"
	OpDelete     EnvOp = "delete"
	// OpSyncData refreshes an environment's data from its parent and redeploys it.
	OpSyncData EnvOp = "sync-data"
)

// DataResetter is a runtime that can drop an environment's data so that the
// next deploy clones it from the parent again.
type DataResetter interface {
	ResetData(ctx context.Context, envID int64) error
}

// Operate carries out op on the environment with id, recording an activity.
func (q *Queue) Operate(ctx context.Context, id int64, op EnvOp) (store.Environment, error) {
	var out store.Environment
	err := q.store.Tx(ctx, func(tx *sql.Tx) error {
		env, err := store.GetEnvironmentByID(ctx, tx, id)
		if err != nil {
			return err
		}
		if env.Detached {
			return fmt.Errorf("%w: environment %s is detached from its deleted integration; re-add integration %s to manage it", ErrRefused, env.Name, env.IntegrationName)
		}
		in, err := store.GetIntegration(ctx, tx, env.IntegrationName)
		if err != nil {
			return err
		}
		isDefault := env.Kind == string(lifecycle.KindBranch) && env.Name == in.DefaultBranch
		if env.Ref == "" && (op == OpActivate || op == OpRedeploy || op == OpSyncData) {
			return fmt.Errorf("%w: environment %s was created through the GitLab API and follows no branch, merge request or tag; there is nothing to build", ErrRefused, env.Name)
		}
		var a lifecycle.Action
		switch op {
		case OpActivate:
			if env.State != store.StateInactive && env.State != store.StatePaused {
				return fmt.Errorf("%w: environment %s is %s, not inactive; use redeploy to rebuild it", ErrRefused, env.Name, env.State)
			}
			a = lifecycle.Action{Type: lifecycle.ActionDeploy, Env: env.Name, SHA: env.HeadSHA, CloneParentData: env.Parent != "",
				Reason: "activated by request"}
		case OpRedeploy:
			if env.State == store.StateInactive || env.State == store.StateStopping {
				return fmt.Errorf("%w: environment %s is %s; activate it first", ErrRefused, env.Name, env.State)
			}
			a = lifecycle.Action{Type: lifecycle.ActionDeploy, Env: env.Name, SHA: env.HeadSHA, Reason: "redeploy by request"}
		case OpSyncData:
			if env.Parent == "" {
				return fmt.Errorf("%w: environment %s has no parent to sync data from", ErrRefused, env.Name)
			}
			if env.State == store.StateInactive || env.State == store.StateStopping {
				return fmt.Errorf("%w: environment %s is %s; activate it, which clones its parent's data", ErrRefused, env.Name, env.State)
			}
			if r, ok := q.deps.Runtime.(DataResetter); ok {
				if err := r.ResetData(ctx, env.ID); err != nil {
					return fmt.Errorf("reset data of %s: %w", env.Name, err)
				}
			}
			a = lifecycle.Action{Type: lifecycle.ActionDeploy, Env: env.Name, SHA: env.HeadSHA, CloneParentData: true,
				Reason: "data synced from " + env.Parent + " by request"}
		case OpDeactivate:
			if isDefault {
				return fmt.Errorf("%w: %s is the default branch's environment; it cannot be deactivated", ErrRefused, env.Name)
			}
			if env.State == store.StateInactive {
				out = env
				return nil
			}
			return q.deactivate(ctx, tx, env, &out)
		case OpDelete:
			if isDefault {
				return fmt.Errorf("%w: %s is the default branch's environment; it cannot be deleted (delete the integration instead)", ErrRefused, env.Name)
			}
			a = lifecycle.Action{Type: lifecycle.ActionDelete, Env: env.Name, Reason: "deleted by request"}
		default:
			return fmt.Errorf("%w: unknown operation %q (activate, deactivate, redeploy, sync-data, delete)", ErrRefused, op)
		}
		if _, err := q.Apply(ctx, tx, in, []lifecycle.Action{a}, 0); err != nil {
			return err
		}
		out, err = store.GetEnvironmentByID(ctx, tx, id)
		if errors.Is(err, store.ErrNotFound) {
			err = nil
		}
		return err
	})
	return out, err
}

// deactivate stops an environment's app but keeps the environment (Platform.sh's inactive).
func (q *Queue) deactivate(ctx context.Context, tx *sql.Tx, env store.Environment, out *store.Environment) error {
	act := store.Activity{IntegrationName: env.IntegrationName, EnvironmentID: env.ID, EnvironmentName: env.Name,
		Kind: store.ActivityStop, State: store.ActivityPending, Description: "deactivated by request"}
	env.State = store.StateStopping
	if err := store.SaveEnvironment(ctx, tx, &env); err != nil {
		return err
	}
	if err := store.InsertActivity(ctx, tx, &act); err != nil {
		return err
	}
	*out = env
	return q.insertTx(ctx, tx, &DeleteArgs{EnvironmentID: env.ID, ActivityID: act.ID, KeepEnvironment: true}, nil)
}

// MarkFailed records that an environment's app stopped and will not be
// restarted (the runtime gave up on it): the environment becomes failed, with
// an activity saying why, until its next deploy.
func (q *Queue) MarkFailed(ctx context.Context, envID int64, reason string) error {
	return q.store.Tx(ctx, func(tx *sql.Tx) error {
		env, err := store.GetEnvironmentByID(ctx, tx, envID)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil || env.State != store.StateActive {
			return err
		}
		env.State = store.StateFailed
		if err := store.SaveEnvironment(ctx, tx, &env); err != nil {
			return err
		}
		act := store.Activity{IntegrationName: env.IntegrationName, EnvironmentID: env.ID, EnvironmentName: env.Name,
			Kind: store.ActivityStop, State: store.ActivityFailed, SHA: env.DeployedSHA, Result: reason,
			Description: "the app kept failing and is no longer restarted; push or run environment:redeploy"}
		return store.InsertActivity(ctx, tx, &act)
	})
}
