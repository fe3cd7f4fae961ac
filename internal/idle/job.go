package idle

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/glenv/glenv/internal/store"
)

// Pauser pauses an idle environment through the state machine
// (jobs.Environments.PauseIdle).
type Pauser interface {
	PauseIdle(ctx context.Context, id int64, idleFor time.Duration) (bool, error)
}

// Checker finds idle environments and pauses them.
type Checker struct {
	Store  *store.Store
	Visits *Visits
	Pauser Pauser
	Log    *slog.Logger
	// Now is the clock (time.Now when nil); tests move it.
	Now func() time.Time
}

// Run makes one pass and returns the environments it paused.
func (c *Checker) Run(ctx context.Context) ([]int64, error) {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	cands, err := store.IdleCandidates(ctx, c.Store.Reader())
	if err != nil {
		return nil, fmt.Errorf("list environments that may be idle: %w", err)
	}
	var last func(string) time.Time
	if c.Visits != nil {
		last = c.Visits.Last
	}
	var paused []int64
	for _, p := range Decide(now(), cands, last) {
		ok, err := c.Pauser.PauseIdle(ctx, p.EnvironmentID, p.IdleFor)
		if err != nil {
			// One environment's trouble does not keep the others running.
			if c.Log != nil {
				c.Log.Warn("pause idle environment", "environment_id", p.EnvironmentID, "err", err)
			}
			continue
		}
		if ok {
			paused = append(paused, p.EnvironmentID)
		}
	}
	return paused, nil
}

// Args is the periodic idle check.
type Args struct{}

// Kind names the job.
func (Args) Kind() string { return "pause_idle_environments" }

type worker struct {
	river.WorkerDefaults[Args]
	c *Checker
}

func (w *worker) Work(ctx context.Context, _ *river.Job[Args]) error {
	_, err := w.c.Run(ctx)
	return err
}

// Register adds the idle check's worker.
func Register(c *Checker) func(*river.Workers) {
	return func(w *river.Workers) { river.AddWorker(w, &worker{c: c}) }
}

// Interval is how often the idle check runs: pause-after is at least a
// minute, and visits are written once a minute.
const Interval = time.Minute

// PeriodicJobs runs the idle check every Interval, one at a time (a check
// still waiting or running absorbs the next).
func PeriodicJobs() []*river.PeriodicJob {
	return []*river.PeriodicJob{river.NewPeriodicJob(river.PeriodicInterval(Interval),
		func() (river.JobArgs, *river.InsertOpts) {
			// Once per interval across replicas too (a new River leader
			// schedules its own next run): completed jobs of the interval count.
			return Args{}, &river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true, ByPeriod: Interval, ByState: []rivertype.JobState{
				rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning,
				rivertype.JobStateRetryable, rivertype.JobStateScheduled, rivertype.JobStateCompleted}}}
		}, nil)}
}
