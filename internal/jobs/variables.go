package jobs

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivertype"

	"github.com/glenv/glenv/internal/lifecycle"
	"github.com/glenv/glenv/internal/store"
)

// VariablesRedeployArgs asks for an environment to be redeployed because
// the variables it resolves to changed. One job per environment waits
// while changes keep coming (River's uniqueness), so a burst of changes
// redeploys each affected environment once.
type VariablesRedeployArgs struct {
	EnvironmentID int64 `json:"environment_id"`
}

func (VariablesRedeployArgs) Kind() string { return "variables_redeploy" }

// VariablesDebounce is how long a redeploy for changed variables waits for
// more changes to the same environment before it starts.
const VariablesDebounce = 2 * time.Second

// variablesRedeployOpts: one waiting job per environment. River requires
// running among the unique states; the worker completes its job in the
// transaction of its transition, so a change committed after that
// transition always finds no job and enqueues a new one.
func variablesRedeployOpts(debounce time.Duration) *river.InsertOpts {
	return &river.InsertOpts{ScheduledAt: time.Now().Add(debounce), UniqueOpts: river.UniqueOpts{ByArgs: true,
		ByState: []rivertype.JobState{rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning,
			rivertype.JobStateScheduled, rivertype.JobStateRetryable}}}
}

// RedeployForVariables enqueues, inside the caller's tx (the one that
// changes the variables), a coalesced redeploy of each environment. Each
// environment's row is locked first (PostgreSQL), so the redeploy job of
// an earlier change cannot commit its transition between this
// transaction's read of the job queue and its commit: either that job
// still waits and its deploy reads these variables, or a new job is
// enqueued.
func (q *Environments) RedeployForVariables(ctx context.Context, tx *sql.Tx, envIDs []int64) error {
	for _, id := range envIDs {
		if err := q.lock(ctx, tx, id); err != nil {
			return err
		}
		if err := q.insertTx(ctx, tx, VariablesRedeployArgs{EnvironmentID: id}, variablesRedeployOpts(q.variablesDebounce())); err != nil {
			return err
		}
	}
	return nil
}

func (q *Environments) variablesDebounce() time.Duration {
	if q.VariablesDebounce > 0 {
		return q.VariablesDebounce
	}
	return VariablesDebounce
}

type variablesRedeployWorker struct {
	river.WorkerDefaults[VariablesRedeployArgs]
	q *Environments
}

// Work redeploys the environment through the state machine. An
// environment that no longer runs (inactive, paused, stopping, deleted)
// is left alone: its next deploy or wake reads the variables anyway.
func (w *variablesRedeployWorker) Work(ctx context.Context, job *river.Job[VariablesRedeployArgs]) error {
	q := w.q
	return q.store.Tx(ctx, func(tx *sql.Tx) error {
		env, err := q.reload(ctx, tx, job.Args.EnvironmentID)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return completeJobTx(ctx, q.store, tx, job)
		case err != nil:
			return err
		}
		switch env.State {
		case store.StateActive, store.StateBuilding, store.StateDeploying, store.StateFailed:
			def, err := defaultBranchOf(ctx, tx, env)
			if err != nil {
				return err
			}
			_, err = q.transition(ctx, tx, &env, def, lifecycle.Input{Trigger: lifecycle.TriggerRedeploy},
				record{Description: "variables changed"})
			if err != nil && !errors.Is(err, ErrRefused) {
				return err
			}
		}
		return completeJobTx(ctx, q.store, tx, job)
	})
}

// completeJobTx marks a job completed inside tx.
func completeJobTx[T river.JobArgs](ctx context.Context, s *store.Store, tx *sql.Tx, job *river.Job[T]) error {
	var err error
	if s.Dialect == store.SQLite {
		_, err = river.JobCompleteTx[*riversqlite.Driver](ctx, tx, job)
	} else {
		_, err = river.JobCompleteTx[*riverdatabasesql.Driver](ctx, tx, job)
	}
	return err
}
