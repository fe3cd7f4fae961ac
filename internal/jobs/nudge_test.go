package jobs

import (
	"context"
	"testing"
	"time"

	"github.com/glenv/glenv/internal/lifecycle"
	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/store/storetest"
)

// A job a transaction queues is worked once the transaction commits, not
// at River's next poll: with the poll an hour away, the deploy a push
// queues still starts (LISTEN/NOTIFY on PostgreSQL, the local listener on
// SQLite).
func TestCommittedJobWakesTheWorkerWithoutPolling(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		started := make(chan int64, 4)
		w.rt.started = started
		q, err := NewQueue(s, Deps{Runtime: w.rt}, QueueConfig{PollInterval: time.Hour, RepairInterval: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		if err := q.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer scancel()
			_ = q.Stop(sctx)
		})
		env := w.env("main", "branch", store.StateActive, 0)
		// River's first fetch at start may find the first deploy; the
		// second is queued after a fetch has run, so only the wake after
		// its commit can start it within the hour.
		for round := range 2 {
			if _, _, err := q.Trigger(ctx, env.ID, lifecycle.Input{Trigger: lifecycle.TriggerRedeploy}, record{Description: "test"}); err != nil {
				t.Fatal(err)
			}
			select {
			case id := <-started:
				if id != env.ID {
					t.Fatalf("deploy of environment %d started, want %d", id, env.ID)
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("deploy %d, queued by a committed transaction, did not start: the worker was not woken", round+1)
			}
			waitActive(t, s, env.ID)
		}
	})
}

// waitActive waits until the environment's deploy has been recorded as done.
func waitActive(t *testing.T, s *store.Store, id int64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		e, err := store.GetEnvironmentByID(context.Background(), s.Reader(), id)
		if err != nil {
			t.Fatal(err)
		}
		if e.State == store.StateActive && e.PendingActivityID == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("environment still %s waiting for activity %d", e.State, e.PendingActivityID)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
