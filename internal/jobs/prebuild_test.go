package jobs

import (
	"context"
	"testing"

	"github.com/riverqueue/river"

	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/store/storetest"
)

// A prebuild whose job is gone (discarded, never enqueued) is driven again
// by the repair sweep, so an inactive environment never waits for a job
// nobody runs; a prebuild that ended is left alone.
func TestRepairSweepDrivesALostPrebuildAgain(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		w := newWorld(t, s)
		lost := w.env("lost", "branch", store.StateInactive, 0)
		lostAct := w.activity(lost, store.ActivityPrebuild)
		if _, err := s.DB.ExecContext(ctx, `UPDATE environments SET pending_activity_id = $1 WHERE id = $2`, lostAct, lost.ID); err != nil {
			t.Fatal(err)
		}
		idle := w.env("idle", "branch", store.StateInactive, 0) // waits for nothing
		n, err := w.q.Repair(ctx)
		if err != nil || n != 1 {
			t.Fatalf("repaired %d (%v), want 1", n, err)
		}
		pbs := jobsOf[PrebuildArgs](w)
		if len(pbs) != 1 || pbs[0].EnvironmentID != lost.ID || pbs[0].ActivityID == lostAct || pbs[0].SHA != shaB {
			t.Fatalf("prebuild jobs %+v", pbs)
		}
		got := w.get(lost.ID)
		wantState(t, got, store.StateInactive)
		if got.PendingActivityID != pbs[0].ActivityID {
			t.Fatalf("the environment waits for %d, want the new prebuild %d", got.PendingActivityID, pbs[0].ActivityID)
		}
		if a := w.act(lostAct); a.State != store.ActivityCancelled {
			t.Fatalf("the lost prebuild is %s, want cancelled", a.State)
		}
		if e := w.get(idle.ID); e.PendingActivityID != 0 {
			t.Fatalf("an inactive environment with nothing pending got %d", e.PendingActivityID)
		}
		if n, err := w.q.Repair(ctx); err != nil || n != 0 {
			t.Fatalf("a second sweep repaired %d (%v)", n, err)
		}

		// A runtime that cannot prebuild completes the prebuild with
		// nothing done; the environment stays inactive and waits no more.
		err = (&prebuildWorker{q: w.q, deps: w.q.deps}).Work(ctx, &river.Job[PrebuildArgs]{Args: pbs[0]})
		if err != nil {
			t.Fatal(err)
		}
		got = w.get(lost.ID)
		wantState(t, got, store.StateInactive)
		if a := w.act(pbs[0].ActivityID); a.State != store.ActivityComplete || got.PendingActivityID != 0 {
			t.Fatalf("after the prebuild: activity %s, pending %d", a.State, got.PendingActivityID)
		}
		if calls := w.rt.Calls(); len(calls) != 0 {
			t.Fatalf("a prebuild deployed: %v", calls)
		}
	})
}
