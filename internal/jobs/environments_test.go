package jobs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/glenv/glenv/internal/lifecycle"
	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/store/storetest"
)

// Requests people make, through Operate: each is one short transaction
// that changes the state and enqueues the work, and calls no runtime.
func TestRequestsGoThroughTheStateMachine(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		w := newWorld(t, s)
		w.env("main", "branch", store.StateActive, 0)

		t.Run("activate builds an inactive environment with its parent's data", func(t *testing.T) {
			e := w.env("idle", "branch", store.StateInactive, 0)
			got, err := w.q.Operate(ctx, e.ID, OpActivate)
			if err != nil {
				t.Fatal(err)
			}
			wantState(t, got, store.StateBuilding)
			d := jobsOf[DeployArgs](w)
			if len(d) != 1 || d[0].EnvironmentID != e.ID || !d[0].CloneParentData || d[0].ResetData || d[0].ActivityID != got.PendingActivityID {
				t.Fatalf("deploy jobs %+v, pending %d", d, got.PendingActivityID)
			}
			if a := w.act(got.PendingActivityID); a.Kind != store.ActivityDeploy || a.State != store.ActivityPending || a.SHA != shaB {
				t.Fatalf("activity %+v", a)
			}
			w.discardJobs()
		})
		t.Run("sync data enqueues a deploy that resets the data, and touches no runtime in the request", func(t *testing.T) {
			e := w.env("synced", "branch", store.StateActive, 0)
			got, err := w.q.Operate(ctx, e.ID, OpSyncData)
			if err != nil {
				t.Fatal(err)
			}
			wantState(t, got, store.StateBuilding)
			if d := jobsOf[DeployArgs](w); len(d) != 1 || !d[0].ResetData || !d[0].CloneParentData {
				t.Fatalf("deploy jobs %+v", d)
			}
			if calls := w.rt.Calls(); len(calls) != 0 {
				t.Fatalf("the request called the runtime: %v", calls)
			}
			w.discardJobs()
		})
		t.Run("sync data during a deploy supersedes it and cancels its activity", func(t *testing.T) {
			e := w.env("busy", "branch", store.StateDeploying, 0)
			old := w.activity(e, store.ActivityDeploy)
			if _, err := s.DB.ExecContext(ctx, `UPDATE environments SET pending_activity_id = $1 WHERE id = $2`, old, e.ID); err != nil {
				t.Fatal(err)
			}
			got, err := w.q.Operate(ctx, e.ID, OpSyncData)
			if err != nil {
				t.Fatal(err)
			}
			if got.PendingActivityID == old || w.act(old).State != store.ActivityCancelled {
				t.Fatalf("pending %d (old %d), old activity %+v", got.PendingActivityID, old, w.act(old))
			}
			w.discardJobs()
		})
		t.Run("redeploy rebuilds an active environment", func(t *testing.T) {
			e := w.env("again", "branch", store.StateFailed, 0)
			got, err := w.q.Operate(ctx, e.ID, OpRedeploy)
			if err != nil {
				t.Fatal(err)
			}
			wantState(t, got, store.StateBuilding)
			if d := jobsOf[DeployArgs](w); len(d) != 1 || d[0].CloneParentData {
				t.Fatalf("deploy jobs %+v", d)
			}
			w.discardJobs()
		})
		t.Run("deactivate stops the app and keeps the environment", func(t *testing.T) {
			e := w.env("off", "branch", store.StateActive, 0)
			got, err := w.q.Operate(ctx, e.ID, OpDeactivate)
			if err != nil {
				t.Fatal(err)
			}
			wantState(t, got, store.StateStopping)
			if d := jobsOf[DeleteArgs](w); len(d) != 1 || !d[0].KeepEnvironment || w.act(d[0].ActivityID).Kind != store.ActivityStop {
				t.Fatalf("remove jobs %+v", d)
			}
			w.discardJobs()
		})
		t.Run("delete goes through stopping", func(t *testing.T) {
			e := w.env("bye", "branch", store.StateActive, 0)
			got, err := w.q.Operate(ctx, e.ID, OpDelete)
			if err != nil {
				t.Fatal(err)
			}
			wantState(t, got, store.StateStopping)
			if d := jobsOf[DeleteArgs](w); len(d) != 1 || d[0].KeepEnvironment || w.act(d[0].ActivityID).Kind != store.ActivityDelete {
				t.Fatalf("remove jobs %+v", d)
			}
			w.discardJobs()
		})
		t.Run("pause stops the app and resume deploys it again", func(t *testing.T) {
			e := w.env("nap", "branch", store.StateActive, 0)
			got, err := w.q.Operate(ctx, e.ID, OpPause)
			if err != nil {
				t.Fatal(err)
			}
			wantState(t, got, store.StatePaused)
			p := jobsOf[PauseArgs](w)
			if len(p) != 1 {
				t.Fatalf("pause jobs %+v", p)
			}
			if err := (&pauseWorker{q: w.q, deps: w.q.deps}).Work(ctx, jobFor(p[0])); err != nil {
				t.Fatal(err)
			}
			if e := w.get(e.ID); e.PendingActivityID != 0 || w.act(p[0].ActivityID).State != store.ActivityComplete {
				t.Fatalf("after the pause job: pending %d, activity %+v", e.PendingActivityID, w.act(p[0].ActivityID))
			}
			got, err = w.q.Operate(ctx, e.ID, OpResume)
			if err != nil {
				t.Fatal(err)
			}
			wantState(t, got, store.StateBuilding)
			w.discardJobs()
		})
		t.Run("a visit wakes a paused environment and no other", func(t *testing.T) {
			paused := w.env("asleep", "branch", store.StatePaused, 0)
			active := w.env("awake", "branch", store.StateActive, 0)
			if woke, err := w.q.Wake(ctx, paused.ID); err != nil || !woke {
				t.Fatalf("wake a paused environment: %v %v", woke, err)
			}
			if woke, err := w.q.Wake(ctx, active.ID); err != nil || woke {
				t.Fatalf("wake an active environment: %v %v", woke, err)
			}
			wantState(t, w.get(paused.ID), store.StateBuilding)
			wantState(t, w.get(active.ID), store.StateActive)
			if d := jobsOf[DeployArgs](w); len(d) != 1 || d[0].EnvironmentID != paused.ID {
				t.Fatalf("deploy jobs %+v", d)
			}
			w.discardJobs()
		})
		t.Run("refusals change nothing and say why", func(t *testing.T) {
			main, _ := store.GetEnvironment(ctx, s.Reader(), "app", "main")
			idle := w.env("lazy", "branch", store.StateInactive, 0)
			orphan := w.env("orphan", "branch", store.StateActive, 0)
			if _, err := s.DB.ExecContext(ctx, `UPDATE environments SET integration_id = NULL WHERE id = $1`, orphan.ID); err != nil {
				t.Fatal(err)
			}
			for _, tt := range []struct {
				id   int64
				op   EnvOp
				part string
			}{
				{main.ID, OpDelete, "delete the integration instead"},
				{main.ID, OpDeactivate, "cannot be deactivated"},
				{main.ID, OpSyncData, "no parent"},
				{idle.ID, OpRedeploy, "activate it first"},
				{idle.ID, OpPause, "only an active environment"},
				{orphan.ID, OpRedeploy, "detached"},
				{idle.ID, EnvOp("explode"), "unknown operation"},
			} {
				_, err := w.q.Operate(ctx, tt.id, tt.op)
				wantRefused(t, err, tt.part)
			}
			if d := jobsOf[DeployArgs](w); len(d) != 0 {
				t.Fatalf("a refused request enqueued %+v", d)
			}
			if got, _ := store.GetEnvironment(ctx, s.Reader(), "app", "main"); got.State != store.StateActive {
				t.Fatalf("main is %s after refusals", got.State)
			}
		})
	})
}

// GitLab's stop and delete (/api/v4) change the row at once inside the
// caller's transaction; the runtime is removed by a job after the commit.
func TestGitLabStopAndDeleteAreImmediate(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		w := newWorld(t, s)
		e := w.env("feature", "branch", store.StateActive, 0)
		err := s.Tx(ctx, func(tx *sql.Tx) error { return w.q.StopNow(ctx, tx, &e, "stopped through the API") })
		if err != nil {
			t.Fatal(err)
		}
		if got := w.get(e.ID); got.State != store.StateInactive || got.DeployedSHA != "" {
			t.Fatalf("after StopNow: %s deployed %q", got.State, got.DeployedSHA)
		}
		stop := jobsOf[DeleteArgs](w)
		if len(stop) != 1 || !stop[0].KeepEnvironment {
			t.Fatalf("stop jobs %+v", stop)
		}
		if err := w.remove(ctx, stop[0]); err != nil {
			t.Fatal(err)
		}
		if a := w.act(stop[0].ActivityID); a.State != store.ActivityComplete || a.Result != "stopped" {
			t.Fatalf("stop activity %+v", a)
		}
		if got := w.get(e.ID); got.PendingActivityID != 0 {
			t.Fatalf("after the stop job the environment still waits for activity %d", got.PendingActivityID)
		}
		w.discardJobs()

		e = w.get(e.ID)
		err = s.Tx(ctx, func(tx *sql.Tx) error { return w.q.DeleteNow(ctx, tx, &e, "deleted through the API") })
		if err != nil {
			t.Fatal(err)
		}
		if got := w.get(e.ID); got.State != store.StateDeleted || got.DeletedAt.IsZero() {
			t.Fatalf("after DeleteNow: %+v", got)
		}
		del := jobsOf[DeleteArgs](w)
		if err := w.remove(ctx, del[0]); err != nil {
			t.Fatal(err)
		}
		if a := w.act(del[0].ActivityID); a.State != store.ActivityComplete || a.Result != "deleted" {
			t.Fatalf("delete activity %+v", a)
		}
		if calls := w.rt.Calls(); len(calls) != 2 || calls[0] != "remove feature" || calls[1] != "remove feature" {
			t.Fatalf("runtime calls %v", calls)
		}
	})
}

func TestDeployJobs(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		w := newWorld(t, s)
		w.env("main", "branch", store.StateActive, 0)

		requested := func(name string) (store.Environment, DeployArgs) {
			t.Helper()
			e := w.env(name, "branch", store.StateActive, 0)
			if _, err := w.q.Operate(ctx, e.ID, OpRedeploy); err != nil {
				t.Fatal(err)
			}
			d := jobsOf[DeployArgs](w)
			w.discardJobs()
			return e, d[len(d)-1]
		}

		t.Run("a deploy that succeeds makes the environment active on its SHA", func(t *testing.T) {
			e, a := requested("ok")
			if err := w.deploy(ctx, a); err != nil {
				t.Fatal(err)
			}
			got := w.get(e.ID)
			if got.State != store.StateActive || got.DeployedSHA != shaB || got.PendingActivityID != 0 {
				t.Fatalf("after the deploy: %+v", got)
			}
			if act := w.act(a.ActivityID); act.State != store.ActivityComplete || act.Result != "deployed bbbbbbbb" {
				t.Fatalf("activity %+v", act)
			}
		})
		t.Run("a deploy that fails makes the environment failed with the reason", func(t *testing.T) {
			e, a := requested("broken")
			w.rt.fail = errors.New("build: exit status 1")
			defer func() { w.rt.fail = nil }()
			if err := w.deploy(ctx, a); err != nil {
				t.Fatal(err)
			}
			wantState(t, w.get(e.ID), store.StateFailed)
			if act := w.act(a.ActivityID); act.State != store.ActivityFailed || act.Result != "build: exit status 1" {
				t.Fatalf("activity %+v", act)
			}
		})
		t.Run("a deploy job whose deploy was replaced is cancelled and runs nothing", func(t *testing.T) {
			e, a := requested("replaced")
			if _, err := w.q.Operate(ctx, e.ID, OpRedeploy); err != nil {
				t.Fatal(err)
			}
			w.discardJobs()
			before := len(w.rt.Calls())
			if err := w.deploy(ctx, a); err != nil {
				t.Fatal(err)
			}
			if act := w.act(a.ActivityID); act.State != store.ActivityCancelled {
				t.Fatalf("activity %+v", act)
			}
			if len(w.rt.Calls()) != before {
				t.Fatalf("the runtime ran a superseded deploy: %v", w.rt.Calls())
			}
			wantState(t, w.get(e.ID), store.StateBuilding)
		})
		t.Run("a retried deploy job that finds its own deploy in deploying redoes it", func(t *testing.T) {
			e, a := requested("stranded")
			// The first attempt claimed the deploy, then its process died.
			if _, err := s.DB.ExecContext(ctx, `UPDATE environments SET state = 'deploying' WHERE id = $1`, e.ID); err != nil {
				t.Fatal(err)
			}
			if err := w.deploy(ctx, a); err != nil {
				t.Fatal(err)
			}
			if got := w.get(e.ID); got.State != store.StateActive || got.DeployedSHA != shaB {
				t.Fatalf("after the retry: %s at %s, want active at the head", got.State, got.DeployedSHA)
			}
			if act := w.act(a.ActivityID); act.State != store.ActivityComplete {
				t.Fatalf("activity %+v, want complete (not a false superseded)", act)
			}
		})
		t.Run("a deploy that outlives its job is recorded as timed out on a fresh context", func(t *testing.T) {
			e, a := requested("slow")
			w.rt.hold = make(chan struct{}) // never released: the job's deadline ends it
			defer func() { w.rt.hold = nil }()
			jctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			defer cancel()
			if err := w.deploy(jctx, a); err != nil {
				t.Fatal(err)
			}
			got := w.get(e.ID)
			if got.State != store.StateFailed || got.PendingActivityID != 0 {
				t.Fatalf("after the timeout: %s pending %d; want failed, not stranded in deploying", got.State, got.PendingActivityID)
			}
			if act := w.act(a.ActivityID); act.State != store.ActivityFailed || !strings.Contains(act.Result, "timed out") {
				t.Fatalf("activity %+v", act)
			}
		})
		t.Run("a deploy interrupted by a drain stays for the retry", func(t *testing.T) {
			e, a := requested("drained")
			w.rt.hold, w.rt.started = make(chan struct{}), make(chan int64, 1)
			defer func() { w.rt.hold, w.rt.started = nil, nil }()
			jctx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- w.deploy(jctx, a) }()
			within(t, w.rt.started, "the deploy to start")
			cancel()
			if err := within(t, done, "the deploy job to return"); err == nil {
				t.Fatal("an interrupted deploy reported success; River would not retry it")
			}
			wantState(t, w.get(e.ID), store.StateDeploying)
			w.rt.hold = nil
			rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
			defer rcancel()
			if err := w.deploy(rctx, a); err != nil {
				t.Fatalf("retry: %v", err)
			}
			wantState(t, w.get(e.ID), store.StateActive)
		})
		t.Run("sync data resets the data in the job, before the deploy", func(t *testing.T) {
			e := w.env("data", "branch", store.StateActive, 0)
			if _, err := w.q.Operate(ctx, e.ID, OpSyncData); err != nil {
				t.Fatal(err)
			}
			a := jobsOf[DeployArgs](w)[0]
			w.discardJobs()
			n := len(w.rt.Calls())
			if err := w.deploy(ctx, a); err != nil {
				t.Fatal(err)
			}
			if calls := w.rt.Calls()[n:]; len(calls) != 2 || calls[0] != "reset" || !strings.HasPrefix(calls[1], "deploy data") {
				t.Fatalf("runtime calls %v, want reset then deploy", calls)
			}
		})
		t.Run("a newer request cancels a running deploy", func(t *testing.T) {
			e, a := requested("overtaken")
			w.rt.hold, w.rt.started = make(chan struct{}), make(chan int64, 1)
			defer func() { w.rt.hold, w.rt.started = nil, nil }()
			done := make(chan error, 1)
			go func() { done <- w.deploy(ctx, a) }()
			within(t, w.rt.started, "the deploy to start")
			if _, err := w.q.Operate(ctx, e.ID, OpDeactivate); err != nil {
				t.Fatal(err)
			}
			if err := within(t, done, "the superseded deploy to stop"); err != nil {
				t.Fatal(err)
			}
			if act := w.act(a.ActivityID); act.State != store.ActivityCancelled {
				t.Fatalf("activity %+v", act)
			}
			wantState(t, w.get(e.ID), store.StateStopping)
			w.discardJobs()
		})
	})
}

func TestRemoveJobs(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		w := newWorld(t, s)
		t.Run("a finished deletion leaves a tombstone", func(t *testing.T) {
			e := w.env("gone", "branch", store.StateActive, 0)
			if _, err := w.q.Operate(ctx, e.ID, OpDelete); err != nil {
				t.Fatal(err)
			}
			a := jobsOf[DeleteArgs](w)[0]
			w.discardJobs()
			if err := w.remove(ctx, a); err != nil {
				t.Fatal(err)
			}
			if got := w.get(e.ID); got.State != store.StateDeleted || got.DeletedAt.IsZero() {
				t.Fatalf("after the delete: %+v", got)
			}
		})
		t.Run("a finished deactivation leaves the environment inactive", func(t *testing.T) {
			e := w.env("rest", "branch", store.StateActive, 0)
			if _, err := w.q.Operate(ctx, e.ID, OpDeactivate); err != nil {
				t.Fatal(err)
			}
			a := jobsOf[DeleteArgs](w)[0]
			w.discardJobs()
			if err := w.remove(ctx, a); err != nil {
				t.Fatal(err)
			}
			if got := w.get(e.ID); got.State != store.StateInactive || got.DeployedSHA != "" {
				t.Fatalf("after the deactivation: %+v", got)
			}
		})
		t.Run("a removal overtaken by an activation removes nothing", func(t *testing.T) {
			e := w.env("back", "branch", store.StateActive, 0)
			if _, err := w.q.Operate(ctx, e.ID, OpDeactivate); err != nil {
				t.Fatal(err)
			}
			a := jobsOf[DeleteArgs](w)[0]
			w.discardJobs()
			// Stopped through GitLab's API meanwhile, then activated again.
			if _, err := s.DB.ExecContext(ctx, `UPDATE environments SET state = 'inactive' WHERE id = $1`, e.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := w.q.Operate(ctx, e.ID, OpActivate); err != nil {
				t.Fatal(err)
			}
			n := len(w.rt.Calls())
			if err := w.remove(ctx, a); err != nil {
				t.Fatal(err)
			}
			if calls := w.rt.Calls()[n:]; len(calls) != 0 {
				t.Fatalf("the removal ran on an activated environment: %v", calls)
			}
			if act := w.act(a.ActivityID); act.State != store.ActivityCancelled {
				t.Fatalf("activity %+v", act)
			}
			wantState(t, w.get(e.ID), store.StateBuilding)
			w.discardJobs()
		})
	})
}

// The repair sweep re-drives environments whose job is gone, and leaves
// those whose job is still queued alone.
func TestRepairSweep(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		w := newWorld(t, s)
		queued := w.env("queued", "branch", store.StateActive, 0)
		if _, err := w.q.Operate(ctx, queued.ID, OpRedeploy); err != nil {
			t.Fatal(err)
		}
		lost := w.env("lost", "branch", store.StateDeploying, 0)
		lostAct := w.activity(lost, store.ActivityDeploy)
		stopping := w.env("stopping", "branch", store.StateStopping, 0)
		stopAct := w.activity(stopping, store.ActivityStop)
		for id, act := range map[int64]int64{lost.ID: lostAct, stopping.ID: stopAct} {
			if _, err := s.DB.ExecContext(ctx, `UPDATE environments SET pending_activity_id = $1 WHERE id = $2`, act, id); err != nil {
				t.Fatal(err)
			}
		}
		legacy := w.env("legacy", "branch", store.StateBuilding, 0) // waiting for nothing at all
		n, err := w.q.Repair(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n != 3 {
			t.Fatalf("repaired %d, want 3 (lost, stopping, legacy)", n)
		}
		deploys := map[int64]DeployArgs{}
		for _, d := range jobsOf[DeployArgs](w) {
			deploys[d.EnvironmentID] = d
		}
		if len(deploys) != 3 || deploys[lost.ID].ActivityID == lostAct || deploys[legacy.ID].ActivityID == 0 {
			t.Fatalf("deploy jobs %+v", deploys)
		}
		if got := w.get(lost.ID); got.State != store.StateBuilding || got.PendingActivityID != deploys[lost.ID].ActivityID {
			t.Fatalf("lost deploy: %+v", got)
		}
		if a := w.act(lostAct); a.State != store.ActivityCancelled {
			t.Fatalf("the lost activity is %s, want cancelled", a.State)
		}
		if r := jobsOf[DeleteArgs](w); len(r) != 1 || r[0].EnvironmentID != stopping.ID || !r[0].KeepEnvironment {
			t.Fatalf("remove jobs %+v: a lost deactivation must be removed again, keeping the environment", r)
		}
		if n, err := w.q.Repair(ctx); err != nil || n != 0 {
			t.Fatalf("a second sweep repaired %d (%v); every environment has its job now", n, err)
		}
	})
}

// A restart brings back active environments and deploys again those it
// caught mid-deploy; the interrupted job then finds itself superseded.
func TestRestart(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		w := newWorld(t, s)
		active := w.env("main", "branch", store.StateActive, 0)
		mid := w.env("mid", "branch", store.StateActive, 0)
		if _, err := w.q.Operate(ctx, mid.ID, OpRedeploy); err != nil {
			t.Fatal(err)
		}
		interrupted := jobsOf[DeployArgs](w)[0]
		if _, err := s.DB.ExecContext(ctx, `UPDATE environments SET state = 'deploying' WHERE id = $1`, mid.ID); err != nil {
			t.Fatal(err)
		}
		w.discardJobs()
		idle := w.env("idle", "branch", store.StateInactive, 0)

		start, err := w.q.Restart(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(start) != 1 || start[0].ID != active.ID {
			t.Fatalf("apps to start: %+v, want main only", start)
		}
		d := jobsOf[DeployArgs](w)
		if len(d) != 1 || d[0].EnvironmentID != mid.ID || d[0].ActivityID == interrupted.ActivityID {
			t.Fatalf("deploy jobs after the restart: %+v", d)
		}
		wantState(t, w.get(mid.ID), store.StateBuilding)
		wantState(t, w.get(idle.ID), store.StateInactive)
		// The rescued old job runs later and must not deploy over the new one.
		if err := w.deploy(ctx, interrupted); err != nil {
			t.Fatal(err)
		}
		if a := w.act(interrupted.ActivityID); a.State != store.ActivityCancelled {
			t.Fatalf("interrupted activity %+v", a)
		}
		if err := w.deploy(ctx, d[0]); err != nil {
			t.Fatal(err)
		}
		if got := w.get(mid.ID); got.State != store.StateActive || got.DeployedSHA != shaB {
			t.Fatalf("after the new deploy: %+v", got)
		}
	})
}

// A deploy finishing while someone asks for a redeploy: whichever commits
// first, the redeploy must survive (building, waiting for its queued job).
// Without the row lock, PostgreSQL let both read the same row and the
// finishing deploy wrote back "active, waiting for nothing" over it.
func TestConcurrentTransitionsDoNotLoseEachOther(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		w := newWorld(t, s)
		for i := range 20 {
			e := w.env(fmt.Sprintf("race-%d", i), "branch", store.StateDeploying, 0)
			own := w.activity(e, store.ActivityDeploy)
			if _, err := s.DB.ExecContext(ctx, `UPDATE environments SET pending_activity_id = $1 WHERE id = $2`, own, e.ID); err != nil {
				t.Fatal(err)
			}
			errs := make(chan error, 2)
			go func() {
				_, _, err := w.q.Trigger(ctx, e.ID, lifecycle.Input{Trigger: lifecycle.TriggerDeploySucceeded, Activity: own, SHA: shaB}, record{})
				errs <- err
			}()
			go func() {
				_, err := w.q.Operate(ctx, e.ID, OpRedeploy)
				errs <- err
			}()
			for range 2 {
				if err := within(t, errs, "both transitions"); err != nil {
					t.Fatal(err)
				}
			}
			got := w.get(e.ID)
			jobs := jobsOf[DeployArgs](w)
			if got.State != store.StateBuilding || len(jobs) != 1 || got.PendingActivityID != jobs[0].ActivityID {
				t.Fatalf("round %d: %s waiting for %d, queued %+v: the redeploy was lost", i, got.State, got.PendingActivityID, jobs)
			}
			w.discardJobs()
		}
	})
}
