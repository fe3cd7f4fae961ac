package jobs

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"github.com/glenv/glenv/internal/runtime"
	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/store/storetest"
)

// rollingRuntime is a runtime whose deploys roll out on their own
// (runtime.Rollouts), in the state the test sets.
type rollingRuntime struct {
	*fakeRuntime
	done    bool
	failure string
}

func (r *rollingRuntime) WatchRollouts(func(context.Context, runtime.RolloutEnd) error) {}

func (r *rollingRuntime) RolloutState(context.Context, store.Environment) (bool, string, error) {
	return r.done, r.failure, nil
}

func TestRolloutsEndThroughTheStateMachine(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		w := newWorld(t, s)
		rr := &rollingRuntime{fakeRuntime: w.rt}
		w.q.deps.Runtime = rr
		w.env("main", "branch", store.StateActive, 0)
		w.rt.fail = runtime.ErrRollingOut

		rolling := func(name string) (store.Environment, DeployArgs) {
			t.Helper()
			e := w.env(name, "branch", store.StateActive, 0)
			if _, err := w.q.Operate(ctx, e.ID, OpRedeploy); err != nil {
				t.Fatal(err)
			}
			d := jobsOf[DeployArgs](w)
			w.discardJobs()
			a := d[len(d)-1]
			if err := w.deploy(ctx, a); err != nil {
				t.Fatal(err)
			}
			return w.get(e.ID), a
		}
		deadline := func(a DeployArgs) error {
			t.Helper()
			ds := jobsOf[RolloutDeadlineArgs](w)
			if len(ds) != 1 || ds[0].ActivityID != a.ActivityID || ds[0].Timeout != w.q.jobTimeout {
				t.Fatalf("rollout deadline jobs %+v, want one for activity %d after %s", ds, a.ActivityID, w.q.jobTimeout)
			}
			return (&rolloutDeadlineWorker{q: w.q, deps: w.q.deps}).Work(ctx, jobFor(ds[0]))
		}

		t.Run("a deploy handed to the cluster leaves the environment deploying, with its deadline scheduled", func(t *testing.T) {
			e, a := rolling("handed")
			wantState(t, e, store.StateDeploying)
			if e.PendingActivityID != a.ActivityID {
				t.Fatalf("pending activity %d, want %d", e.PendingActivityID, a.ActivityID)
			}
			ds := jobsOf[RolloutDeadlineArgs](w)
			if len(ds) != 1 || ds[0].EnvironmentID != e.ID {
				t.Fatalf("rollout deadline jobs %+v", ds)
			}
			var at time.Time
			if err := s.Reader().QueryRowContext(ctx, `SELECT scheduled_at FROM river_job WHERE kind = $1`, RolloutDeadlineArgs{}.Kind()).Scan(&at); err == nil && time.Until(at) < w.q.jobTimeout-time.Minute {
				t.Errorf("deadline scheduled at %s, want about %s from now", at, w.q.jobTimeout)
			}
			// The repair sweep and a restart leave it to its rollout.
			if n, err := w.q.Repair(ctx); err != nil || n != 0 {
				t.Fatalf("repair re-drove %d (%v), want none: the rollout's deadline stands", n, err)
			}
			if _, err := w.q.Restart(ctx); err != nil {
				t.Fatal(err)
			}
			if got := w.get(e.ID); got.State != store.StateDeploying || got.PendingActivityID != a.ActivityID {
				t.Fatalf("after a restart %+v, want still rolling out activity %d", got, a.ActivityID)
			}
			w.discardJobs()
		})
		t.Run("the rollout's end makes the environment active, once", func(t *testing.T) {
			e, a := rolling("ends")
			w.discardJobs()
			end := runtime.RolloutEnd{EnvironmentID: e.ID, ActivityID: a.ActivityID, SHA: a.SHA}
			for range 2 {
				if err := w.q.RolloutEnded(ctx, end); err != nil {
					t.Fatal(err)
				}
			}
			got := w.get(e.ID)
			if got.State != store.StateActive || got.DeployedSHA != a.SHA || got.PendingActivityID != 0 {
				t.Fatalf("after the end %+v", got)
			}
			if act := w.act(a.ActivityID); act.State != store.ActivityComplete {
				t.Fatalf("activity %+v, want complete (a second report changes nothing)", act)
			}
		})
		t.Run("an end reported for a superseded deploy touches neither the environment nor the newer deploy", func(t *testing.T) {
			e, old := rolling("superseded")
			if _, err := w.q.Operate(ctx, e.ID, OpRedeploy); err != nil {
				t.Fatal(err)
			}
			w.discardJobs()
			newer := w.get(e.ID).PendingActivityID
			if err := w.q.RolloutEnded(ctx, runtime.RolloutEnd{EnvironmentID: e.ID, ActivityID: old.ActivityID, SHA: old.SHA}); err != nil {
				t.Fatal(err)
			}
			got := w.get(e.ID)
			if got.State != store.StateBuilding || got.PendingActivityID != newer {
				t.Fatalf("after a stale end %+v, want building for activity %d", got, newer)
			}
			if act := w.act(newer); act.State != store.ActivityPending {
				t.Fatalf("the newer deploy's activity %+v, want pending", act)
			}
		})
		t.Run("a rollout still going at its deadline fails with a message", func(t *testing.T) {
			e, a := rolling("late")
			if err := deadline(a); err != nil {
				t.Fatal(err)
			}
			wantState(t, w.get(e.ID), store.StateFailed)
			if act := w.act(a.ActivityID); act.State != store.ActivityFailed || !strings.Contains(act.Result, "did not become Available within its deadline") {
				t.Fatalf("activity %+v", act)
			}
			w.discardJobs()
		})
		t.Run("a rollout that ended unseen is found at its deadline", func(t *testing.T) {
			rr.done = true
			defer func() { rr.done = false }()
			e, a := rolling("unseen")
			if err := deadline(a); err != nil {
				t.Fatal(err)
			}
			if got := w.get(e.ID); got.State != store.StateActive || got.DeployedSHA != a.SHA {
				t.Fatalf("after the deadline %+v, want active", got)
			}
			w.discardJobs()
		})
		t.Run("a deadline after the end changes nothing", func(t *testing.T) {
			e, a := rolling("on time")
			if err := w.q.RolloutEnded(ctx, runtime.RolloutEnd{EnvironmentID: e.ID, ActivityID: a.ActivityID, SHA: a.SHA}); err != nil {
				t.Fatal(err)
			}
			if err := deadline(a); err != nil {
				t.Fatal(err)
			}
			wantState(t, w.get(e.ID), store.StateActive)
			w.discardJobs()
		})
	})
}

var _ river.JobArgs = RolloutDeadlineArgs{}
