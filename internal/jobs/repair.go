package jobs

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/riverqueue/river"

	"github.com/glenv/glenv/internal/lifecycle"
	"github.com/glenv/glenv/internal/store"
)

// RepairArgs asks for the repair sweep: environments waiting for a deploy,
// stop or delete whose job is gone are driven again.
type RepairArgs struct{}

func (RepairArgs) Kind() string { return "repair_environments" }

// repairJob runs the sweep at start and then every interval; River's
// uniqueness keeps one sweep waiting at a time.
func repairJob(interval time.Duration) *river.PeriodicJob {
	if interval <= 0 {
		interval = time.Minute
	}
	return river.NewPeriodicJob(river.PeriodicInterval(interval),
		func() (river.JobArgs, *river.InsertOpts) {
			return RepairArgs{}, &river.InsertOpts{UniqueOpts: river.UniqueOpts{ByPeriod: interval}}
		}, &river.PeriodicJobOpts{RunOnStart: true})
}

type repairWorker struct {
	river.WorkerDefaults[RepairArgs]
	q *Environments
}

func (w *repairWorker) Work(ctx context.Context, job *river.Job[RepairArgs]) error {
	n, err := w.q.Repair(ctx)
	if n > 0 {
		w.q.deps.Logger.Info("repaired environments whose job was gone", "count", n)
	}
	if queued, derr := w.q.repairDrain(ctx); derr != nil {
		err = errors.Join(err, derr)
	} else if queued {
		w.q.deps.Logger.Warn("accepted deliveries had no drain job; queued one")
	}
	return err
}

// waitingStates are the states an environment leaves only through a job.
var waitingStates = []string{store.StateBuilding, store.StateDeploying, store.StateStopping}

// Repair finds environments in building, deploying or stopping whose job is
// gone (no deploy or remove job for their pending activity is available,
// scheduled, running or retryable: discarded after its attempts, deleted,
// or never enqueued) and re-drives each through the state machine. It
// returns how many it re-drove.
func (q *Environments) Repair(ctx context.Context) (int, error) {
	alive, err := q.jobActivities(ctx)
	if err != nil {
		return 0, err
	}
	// Inactive environments wait for a job only while they are prebuilt.
	rows, err := q.store.Reader().QueryContext(ctx, `SELECT e.id, e.pending_activity_id, COALESCE(a.kind, '')
		FROM environments e LEFT JOIN activities a ON a.id = e.pending_activity_id
		WHERE e.deleted_at = 0 AND (e.state IN ($1, $2, $3)
			OR e.state = $4 AND e.pending_activity_id <> 0 AND a.kind = $5 AND a.state IN ('pending', 'running'))`,
		waitingStates[0], waitingStates[1], waitingStates[2], store.StateInactive, store.ActivityPrebuild)
	if err != nil {
		return 0, fmt.Errorf("find environments waiting for a job: %w", err)
	}
	type lost struct {
		id             int64
		keep, prebuild bool
	}
	var found []lost
	for rows.Next() {
		var id, pending int64
		var kind string
		if err := rows.Scan(&id, &pending, &kind); err != nil {
			rows.Close()
			return 0, err
		}
		if pending == 0 || !alive[pending] {
			found = append(found, lost{id, kind == store.ActivityStop, kind == store.ActivityPrebuild})
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	n := 0
	for _, l := range found {
		err := q.store.Tx(ctx, func(tx *sql.Tx) error {
			if err := q.lock(ctx, tx, l.id); err != nil {
				return err
			}
			env, err := store.GetEnvironmentByID(ctx, tx, l.id)
			if errors.Is(err, store.ErrNotFound) {
				return nil
			}
			if err != nil {
				return err
			}
			// Checked again inside the transaction: a job may have been
			// enqueued or finished since the listing.
			if alive, err := q.jobActivities(ctx); err != nil || (env.PendingActivityID != 0 && alive[env.PendingActivityID]) {
				return err
			}
			def, err := defaultBranchOf(ctx, tx, env)
			if err != nil {
				return err
			}
			o, err := q.transition(ctx, tx, &env, def, lifecycle.Input{Trigger: lifecycle.TriggerLost, Keep: l.keep, Prebuild: l.prebuild},
				record{Description: fmt.Sprintf("repair: the job of this environment's %s was gone; driven again", env.State)})
			if err == nil && o.Starts != "" {
				n++
			}
			return err
		})
		if err != nil {
			return n, fmt.Errorf("repair environment %d: %w", l.id, err)
		}
	}
	return n, nil
}

// jobActivities is the set of activities that have a deploy, remove or pause
// job still to run (or running), or a rollout whose deadline is to come.
func (q *Environments) jobActivities(ctx context.Context) (map[int64]bool, error) {
	rows, err := q.store.Reader().QueryContext(ctx, `SELECT `+argsText(q.store)+` FROM river_job
		WHERE kind IN ($1, $2, $3, $4, $5) AND state IN ('available', 'scheduled', 'running', 'retryable', 'pending')`,
		DeployArgs{}.Kind(), DeleteArgs{}.Kind(), PauseArgs{}.Kind(), PrebuildArgs{}.Kind(), RolloutDeadlineArgs{}.Kind())
	if err != nil {
		return nil, fmt.Errorf("list environment jobs: %w", err)
	}
	defer rows.Close()
	out := map[int64]bool{}
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			return nil, err
		}
		var args struct {
			ActivityID int64 `json:"activity_id"`
		}
		if json.Unmarshal(raw, &args) == nil && args.ActivityID != 0 {
			out[args.ActivityID] = true
		}
	}
	return out, rows.Err()
}

// Restart applies the restart trigger to every live environment when glenv
// starts, before jobs run: environments caught mid-deploy are deployed
// again (a new job; the interrupted one finds itself superseded), and the
// active ones are returned so the caller starts their apps from the builds
// on disk, outside any transaction.
func (q *Environments) Restart(ctx context.Context) ([]store.Environment, error) {
	rows, err := q.store.Reader().QueryContext(ctx, `SELECT id FROM environments WHERE deleted_at = 0 AND state IN ($1, $2)`,
		store.StateActive, store.StateDeploying)
	if err != nil {
		return nil, fmt.Errorf("find environments to restore: %w", err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rolling, err := q.rollingOut(ctx)
	if err != nil {
		return nil, err
	}
	var start []store.Environment
	var errs []error
	for _, id := range ids {
		if rolling[id] {
			// Applied before the restart and rolling out on the cluster:
			// the runtime's watch reports its end, its deadline job
			// still stands; deploying it again would only redo the work.
			continue
		}
		if q.deps.Placement != nil {
			// Several replicas: each restores only what it runs.
			mine, err := q.deps.Placement.Claim(ctx, id)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if !mine {
				continue
			}
		}
		env, o, err := q.Trigger(ctx, id, lifecycle.Input{Trigger: lifecycle.TriggerRestart},
			record{Description: "glenv restarted during the deploy: deploying again"})
		if err != nil {
			errs = append(errs, fmt.Errorf("restart environment %d: %w", id, err))
			continue
		}
		for _, e := range o.Effects {
			if e.Kind == lifecycle.EffectStartApp {
				start = append(start, env)
			}
		}
	}
	return start, errors.Join(errs...)
}

// rollingOut is the set of environments deploying whose pending activity has
// a rollout deadline to come (RolloutDeadlineArgs).
func (q *Environments) rollingOut(ctx context.Context) (map[int64]bool, error) {
	rows, err := q.store.Reader().QueryContext(ctx, `SELECT `+argsText(q.store)+` FROM river_job
		WHERE kind = $1 AND state IN ('available', 'scheduled', 'retryable', 'pending')`, RolloutDeadlineArgs{}.Kind())
	if err != nil {
		return nil, fmt.Errorf("list rollout deadlines: %w", err)
	}
	defer rows.Close()
	var deadlines []RolloutDeadlineArgs
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			return nil, err
		}
		var a RolloutDeadlineArgs
		if json.Unmarshal(raw, &a) == nil && a.ActivityID != 0 {
			deadlines = append(deadlines, a)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()
	out := map[int64]bool{}
	for _, a := range deadlines {
		env, err := store.GetEnvironmentByID(ctx, q.store.Reader(), a.EnvironmentID)
		if err == nil && rollingOut(env, a.ActivityID) {
			out[a.EnvironmentID] = true
		}
	}
	return out, nil
}

// argsText selects river_job.args as JSON text: River's SQLite driver stores
// them as SQLite's binary JSONB.
func argsText(s *store.Store) string {
	if s.Dialect == store.SQLite {
		return "json(args)"
	}
	return "args"
}
