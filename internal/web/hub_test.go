package web

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/store/storetest"
)

func saveEnv(t *testing.T, st *store.Store, name, state string) store.Environment {
	t.Helper()
	e := store.Environment{IntegrationName: "app", Name: name, Slug: name, Host: name + "--app", Kind: "branch", Ref: name, State: state}
	if err := st.Tx(context.Background(), func(tx *sql.Tx) error { return store.SaveEnvironment(context.Background(), tx, &e) }); err != nil {
		t.Fatal(err)
	}
	return e
}

func next(t *testing.T, s *Sub) (store.Environment, bool) {
	t.Helper()
	select {
	case e, ok := <-s.C:
		return e, ok
	case <-time.After(10 * time.Second):
		t.Fatal("no change within 10s")
	}
	return store.Environment{}, false
}

func TestTheChangeFeed(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		h := NewHub(st, slog.New(slog.DiscardHandler))
		h.PollInterval = 20 * time.Millisecond
		go h.Run(ctx)

		t.Run("a change told after its commit reaches every subscriber once", func(t *testing.T) {
			a, b := h.Subscribe(), h.Subscribe()
			defer h.Unsubscribe(a)
			defer h.Unsubscribe(b)
			e := saveEnv(t, st, "told", store.StateBuilding)
			h.Changed(e.ID)
			for _, s := range []*Sub{a, b} {
				got, ok := next(t, s)
				if !ok || got.ID != e.ID || got.State != store.StateBuilding {
					t.Fatalf("got %+v (open %v)", got, ok)
				}
			}
			h.Changed(e.ID) // the same change again, and the poll's copy of it: nothing new
			other := saveEnv(t, st, "marker", store.StateActive)
			h.Changed(other.ID)
			if got, _ := next(t, a); got.ID != other.ID {
				t.Fatalf("a change was published twice: got %s before the marker", got.Name)
			}
		})

		t.Run("a change made by another replica is found by the poll", func(t *testing.T) {
			s := h.Subscribe()
			defer h.Unsubscribe(s)
			e := saveEnv(t, st, "elsewhere", store.StateDeploying) // no Changed: another process wrote it
			for {
				got, ok := next(t, s)
				if !ok {
					t.Fatal("dropped")
				}
				if got.ID == e.ID {
					return
				}
			}
		})

		t.Run("with nobody subscribed nothing is read, and a change made then still reaches who subscribes within the overlap", func(t *testing.T) {
			e := saveEnv(t, st, "unwatched", store.StateBuilding)
			h.Changed(e.ID) // told while nobody listens: not read
			s := h.Subscribe()
			defer h.Unsubscribe(s)
			for {
				got, ok := next(t, s)
				if !ok {
					t.Fatal("dropped")
				}
				if got.ID == e.ID {
					return
				}
			}
		})

		t.Run("a subscriber too far behind is dropped and the others keep up", func(t *testing.T) {
			slow, fast := h.Subscribe(), h.Subscribe()
			defer h.Unsubscribe(fast)
			defer h.Unsubscribe(slow)
			// While nobody subscribed, the hub may have rested (forgotten
			// what it sent), so its first poll for these two replays the
			// earlier subtests' changes within the overlap, before, among or
			// after the burst's: fast skips those, and gets each change of
			// the burst once and in order.
			var last store.Environment
			var first int64
			for i := range SubBuffer + 5 {
				last = saveEnv(t, st, fmt.Sprintf("burst-%d", i), store.StateActive)
				if i == 0 {
					first = last.ID
				}
				h.Changed(last.ID)
				for {
					got, ok := next(t, fast)
					if !ok {
						t.Fatalf("the fast subscriber was dropped at burst-%d", i)
					}
					if got.ID == last.ID {
						break
					}
					if got.ID >= first {
						t.Fatalf("the fast subscriber got %s while waiting for %s: a change of the burst twice or out of order", got.Name, last.Name)
					}
				}
			}
			n := 0
			for range slow.C {
				n++
			}
			if n != SubBuffer {
				t.Errorf("the slow subscriber got %d changes before it was dropped, want its buffer (%d)", n, SubBuffer)
			}
		})
	})
}
