package jobs

import (
	"context"
	"database/sql"
	"testing"

	"github.com/glenv/glenv/internal/lifecycle"
	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/store/storetest"
)

// Fork code never gets glenv's variables, secrets or parent data, so the
// runtimes must know whose code an environment runs: every merge request
// event records it, and the project's own merge requests stay trusted
// with build-forks on.
func TestAMergeRequestEnvironmentRecordsWhetherItsCodeComesFromAFork(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		w := newWorld(t, s)
		w.env("main", "branch", store.StateActive, 0)
		apply := func(a lifecycle.Action) {
			t.Helper()
			if err := s.Tx(ctx, func(tx *sql.Tx) error {
				_, err := w.q.Apply(ctx, tx, w.in, []lifecycle.Action{a}, 0)
				return err
			}); err != nil {
				t.Fatal(err)
			}
		}
		get := func(name string) store.Environment {
			t.Helper()
			e, err := store.GetEnvironment(ctx, s.DB, w.in.Name, name)
			if err != nil {
				t.Fatal(err)
			}
			return e
		}
		mr := func(name string, iid int64, fork bool) lifecycle.Action {
			return lifecycle.Action{Type: lifecycle.ActionCreate, Env: name, Kind: lifecycle.KindMR, Ref: "feature", Parent: "main",
				SHA: shaB, MRIID: iid, Fork: fork, Activate: true, Reason: "test"}
		}
		apply(mr("mr-1", 1, true))
		apply(mr("mr-2", 2, false))
		if !get("mr-1").FromFork || get("mr-2").FromFork {
			t.Fatalf("from_fork: mr-1 %v (a fork's), mr-2 %v (the project's own)", get("mr-1").FromFork, get("mr-2").FromFork)
		}
		// A later event says it again: a row migrated as a fork's (build-forks
		// on, origin unknown) is corrected by the next event about it.
		apply(lifecycle.Action{Type: lifecycle.ActionUpdateHead, Env: "mr-1", Kind: lifecycle.KindMR, Ref: "feature", Parent: "main",
			SHA: "cccccccccccccccccccccccccccccccccccccccc", MRIID: 1, Fork: false, Reason: "test"})
		if get("mr-1").FromFork {
			t.Fatal("the next event about mr-1 did not record that its code is the project's own")
		}
	})
}
