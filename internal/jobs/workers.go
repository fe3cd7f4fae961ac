package jobs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/riverqueue/river"

	"github.com/glenv/glenv/internal/activitylog"
	"github.com/glenv/glenv/internal/gitsha"
	"github.com/glenv/glenv/internal/lifecycle"
	"github.com/glenv/glenv/internal/runtime"
	"github.com/glenv/glenv/internal/store"
)

// ProcessDeliveryArgs asks for accepted webhook deliveries to be decided and
// applied, in order. Without ids it is the delivery drain (drain.go): the
// one job that processes every accepted delivery, inserted by the
// receiver's group commit when none is waiting or running. A job queued by
// an older glenv names the deliveries of its group commit in DeliveryIDs
// and processes just those, as it did.
type ProcessDeliveryArgs struct {
	DeliveryIDs []int64 `json:"delivery_ids,omitempty"`
}

func (ProcessDeliveryArgs) Kind() string { return "process_delivery" }

// QueueDeliveries is the River queue deliveries are processed on.
const QueueDeliveries = "deliveries"

// InsertOpts puts delivery jobs on their own queue: on SQLite it has one
// worker, since the database has one writer and more would only contend with
// the receiver's acknowledgements.
func (ProcessDeliveryArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueDeliveries}
}

// DeployArgs asks for an environment to be deployed at SHA.
type DeployArgs struct {
	EnvironmentID   int64  `json:"environment_id"`
	SHA             string `json:"sha"`
	ActivityID      int64  `json:"activity_id"`
	CloneParentData bool   `json:"clone_parent_data"`
	// ResetData drops the environment's data before the deploy clones its
	// parent's again (environment:sync --data).
	ResetData bool `json:"reset_data,omitempty"`
}

func (DeployArgs) Kind() string { return "deploy" }

// PauseArgs asks for a paused environment's app to be stopped, keeping its
// build and data.
type PauseArgs struct {
	EnvironmentID int64 `json:"environment_id"`
	ActivityID    int64 `json:"activity_id"`
}

func (PauseArgs) Kind() string { return "pause_environment" }

// DeleteArgs asks for an environment's runtime to be removed, and the
// environment then deleted (or kept inactive).
type DeleteArgs struct {
	EnvironmentID int64 `json:"environment_id"`
	ActivityID    int64 `json:"activity_id"`
	// KeepEnvironment stops the app but keeps the environment, inactive (deactivate).
	KeepEnvironment bool `json:"keep_environment,omitempty"`
}

func (DeleteArgs) Kind() string { return "delete_environment" }

// ReconcileArgs asks for one integration (or all, when empty) to be compared with GitLab.
type ReconcileArgs struct {
	Integration string `json:"integration"`
}

func (ReconcileArgs) Kind() string { return "reconcile" }

// Remote is what reconcile reads from GitLab.
type Remote interface {
	ListBranches(ctx context.Context, projectID int64) (map[string]string, error)
	ListTags(ctx context.Context, projectID int64) (map[string]string, error)
	ListOpenMergeRequests(ctx context.Context, projectID int64) ([]lifecycle.MergeRequest, error)
	// DefaultBranch is the project's default branch now.
	DefaultBranch(ctx context.Context, projectID int64) (string, error)
}

// Runtime builds and runs environments: internal/runtime, or RecordRuntime
// (--runtime record), which only records deploys.
type Runtime interface {
	// Deploy fetches, builds and starts req.SHA and returns once it serves
	// (or failed); a cancelled ctx means the deploy was superseded.
	Deploy(ctx context.Context, req DeployRequest) error
	// Remove stops the environment's processes and frees what it holds.
	Remove(ctx context.Context, env store.Environment, log func(string)) error
}

// DeployRequest is the runtime's request for one deploy (internal/runtime owns it).
type DeployRequest = runtime.DeployRequest

// Deps are what the workers need from outside the database.
type Deps struct {
	RemoteFor func(store.Integration) (Remote, error)
	// TokenFor opens an integration's GitLab token.
	TokenFor func(store.Integration) (string, error)
	Runtime  Runtime
	Logger   *slog.Logger
	// Logs batches activity logs (internal/activitylog); nil appends each
	// line at once.
	Logs *activitylog.Logs
	// Register adds more workers (feedback) to the queue.
	Register []func(*river.Workers)
	// Feedback queues a feedback.SyncArgs job whenever a deploy or delete
	// changes state (its worker must be among Register).
	Feedback bool
	// Changed hears, after the commit, of every environment whose state
	// changed (the dashboard's live updates); it must not block.
	Changed func(envID int64)
	// Placement sends an environment's deploy, pause and remove jobs to the
	// replica that runs it (several replicas with the process runtime:
	// internal/replica); nil lets any worker take them.
	Placement Placement
}

// Placement says where an environment's runtime jobs run.
type Placement interface {
	// Queue is the River queue of the replica that runs environment id,
	// made its owner inside tx when it has no live one.
	Queue(ctx context.Context, tx *sql.Tx, id int64) (string, error)
	// Claim reports whether this replica runs environment id at start: it
	// owns it, or it is the first to claim one that has no owner.
	Claim(ctx context.Context, id int64) (bool, error)
}

// NewQueue builds the queue and its workers.
func NewQueue(s *store.Store, deps Deps, cfg QueueConfig) (*Environments, error) {
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	if cfg.Logger == nil {
		cfg.Logger = deps.Logger
	}
	q := &Environments{store: s, deps: deps, jobTimeout: jobTimeout(cfg), drainWake: make(chan struct{}, 1)}
	workers := river.NewWorkers()
	river.AddWorker(workers, &deliveryWorker{q: q, deps: deps})
	river.AddWorker(workers, &deployWorker{q: q, deps: deps})
	river.AddWorker(workers, &deleteWorker{q: q, deps: deps})
	river.AddWorker(workers, &pauseWorker{q: q, deps: deps})
	river.AddWorker(workers, &prebuildWorker{q: q, deps: deps})
	river.AddWorker(workers, &repairWorker{q: q})
	river.AddWorker(workers, &rolloutDeadlineWorker{q: q, deps: deps})
	river.AddWorker(workers, &reconcileWorker{q: q, deps: deps})
	river.AddWorker(workers, &variablesRedeployWorker{q: q})
	for _, register := range deps.Register {
		register(workers)
	}
	periodic := []*river.PeriodicJob{repairJob(cfg.RepairInterval)}
	if cfg.ReconcileInterval > 0 {
		periodic = append(periodic, river.NewPeriodicJob(river.PeriodicInterval(cfg.ReconcileInterval),
			func() (river.JobArgs, *river.InsertOpts) {
				return ReconcileArgs{}, &river.InsertOpts{UniqueOpts: river.UniqueOpts{ByPeriod: cfg.ReconcileInterval}}
			},
			&river.PeriodicJobOpts{RunOnStart: false}))
	}
	c, local, err := newClient(s, workers, cfg, periodic, func(ctx context.Context) { q.riverYieldFor(ctx, riverYield) })
	if err != nil {
		return nil, err
	}
	q.River, q.local = c, local
	if ro, ok := deps.Runtime.(runtime.Rollouts); ok {
		// Deploys end when the runtime says their rollout did (rollout.go).
		ro.WatchRollouts(q.RolloutEnded)
	}
	return q, nil
}

type deliveryWorker struct {
	river.WorkerDefaults[ProcessDeliveryArgs]
	q    *Queue
	deps Deps
}

// Work decides and applies the deliveries a few per transaction; each is
// marked processed in the transaction that applies it and skipped once
// processed, so a job retried after a crash never applies one twice.
func (w *deliveryWorker) Work(ctx context.Context, job *river.Job[ProcessDeliveryArgs]) error {
	if len(job.Args.DeliveryIDs) == 0 {
		return w.drain(ctx, job)
	}
	ids := job.Args.DeliveryIDs
	for len(ids) > 0 {
		n := min(len(ids), perTx(w.q.store.Dialect))
		_, err := w.processBatch(ctx, ids[:n], false)
		if err != nil && ctx.Err() == nil {
			// Rare: one delivery of the batch failed. The whole
			// transaction was rolled back; redo it with each delivery
			// isolated, so that one is marked failed (or tried again
			// later) and the rest apply.
			var retry time.Duration
			if retry, err = w.processBatch(ctx, ids[:n], true); err == nil && retry > 0 {
				return river.JobSnooze(retry)
			}
		}
		if err != nil {
			return err
		}
		ids = ids[n:]
	}
	return nil
}

// processBatch processes ids in one transaction; isolated puts each in a
// savepoint of its own. Savepoints are not free (on SQLite every page a
// delivery changes is first copied to a statement journal: 11–16 % of a
// delivery's CPU), so they are only taken when a batch has to be redone.
// retry > 0 says a delivery failed and is to be tried again after retry;
// the ones before it are committed.
func (w *deliveryWorker) processBatch(ctx context.Context, ids []int64, isolated bool) (retry time.Duration, err error) {
	err = w.q.store.TxDeferrable(ctx, func(tx *sql.Tx) error {
		var err error
		retry, err = w.processIn(ctx, tx, ids, nil, nil, isolated)
		return err
	})
	return retry, err
}

// processIn processes ids in tx, in order; ds, when not nil, are those
// deliveries already read (and locked) in tx.
func (w *deliveryWorker) processIn(ctx context.Context, tx *sql.Tx, ids []int64, ds map[int64]store.Delivery, parsed map[int64]parsedEvent, isolated bool) (time.Duration, error) {
	if isolated || ds == nil {
		// On PostgreSQL a job of an older glenv and the drain may hold the
		// same deliveries: the second to lock them sees them processed.
		if err := store.LockDeliveries(ctx, tx, w.q.store.Dialect, ids); err != nil {
			return 0, err
		}
	}
	if isolated {
		for _, id := range ids {
			if retry, err := w.processIsolated(ctx, tx, id); err != nil || retry > 0 {
				return retry, err
			}
		}
		return 0, nil
	}
	if ds == nil {
		var err error
		if ds, err = store.GetDeliveries(ctx, tx, ids); err != nil {
			return 0, err
		}
	}
	// The batch's deliveries share what deliveryBatch holds (batch.go):
	// their integration's row, read once (a default branch moved by one of
	// them is updated in it), their parsed events, their environments read
	// and locked with one statement, and the activities written at the
	// end. Not when isolated: a rolled-back savepoint would leave it stale.
	b, err := newDeliveryBatch(ctx, tx, w.q, ds, parsed)
	if err != nil {
		return 0, err
	}
	// Outcomes are written together at the end: one statement (one
	// round trip on PostgreSQL) for the batch instead of one each.
	var done []store.Outcome
	for _, id := range ids {
		d, ok := ds[id]
		if !ok {
			continue // gone (retention): nothing to do
		}
		result, err := w.processOne(ctx, tx, &d, b)
		if err != nil {
			return 0, fmt.Errorf("delivery %d: %w", id, err)
		}
		if d.Status == store.DeliveryAccepted {
			done = append(done, store.Outcome{ID: id, Status: store.DeliveryProcessed, Result: result})
		}
	}
	if err := b.flush(ctx, tx); err != nil {
		return 0, err
	}
	return 0, store.FinishDeliveries(ctx, tx, done)
}

// processOne is processInBatch, after the test's fault when it set one;
// b is nil for a delivery processed alone.
func (w *deliveryWorker) processOne(ctx context.Context, tx *sql.Tx, d *store.Delivery, b *deliveryBatch) (string, error) {
	if fault := w.q.deliveryFault; fault != nil && d.Status == store.DeliveryAccepted {
		if err := fault(d.ID); err != nil {
			return "", err
		}
	}
	if b == nil {
		b = &deliveryBatch{}
	}
	return w.processInBatch(ctx, tx, d, b)
}

// deliveriesPerTx bounds how long processing holds SQLite's one writer, so
// acknowledgements waiting for it are not delayed much.
const deliveriesPerTx = 8

// processIsolated processes one delivery inside a savepoint. A delivery that
// can never apply (its environment's host is taken by another, a slug
// collision) is rolled back alone and marked failed with the reason, so it
// does not hold back the deliveries after it. One that fails otherwise is
// rolled back alone too, its attempt counted, and tried again after the
// returned delay (the drain waits for it: order matters), until
// maxDeliveryAttempts, when it is marked failed with the reason. An error
// returned means the transaction itself failed.
func (w *deliveryWorker) processIsolated(ctx context.Context, tx *sql.Tx, id int64) (time.Duration, error) {
	if _, err := tx.ExecContext(ctx, `SAVEPOINT delivery`); err != nil {
		return 0, err
	}
	d, err := store.GetDelivery(ctx, tx, id)
	if errors.Is(err, store.ErrNotFound) {
		_, err = tx.ExecContext(ctx, `RELEASE SAVEPOINT delivery`)
		return 0, err
	}
	if err == nil && d.Status == store.DeliveryAccepted {
		var result string
		if result, err = w.processOne(ctx, tx, &d, nil); err == nil {
			err = store.FinishDelivery(ctx, tx, id, store.DeliveryProcessed, result)
		}
	}
	if err != nil && ctx.Err() != nil {
		return 0, err
	}
	var retry time.Duration
	if err != nil {
		if _, rerr := tx.ExecContext(ctx, `ROLLBACK TO SAVEPOINT delivery`); rerr != nil {
			return 0, rerr
		}
		if errors.Is(err, store.ErrConflict) {
			w.deps.Logger.Warn("delivery cannot be applied", "delivery", id, "err", err)
			err = store.FinishDelivery(ctx, tx, id, store.DeliveryFailed, err.Error()+": rename the branch, or delete the environment that holds the host")
		} else {
			retry, err = w.failedAttempt(ctx, tx, id, err)
		}
	}
	if err != nil {
		return 0, err
	}
	_, err = tx.ExecContext(ctx, `RELEASE SAVEPOINT delivery`)
	return retry, err
}

// failedAttempt records in tx that processing delivery id failed with
// cause, and returns how long to wait before the next attempt, or 0 once
// the delivery is marked failed for good.
func (w *deliveryWorker) failedAttempt(ctx context.Context, tx *sql.Tx, id int64, cause error) (time.Duration, error) {
	n, err := store.RecordDeliveryAttempt(ctx, tx, id, fmt.Sprintf("processing failed, to be tried again: %v", cause))
	if err != nil {
		return 0, err
	}
	if n >= maxDeliveryAttempts {
		w.deps.Logger.Error("delivery failed for good", "delivery", id, "attempts", n, "err", cause)
		return 0, store.FinishDelivery(ctx, tx, id, store.DeliveryFailed,
			fmt.Sprintf("processing failed %d times, the last with: %v; the deliveries after it went on. Look for the cause in glenv's log, then push again or run `glenv environment:sync`", n, cause))
	}
	retry := w.q.deliveryRetry(n)
	w.deps.Logger.Warn("delivery processing failed; trying again", "delivery", id, "attempt", n, "retry_in", retry, "err", cause)
	return retry, nil
}

// processInBatch decides and applies one accepted delivery, read in tx,
// and returns its result for the caller to record, as one of batch b (an
// empty one when alone), using what b already read and parsed.
func (w *deliveryWorker) processInBatch(ctx context.Context, tx *sql.Tx, d *store.Delivery, b *deliveryBatch) (string, error) {
	{
		if d.Status != store.DeliveryAccepted {
			return "", nil
		}
		ins, later := b.ins, b.later
		result := ""
		in, err := w.integration(ctx, tx, d.IntegrationName, ins)
		switch {
		case errors.Is(err, store.ErrNotFound):
			result = "integration deleted before the delivery was processed: no effect"
		case err != nil:
			return "", err
		default:
			var ev lifecycle.Event
			var perr error
			if p, ok := b.event(d.ID); ok {
				ev, perr = p.ev, p.err
			} else {
				p := parseDelivery(d)
				ev, perr = p.ev, p.err
			}
			if perr != nil {
				result = "payload not understood: " + perr.Error()
				break
			}
			if ev.Kind != lifecycle.KindOther && (ev.ProjectID == 0 || ev.ProjectID == in.ProjectID) {
				if ev.DefaultBranch != "" && ev.DefaultBranch != in.DefaultBranch {
					// It may rewrite environments: the queued ones first.
					if err := later.flush(ctx, tx); err != nil {
						return "", err
					}
				}
				if moved, err := refreshDefaultBranch(ctx, tx, &in, ev.DefaultBranch); err != nil {
					return "", err
				} else if moved {
					b.forgetAll(in.Name)
					if ins != nil {
						ins[in.Name] = &in
					}
					w.deps.Logger.Info("default branch changed", "integration", in.Name, "default_branch", in.DefaultBranch)
				}
			}
			var envs map[string]lifecycle.Env
			var known map[string]*store.Environment
			if name := eventEnvName(ev); name == "" {
				envs = map[string]lifecycle.Env{}
			} else if row, ok := b.take(in.Name, name); ok {
				envs, known = knownEnv(name, row)
			} else if err = later.flush(ctx, tx); err != nil {
				return "", err
			} else if envs, known, err = eventEnvs(ctx, tx, w.q.store.Dialect, in.Name, ev); err != nil {
				return "", err
			}
			actions := lifecycle.Decide(ev, Options(in), envs)
			b.forget(in.Name, actions)
			applied, err := w.q.applyKnown(ctx, tx, in, actions, d.ID, known, later)
			if err != nil {
				return "", fmt.Errorf("apply: %w", err)
			}
			result = applied.String()
		}
		w.deps.Logger.Debug("delivery processed", "delivery", d.ID, "integration", d.IntegrationName, "result", result)
		return result, nil
	}
}

// integration reads an integration by name, from ins when it holds it.
func (w *deliveryWorker) integration(ctx context.Context, tx *sql.Tx, name string, ins map[string]*store.Integration) (store.Integration, error) {
	if in, ok := ins[name]; ok {
		return *in, nil
	}
	in, err := store.GetIntegration(ctx, tx, name)
	if err == nil && ins != nil {
		ins[name] = &in
	}
	return in, err
}

// eventEnvs loads the one environment an event can concern (tombstone
// included): deciding never needs the others, and loading all of them would
// make every delivery cost O(environments). It reads the row locked, as
// Apply would (store.LockEnvironment), and returns it in known (nil: no
// such row) so that Apply does not read it again.
func eventEnvs(ctx context.Context, q store.Querier, d store.Dialect, integration string, ev lifecycle.Event) (map[string]lifecycle.Env, map[string]*store.Environment, error) {
	name := eventEnvName(ev)
	if name == "" {
		return map[string]lifecycle.Env{}, nil, nil
	}
	e, err := store.LockEnvironment(ctx, q, d, integration, name)
	if errors.Is(err, store.ErrNotFound) {
		envs, known := knownEnv(name, nil)
		return envs, known, nil
	}
	if err != nil {
		return nil, nil, err
	}
	envs, known := knownEnv(name, &e)
	return envs, known, nil
}

// knownEnv is what deciding and applying need of the row read for name
// (nil: none).
func knownEnv(name string, row *store.Environment) (map[string]lifecycle.Env, map[string]*store.Environment) {
	out := map[string]lifecycle.Env{}
	if row != nil {
		out[name] = toLifecycle(*row)
	}
	return out, map[string]*store.Environment{name: row}
}

type reconcileWorker struct {
	river.WorkerDefaults[ReconcileArgs]
	q    *Queue
	deps Deps
}

func (w *reconcileWorker) Timeout(*river.Job[ReconcileArgs]) time.Duration { return 5 * time.Minute }

// Work compares GitLab's branches, tags and open merge requests with the
// integration's environments and repairs the difference. With no
// integration named it fans out one job per integration.
func (w *reconcileWorker) Work(ctx context.Context, job *river.Job[ReconcileArgs]) error {
	s := w.q.store
	if job.Args.Integration == "" {
		ins, err := store.ListIntegrations(ctx, s.Reader())
		if err != nil {
			return err
		}
		for _, in := range ins {
			if _, err := w.q.River.Insert(ctx, ReconcileArgs{Integration: in.Name}, &river.InsertOpts{
				UniqueOpts: river.UniqueOpts{ByArgs: true, ByPeriod: time.Minute}}); err != nil {
				return err
			}
		}
		return nil
	}
	_, err := w.q.ReconcileNow(ctx, job.Args.Integration)
	return err
}

// ReconcileNow brings one integration's environments in line with GitLab now.
func (q *Environments) ReconcileNow(ctx context.Context, integration string) (Applied, error) {
	s, deps := q.store, q.deps
	in, err := store.GetIntegration(ctx, s.Reader(), integration)
	if errors.Is(err, store.ErrNotFound) {
		return Applied{}, nil
	}
	if err != nil {
		return Applied{}, err
	}
	// Snapshot the environments BEFORE listing GitLab, so the listing is never
	// older than what it is compared with; environments that change while we
	// list are left alone (the next reconcile sees them).
	snapshot, before, err := LifecycleEnvs(ctx, s.Reader(), in.Name)
	if err != nil {
		return Applied{}, err
	}
	remote, err := deps.RemoteFor(in)
	if err != nil {
		return Applied{}, err
	}
	defaultBranch, err := remote.DefaultBranch(ctx, in.ProjectID)
	if err != nil {
		return Applied{}, err
	}
	var rs lifecycle.RemoteState
	if rs.Branches, err = remote.ListBranches(ctx, in.ProjectID); err != nil {
		return Applied{}, err
	}
	// Options gate creation only: the listings the existing environments
	// need are read even when their option is off (lifecycle.Listings).
	opt := Options(in)
	opt.DefaultBranch = defaultBranch
	rs.MergeRequestsListed, rs.TagsListed = lifecycle.Listings(opt, snapshot)
	if rs.TagsListed {
		if rs.Tags, err = remote.ListTags(ctx, in.ProjectID); err != nil {
			return Applied{}, err
		}
	}
	if rs.MergeRequestsListed {
		if rs.OpenMRs, err = remote.ListOpenMergeRequests(ctx, in.ProjectID); err != nil {
			return Applied{}, err
		}
	}
	var applied Applied
	err = s.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := refreshDefaultBranch(ctx, tx, &in, defaultBranch); err != nil {
			return err
		}
		_, now, err := LifecycleEnvs(ctx, tx, in.Name)
		if err != nil {
			return err
		}
		var actions []lifecycle.Action
		for _, a := range lifecycle.Reconcile(opt, rs, snapshot) {
			if b, c := before[a.Env], now[a.Env]; b.ID != c.ID || !b.UpdatedAt.Equal(c.UpdatedAt) {
				continue
			}
			actions = append(actions, a)
		}
		applied, err = q.Apply(ctx, tx, in, actions, 0)
		return err
	})
	if err == nil && len(applied.Changed) > 0 {
		deps.Logger.Info("reconciled", "integration", in.Name, "changes", len(applied.Changed))
	}
	return applied, err
}

// RecordRuntime runs no code (--runtime record): a deploy is recorded as
// done and a removal as finished.
type RecordRuntime struct{}

func (RecordRuntime) Deploy(ctx context.Context, req DeployRequest) error {
	req.Log(fmt.Sprintf("%s recorded %s at %s (no runtime configured yet)\n", time.Now().UTC().Format(time.RFC3339), req.Env.Name, gitsha.Short(req.SHA)))
	return nil
}

func (RecordRuntime) Remove(ctx context.Context, env store.Environment, log func(string)) error {
	log(fmt.Sprintf("%s removed %s\n", time.Now().UTC().Format(time.RFC3339), env.Name))
	return nil
}
