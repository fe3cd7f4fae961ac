package jobs

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/glenv/glenv/internal/lifecycle"
	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/store/storetest"
)

// Issue 17: a push to a paused environment records the new head and leaves
// it paused (no deploy job); the next visit deploys that head.
func TestAPushToAPausedEnvironmentWaitsForTheNextVisit(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		w := newWorld(t, s)
		e := w.env("nap", "branch", store.StatePaused, 0)
		shaC := "cccccccccccccccccccccccccccccccccccccccc"
		err := s.Tx(ctx, func(tx *sql.Tx) error {
			_, err := w.q.Apply(ctx, tx, w.in, []lifecycle.Action{{Type: lifecycle.ActionDeploy, Env: "nap", Kind: lifecycle.KindBranch,
				Ref: "nap", Parent: "main", SHA: shaC, SeenSHAs: []string{shaC}}}, 0)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		got := w.get(e.ID)
		if got.State != store.StatePaused || got.HeadSHA != shaC || len(jobsOf[DeployArgs](w)) != 0 {
			t.Fatalf("after a push: state %s head %s, deploy jobs %v", got.State, got.HeadSHA, jobsOf[DeployArgs](w))
		}
		if woke, err := w.q.Wake(ctx, e.ID); err != nil || !woke {
			t.Fatalf("wake: %v %v", woke, err)
		}
		if d := jobsOf[DeployArgs](w); len(d) != 1 || d[0].EnvironmentID != e.ID {
			t.Fatalf("deploy jobs after the visit %+v", d)
		}
	})
}

// The idle check's pause goes through the state machine and says why.
func TestPauseIdleRecordsWhy(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		w := newWorld(t, s)
		e := w.env("quiet", "branch", store.StateActive, 0)
		if ok, err := w.q.PauseIdle(ctx, e.ID, 4*time.Hour); err != nil || !ok {
			t.Fatalf("pause idle: %v %v", ok, err)
		}
		p := jobsOf[PauseArgs](w)
		if len(p) != 1 || w.act(p[0].ActivityID).Description == "" || w.get(e.ID).State != store.StatePaused {
			t.Fatalf("pause jobs %+v", p)
		}
		if ok, err := w.q.PauseIdle(ctx, e.ID, 4*time.Hour); err != nil || ok {
			t.Fatalf("pausing a paused environment again: %v %v", ok, err)
		}
	})
}
