package jobs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/riverqueue/river"

	"github.com/glenv/glenv/internal/lifecycle"
	"github.com/glenv/glenv/internal/store"
)

// ErrRefused is a change the state machine forbids; the message says why
// and what to do instead.
var ErrRefused = errors.New("refused")

// record describes the activity a transition starts: why, and what caused it.
type record struct {
	Description string
	DeliveryID  int64
	SHA         string
	// later holds activities queued earlier in the transaction; they are
	// inserted before the one a transition starts, to keep ids in order.
	later *activityQueue
	// saveLater lets a new environment that only comes into being
	// (inactive, no job, nothing shown in GitLab) be written by later.
	saveLater bool
}

// subjectOf is env as the state machine sees it.
func subjectOf(env store.Environment, defaultBranch string) lifecycle.Subject {
	state := env.State
	if !env.DeletedAt.IsZero() {
		state = store.StateDeleted
	}
	return lifecycle.Subject{Name: env.Name, Kind: lifecycle.EnvKind(env.Kind), Ref: env.Ref, Parent: env.Parent,
		State: state, Detached: env.Detached, HeadSHA: env.HeadSHA, DeployedSHA: env.DeployedSHA,
		DefaultBranch: defaultBranch, Pending: env.PendingActivityID}
}

// defaultBranchOf is the default branch of env's integration ("" when detached).
func defaultBranchOf(ctx context.Context, q store.Querier, env store.Environment) (string, error) {
	if env.Detached || env.IntegrationName == "" {
		return "", nil
	}
	in, err := store.GetIntegration(ctx, q, env.IntegrationName)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	return in.DefaultBranch, err
}

// transition is the one place an environment's state changes. Inside tx it
// decides with lifecycle.Transition, moves the job's own activity, writes the
// row (with whatever else the caller changed in env), records the activity
// the effects run under and enqueues them as jobs in the same transaction,
// so they run only once it commits. It never calls a runtime or GitLab. A
// refused trigger writes nothing and returns an ErrRefused error.
func (q *Environments) transition(ctx context.Context, tx *sql.Tx, env *store.Environment, defaultBranch string,
	in lifecycle.Input, rec record) (lifecycle.Outcome, error) {
	subj := subjectOf(*env, defaultBranch)
	created := env.ID == 0
	o := lifecycle.Transition(subj, in)
	if o.Refused != "" {
		return o, fmt.Errorf("%w: %s", ErrRefused, o.Refused)
	}
	if created && rec.saveLater && in.Activity == 0 && o.Changed(subj) && o.Starts == "" && !o.Tombstone &&
		o.State != store.StateDeleted && !shownInGitLab(created, env.Kind, o) {
		env.State, env.DeployedSHA, env.DeletedAt = o.State, o.Deployed, time.Time{}
		if rec.later.saveLater(env) {
			return o, nil // written, and the dashboard told, when the queue is flushed
		}
	}
	// Whatever follows may read or write environments: the queued first.
	if err := rec.later.flush(ctx, tx); err != nil {
		return o, err
	}
	if in.Activity != 0 && o.Activity != "" {
		if err := store.SetActivityState(ctx, tx, in.Activity, o.Activity, o.Result); err != nil {
			return o, err
		}
	}
	// The job's own activity ended: the environment waits for it no more.
	finished := in.Activity != 0 && in.Activity == env.PendingActivityID && isFinal(o.Activity)
	if finished {
		env.PendingActivityID = 0
	}
	if !o.Changed(subj) {
		if finished {
			if _, err := tx.ExecContext(ctx, `UPDATE environments SET pending_activity_id = 0 WHERE id = $1`, env.ID); err != nil {
				return o, err
			}
		}
		if env.ID != 0 && o.Activity != "" {
			return o, q.notify(ctx, tx, env.ID)
		}
		return o, nil
	}
	env.State, env.DeployedSHA = o.State, o.Deployed
	if o.Tombstone {
		env.DeletedAt = store.Now()
		// An environment's own variables go with it (a branch created
		// again later starts without them, as on Platform.sh).
		if err := store.DeleteEnvironmentVariables(ctx, tx, env.IntegrationID, env.Name); err != nil {
			return o, err
		}
	} else if o.State != store.StateDeleted {
		env.DeletedAt = time.Time{}
	}
	if err := store.SaveEnvironment(ctx, tx, env); err != nil {
		return o, err
	}
	if o.Starts != "" {
		if err := q.start(ctx, tx, env, o, rec); err != nil {
			return o, err
		}
	}
	if !shownInGitLab(created, env.Kind, o) {
		q.changed(tx, env.ID)
		return o, nil
	}
	return o, q.notify(ctx, tx, env.ID)
}

// start records the activity o's effects run under, makes it the one the
// environment waits for (cancelling the one it replaces), and enqueues the
// effects that are jobs.
func (q *Environments) start(ctx context.Context, tx *sql.Tx, env *store.Environment, o lifecycle.Outcome, rec record) error {
	act := store.Activity{IntegrationName: env.IntegrationName, EnvironmentID: env.ID, EnvironmentName: env.Name,
		DeliveryID: rec.DeliveryID, SHA: rec.SHA, Description: rec.Description, Kind: o.Starts, State: store.ActivityPending}
	if act.SHA == "" && (o.Starts == store.ActivityDeploy || o.Starts == store.ActivityPrebuild) {
		act.SHA = env.HeadSHA
		if len(o.Effects) > 0 && o.Effects[0].Redeployed && env.DeployedSHA != "" {
			act.SHA = env.DeployedSHA
		}
	}
	if err := rec.later.flush(ctx, tx); err != nil {
		return err
	}
	if err := store.InsertActivity(ctx, tx, &act); err != nil {
		return err
	}
	if prev := env.PendingActivityID; prev != 0 {
		if _, err := tx.ExecContext(ctx, `UPDATE activities SET state = $1, result = $2, completed_at = $3
			WHERE id = $4 AND state IN ('pending', 'running')`,
			store.ActivityCancelled, fmt.Sprintf("superseded by activity %d", act.ID), store.Now().UnixMicro(), prev); err != nil {
			return err
		}
	}
	env.PendingActivityID = act.ID
	if _, err := tx.ExecContext(ctx, `UPDATE environments SET pending_activity_id = $1 WHERE id = $2`, act.ID, env.ID); err != nil {
		return err
	}
	for _, e := range o.Effects {
		var job river.JobArgs
		switch e.Kind {
		case lifecycle.EffectDeploy:
			sha := env.HeadSHA
			if e.Redeployed && env.DeployedSHA != "" {
				sha = env.DeployedSHA
			}
			job = DeployArgs{EnvironmentID: env.ID, SHA: sha, ActivityID: act.ID, CloneParentData: e.CloneParentData, ResetData: e.ResetData}
		case lifecycle.EffectRemove:
			job = DeleteArgs{EnvironmentID: env.ID, ActivityID: act.ID, KeepEnvironment: e.Keep}
		case lifecycle.EffectStopApp:
			job = PauseArgs{EnvironmentID: env.ID, ActivityID: act.ID}
		case lifecycle.EffectPrebuild:
			job = PrebuildArgs{EnvironmentID: env.ID, SHA: env.HeadSHA, ActivityID: act.ID}
		default:
			continue // carried out by the caller after the commit (start app)
		}
		opts, err := q.placed(ctx, tx, env.ID)
		if err != nil {
			return err
		}
		if err := q.insertTx(ctx, tx, job, opts); err != nil {
			return err
		}
	}
	return nil
}

// placed puts an environment's runtime jobs on the queue of the replica
// that runs it (several replicas, process runtime), or anywhere.
func (q *Environments) placed(ctx context.Context, tx *sql.Tx, envID int64) (*river.InsertOpts, error) {
	if q.deps.Placement == nil {
		return nil, nil
	}
	queue, err := q.deps.Placement.Queue(ctx, tx, envID)
	if err != nil {
		return nil, fmt.Errorf("place the jobs of environment %d: %w", envID, err)
	}
	return &river.InsertOpts{Queue: queue}, nil
}

func isFinal(activityState string) bool {
	switch activityState {
	case store.ActivityComplete, store.ActivityFailed, store.ActivityCancelled:
		return true
	}
	return false
}

// bookkeeping is the context a job records its result on: never the job's
// own, which is dead once the job timed out or glenv is draining, but
// bounded so a hung database cannot hold the job forever.
func bookkeeping(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
}

// Trigger applies one trigger to the environment with id in its own short
// transaction and returns the environment as it then is (a tombstone
// included). Requests refused by the state machine return ErrRefused.
func (q *Environments) Trigger(ctx context.Context, id int64, in lifecycle.Input, rec record) (store.Environment, lifecycle.Outcome, error) {
	var env store.Environment
	var o lifecycle.Outcome
	err := q.store.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		if env, err = q.reload(ctx, tx, id); err != nil {
			return err
		}
		def, err := defaultBranchOf(ctx, tx, env)
		if err != nil {
			return err
		}
		o, err = q.transition(ctx, tx, &env, def, in, rec)
		return err
	})
	return env, o, err
}

// lock takes the environment's row lock for the rest of tx on PostgreSQL,
// so two transitions of one environment (a deploy finishing while a push
// arrives) never both read the old row and the second write loses the
// first. SQLite transactions already take its one writer lock at BEGIN.
func (q *Environments) lock(ctx context.Context, tx *sql.Tx, id int64) error {
	if q.store.Dialect != store.Postgres || id == 0 {
		return nil
	}
	_, err := tx.ExecContext(ctx, `SELECT 1 FROM environments WHERE id = $1 FOR UPDATE`, id)
	return err
}

// reload locks the environment and reads it again inside tx.
func (q *Environments) reload(ctx context.Context, tx *sql.Tx, id int64) (store.Environment, error) {
	if err := q.lock(ctx, tx, id); err != nil {
		return store.Environment{}, err
	}
	return store.GetEnvironmentOrTombstone(ctx, tx, id)
}
