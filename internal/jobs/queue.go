// Package jobs is glenv's environments service: every change of an
// environment's state goes through it (Environments.transition applies the
// lifecycle's state machine in one short transaction and enqueues the
// effects as River jobs), and its River workers carry the effects out:
// deliveries, deploys, removals, pauses, reconciles and the repair sweep.
// Decisions stay in internal/lifecycle. No runtime or GitLab call ever runs
// inside a database transaction here.
package jobs

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/glenv/glenv/internal/feedback"
	"github.com/glenv/glenv/internal/store"
)

// Environments is the environments service: River on glenv's database, with
// glenv's workers registered, and the only writer of environment states.
type Environments struct {
	River *river.Client[*sql.Tx]
	store *store.Store
	deps  Deps
	// jobTimeout is how long a job may run before its context ends.
	jobTimeout time.Duration
	// VariablesDebounce is how long a redeploy for changed variables waits
	// for more changes (default VariablesDebounce).
	VariablesDebounce time.Duration
	// local is told of the jobs glenv commits for this process's own
	// workers (nudge.go, route.go).
	local *localListener

	// Test seams of the delivery drain (drain.go): drainEnding runs in its
	// last transaction between its last look and its completion;
	// deliveryFault fails a delivery's processing; deliveryRetryBase is
	// the wait after a delivery's first failed attempt (default 1s).
	drainEnding func()
	// drainWake tells a running drain that an ack committed deliveries.
	drainWake chan struct{}
	// drainLikely is this process's belief that a drain job is waiting or
	// running (acceptPipelined): set when an ack found or inserted one,
	// cleared when this process's drain completes or a one-trip ack was
	// declined. A wrong belief costs one declined round trip, never a
	// stranded delivery: the one-trip check decides, not this.
	drainLikely atomic.Bool
	// fresh holds what this process acknowledged for the SQLite drain
	// to take instead of reading it back (fresh.go).
	fresh freshDeliveries
	// Acks is the webhook receiver's pressure: the drain yields to
	// acknowledgements in progress (yield.go). Set before Start; nil: no
	// receiver, no yielding.
	Acks Acks
	// ackYieldTest replaces ackYield in tests; drainYielded hears how each
	// yield ended: "none" (no wait), "idle", "floor" or "stop".
	ackYieldTest      time.Duration
	drainYielded      func(outcome string)
	deliveryFault     func(id int64) error
	deliveryRetryBase time.Duration
	// drainReadInTx has the SQLite drain read its batch inside its write
	// transaction, as PostgreSQL's does (the benchmark's baseline).
	drainReadInTx bool
}

// Queue is the environments service's former name.
//
// Deprecated: use Environments.
type Queue = Environments

// QueueConfig tunes the queue; zero values are production's.
type QueueConfig struct {
	ReconcileInterval time.Duration
	Workers           int
	Logger            *slog.Logger
	// RescueAfter is how long a job may stay "running" before River treats it
	// as lost (its process died) and runs it again (default 6m).
	RescueAfter time.Duration
	// RepairInterval is how often the repair sweep looks for environments
	// whose job is gone (default 1m; it also runs at start).
	RepairInterval time.Duration
	// PollInterval is how often River looks for jobs it was not told of
	// (default 50ms on SQLite, 1s on PostgreSQL).
	PollInterval time.Duration
	// FetchCooldown is the least time between two fetches of a queue, and
	// between two of River's insert NOTIFYs for one (default 5ms).
	FetchCooldown time.Duration
	// OwnQueue is this replica's own River queue, where the runtime jobs of
	// the environments it runs are sent (Deps.Placement); "" for none.
	OwnQueue string
	// ClientID names this process in River (its leader election shows
	// which replica leads); "" lets River make one up.
	ClientID string
}

func (q *Environments) insertTx(ctx context.Context, tx *sql.Tx, args river.JobArgs, opts *river.InsertOpts) error {
	_, err := q.InsertTx(ctx, tx, args, opts)
	if err != nil {
		return fmt.Errorf("enqueue %s job: %w", args.Kind(), err)
	}
	return nil
}

// notify queues a feedback sync for the environment in tx; while one is
// still waiting, River's uniqueness folds this one into it, so only the
// newest state reaches GitLab.
func (q *Environments) notify(ctx context.Context, tx *sql.Tx, envID int64) error {
	q.changed(tx, envID)
	if !q.deps.Feedback {
		return nil
	}
	return feedback.Notify(ctx, tx, q.River, envID)
}

// changed tells the dashboard of envID's change once tx commits.
func (q *Environments) changed(tx *sql.Tx, envID int64) {
	if q.deps.Changed != nil {
		changed := q.deps.Changed
		q.store.AfterCommit(tx, func() { changed(envID) })
	}
}

// pollInterval is how often River looks for new jobs it was not told of
// (nudge.go, route.go say how it is told). On SQLite each look takes the
// one writer, so less often. On PostgreSQL each replica is told of the
// jobs it queues for itself after the commit, of those other replicas
// queue for it through NOTIFY, and River's scheduler tells of the retries
// it makes available the same way: the poll is left with what nobody
// could tell (jobs a replica queued and died before working, a listener
// reconnecting), so a second will do. Each queue of each replica polls on
// its own: 100 ms cost one idle replica 32 ms of CPU a second (itself and
// its PostgreSQL backends), 1 s costs 11.5.
func pollInterval(s *store.Store) time.Duration {
	if s.Dialect == store.SQLite {
		return 50 * time.Millisecond
	}
	return time.Second
}

func deliveryWorkers(s *store.Store) int {
	if s.Dialect == store.SQLite {
		return 1
	}
	return 2
}

// newClient builds the River client over the store's driver, with a
// listener so that committed jobs are fetched at once (nudge.go).
func newClient(s *store.Store, workers *river.Workers, cfg QueueConfig, periodic []*river.PeriodicJob, yield func(context.Context)) (*river.Client[*sql.Tx], *localListener, error) {
	n := cfg.Workers
	if n == 0 {
		n = 8
	}
	rescue := rescueAfter(cfg)
	queues := map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: n},
		QueueDeliveries: {MaxWorkers: deliveryWorkers(s)}}
	if cfg.OwnQueue != "" {
		queues[cfg.OwnQueue] = river.QueueConfig{MaxWorkers: n}
	}
	rc := &river.Config{
		ID:           cfg.ClientID,
		Queues:       queues,
		Workers:      workers,
		PeriodicJobs: periodic,
		// River reports its own bookkeeping at info every few seconds; glenv's
		// log keeps River's warnings and errors only.
		Logger:            slog.New(atLeast{cfg.Logger.Handler(), slog.LevelWarn}),
		FetchCooldown:     cmp.Or(cfg.FetchCooldown, 5*time.Millisecond),
		FetchPollInterval: cmp.Or(cfg.PollInterval, pollInterval(s)),
		// Jobs stuck in "running" after a kill -9 are rescued and retried; a
		// delivery's processing is idempotent (see processDelivery).
		RescueStuckJobsAfter: rescue,
		JobTimeout:           jobTimeout(cfg),
		MaxAttempts:          25,
	}
	driver, listens, err := s.RiverListenDriver()
	if err != nil {
		return nil, nil, err
	}
	works := map[string]bool{}
	for name := range queues {
		works[name] = true
	}
	local := newLocalListener(works)
	if listens {
		// PostgreSQL: this process's jobs are told here after the commit,
		// other replicas' through NOTIFY (route.go).
		driver = routedDriver{Driver: driver, r: &router{local: local, afterCommit: s.AfterCommit}}
	} else {
		// SQLite: River hears glenv's own commits (nudge.go).
		driver = localDriver{Driver: driver, listener: local, yield: yield}
	}
	c, err := river.NewClient(driver, rc)
	return c, local, err
}

func rescueAfter(cfg QueueConfig) time.Duration {
	if cfg.RescueAfter == 0 {
		return 6 * time.Minute
	}
	return cfg.RescueAfter
}

// jobTimeout ends a job just before River would rescue it as lost, so a job
// never runs twice at once.
func jobTimeout(cfg QueueConfig) time.Duration { return rescueAfter(cfg) - time.Second }

// Start starts working jobs until Stop.
func (q *Environments) Start(ctx context.Context) error {
	if err := q.resumeDrain(ctx); err != nil {
		return err
	}
	return q.River.Start(ctx)
}

// Stop drains: running jobs finish (bounded by ctx), no new ones start.
func (q *Environments) Stop(ctx context.Context) error { return q.River.Stop(ctx) }

// CountJobs counts jobs of a kind in a state (for tests and metrics).
func (q *Environments) CountJobs(ctx context.Context, kind string, state rivertype.JobState) (int, error) {
	var n int
	err := q.store.Reader().QueryRowContext(ctx, `SELECT COUNT(*) FROM river_job WHERE kind = $1 AND state = $2`, kind, string(state)).Scan(&n)
	return n, err
}

// atLeast drops records below a level.
type atLeast struct {
	slog.Handler
	min slog.Level
}

func (h atLeast) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h atLeast) WithAttrs(a []slog.Attr) slog.Handler { return atLeast{h.Handler.WithAttrs(a), h.min} }
func (h atLeast) WithGroup(n string) slog.Handler      { return atLeast{h.Handler.WithGroup(n), h.min} }
