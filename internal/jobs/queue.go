// Package jobs carries out what the lifecycle decides, as River jobs: it
// applies actions to environments (records, activities, follow-up jobs) and
// runs the workers for deliveries, deploys, deletes and reconciles. Decisions
// stay in internal/lifecycle; this package only does them.
package jobs

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/glenv/glenv/internal/feedback"
	"github.com/glenv/glenv/internal/store"
)

// Queue is River on glenv's database, with glenv's workers registered.
type Queue struct {
	River *river.Client[*sql.Tx]
	store *store.Store
	deps  Deps
}

// QueueConfig tunes the queue; zero values are production's.
type QueueConfig struct {
	ReconcileInterval time.Duration
	Workers           int
	Logger            *slog.Logger
	// RescueAfter is how long a job may stay "running" before River treats it
	// as lost (its process died) and runs it again (default 6m).
	RescueAfter time.Duration
}

func (q *Queue) insertTx(ctx context.Context, tx *sql.Tx, args river.JobArgs, opts *river.InsertOpts) error {
	_, err := q.River.InsertTx(ctx, tx, args, opts)
	if err != nil {
		return fmt.Errorf("enqueue %s job: %w", args.Kind(), err)
	}
	return nil
}

// notify queues a feedback sync for the environment in tx; while one is
// still waiting, River's uniqueness folds this one into it, so only the
// newest state reaches GitLab.
func (q *Queue) notify(ctx context.Context, tx *sql.Tx, envID int64) error {
	if !q.deps.Feedback {
		return nil
	}
	return feedback.Notify(ctx, tx, q.River, envID)
}

// pollInterval is how often River looks for new jobs (it cannot LISTEN over
// database/sql). On SQLite each look takes the one writer, so less often.
func pollInterval(s *store.Store) time.Duration {
	if s.Dialect == store.SQLite {
		return 50 * time.Millisecond
	}
	return 10 * time.Millisecond
}

func deliveryWorkers(s *store.Store) int {
	if s.Dialect == store.SQLite {
		return 1
	}
	return 2
}

// newClient builds the River client over the store's driver.
func newClient(s *store.Store, workers *river.Workers, cfg QueueConfig, periodic []*river.PeriodicJob) (*river.Client[*sql.Tx], error) {
	n := cfg.Workers
	if n == 0 {
		n = 8
	}
	rescue := cfg.RescueAfter
	if rescue == 0 {
		rescue = 6 * time.Minute
	}
	rc := &river.Config{
		Queues: map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: n},
			QueueDeliveries: {MaxWorkers: deliveryWorkers(s)}},
		Workers:      workers,
		PeriodicJobs: periodic,
		// River reports its own bookkeeping at info every few seconds; glenv's
		// log keeps River's warnings and errors only.
		Logger:            slog.New(atLeast{cfg.Logger.Handler(), slog.LevelWarn}),
		FetchCooldown:     5 * time.Millisecond,
		FetchPollInterval: pollInterval(s),
		// Jobs stuck in "running" after a kill -9 are rescued and retried; a
		// delivery's processing is idempotent (see processDelivery).
		RescueStuckJobsAfter: rescue,
		JobTimeout:           rescue - time.Second,
		MaxAttempts:          25,
	}
	if s.Dialect == store.SQLite {
		// River's SQLite driver is poll-only: no LISTEN/NOTIFY.
		rc.PollOnly = true
	} else {
		// database/sql cannot LISTEN; River polls, tuned short above.
		rc.PollOnly = true
	}
	return river.NewClient(s.RiverDriver(), rc)
}

// Start starts working jobs until Stop.
func (q *Queue) Start(ctx context.Context) error { return q.River.Start(ctx) }

// Stop drains: running jobs finish (bounded by ctx), no new ones start.
func (q *Queue) Stop(ctx context.Context) error { return q.River.Stop(ctx) }

// CountJobs counts jobs of a kind in a state (for tests and metrics).
func (q *Queue) CountJobs(ctx context.Context, kind string, state rivertype.JobState) (int, error) {
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
