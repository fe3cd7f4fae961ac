package jobs

import (
	"context"
	"database/sql"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/riverqueue/river/rivertype"

	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/store/storetest"
)

// A burst of variable changes leaves one waiting redeploy per environment;
// when it runs, only environments that run code are redeployed, each once,
// through the state machine.
func TestVariablesRedeployIsCoalescedAndSkipsEnvironmentsThatRunNothing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		w := newWorld(t, s)
		w.rt.started = make(chan int64, 16)
		w.q.VariablesDebounce = 100 * time.Millisecond
		main, feature := w.env("main", "branch", store.StateActive, 0), w.env("feature", "branch", store.StateActive, 0)
		idle, napping := w.env("idle", "branch", store.StateInactive, 0), w.env("napping", "branch", store.StatePaused, 0)
		ids := []int64{main.ID, feature.ID, idle.ID, napping.ID}
		for range 3 {
			if err := s.Tx(ctx, func(tx *sql.Tx) error { return w.q.RedeployForVariables(ctx, tx, ids) }); err != nil {
				t.Fatal(err)
			}
		}
		if got := jobsOf[VariablesRedeployArgs](w); len(got) != len(ids) {
			t.Fatalf("after a burst of three changes: %d jobs %v, want one per environment", len(got), got)
		}
		if err := w.q.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			w.q.Stop(sctx)
		})
		got := []int64{within(t, w.rt.started, "the first redeploy"), within(t, w.rt.started, "the second redeploy")}
		slices.Sort(got)
		if want := []int64{main.ID, feature.ID}; !slices.Equal(got, want) {
			t.Fatalf("redeployed %v, want main and feature (%v)", got, want)
		}
		// Every redeploy job has finished; then no other deploy may have started.
		deadline := time.Now().Add(10 * time.Second)
		for {
			n, err := w.q.CountJobs(ctx, VariablesRedeployArgs{}.Kind(), rivertype.JobStateCompleted)
			if err != nil {
				t.Fatal(err)
			}
			if n == len(ids) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d redeploy jobs completed", n, len(ids))
			}
			time.Sleep(20 * time.Millisecond) // polls the job table River advances
		}
		w.waitDeploysDone(ctx, 2)
		select {
		case id := <-w.rt.started:
			t.Fatalf("environment %d was deployed too", id)
		default:
		}
		calls := w.rt.Calls()
		sort.Strings(calls)
		if len(calls) != 2 {
			t.Fatalf("runtime calls %v, want one deploy each of main and feature", calls)
		}
		wantState(t, w.get(idle.ID), store.StateInactive)
		wantState(t, w.get(napping.ID), store.StatePaused)
		acts, err := store.ListActivities(ctx, s.Reader(), store.ActivityFilter{EnvironmentID: main.ID, Limit: 10})
		if err != nil || len(acts) != 1 || acts[0].Description != "variables changed" {
			t.Fatalf("main's activities %+v %v, want one deploy saying variables changed", acts, err)
		}
	})
}

// waitDeploysDone waits until n deploy jobs finished (their activity is final).
func (w *world) waitDeploysDone(ctx context.Context, n int) {
	w.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		done, err := w.q.CountJobs(ctx, DeployArgs{}.Kind(), rivertype.JobStateCompleted)
		if err != nil {
			w.t.Fatal(err)
		}
		if done >= n {
			return
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("%d of %d deploy jobs completed", done, n)
		}
		time.Sleep(20 * time.Millisecond) // polls the job table River advances
	}
}

func TestAnEnvironmentsOwnVariablesGoWithIt(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		w := newWorld(t, s)
		feature := w.env("feature", "branch", store.StateActive, 0)
		for _, env := range []string{"", "feature"} {
			v := store.Variable{IntegrationID: w.in.ID, Environment: env, Name: "KEY", Value: "v", VisibleBuild: true, VisibleRun: true}
			if err := store.CreateVariable(ctx, s.DB, &v); err != nil {
				t.Fatal(err)
			}
		}
		e, err := w.q.Operate(ctx, feature.ID, OpDelete)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.remove(ctx, DeleteArgs{EnvironmentID: e.ID, ActivityID: e.PendingActivityID}); err != nil {
			t.Fatal(err)
		}
		if got := w.get(feature.ID); got.DeletedAt.IsZero() {
			t.Fatalf("feature is %s, not deleted", got.State)
		}
		left, err := store.VariablesOfIntegration(ctx, s.Reader(), w.in.ID)
		if err != nil || len(left) != 1 || left[0].Environment != "" {
			t.Fatalf("after deleting feature: %+v %v, want the integration's KEY only", left, err)
		}
	})
}
