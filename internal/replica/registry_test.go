package replica

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/store/storetest"
)

func TestRegistry(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		opts := func(addr string) Options {
			return Options{Address: addr, Heartbeat: 50 * time.Millisecond, DeadAfter: 2 * time.Second}
		}
		t.Run("a dead replica is taken over by exactly one of the replicas that find it dead", func(t *testing.T) {
			dead, err := store.RegisterReplica(ctx, s.DB, "10.0.0.9:8080", store.Now().Add(-time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			var regs []*Registry
			for _, addr := range []string{"10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.3:8080"} {
				r, err := Register(ctx, s, opts(addr))
				if err != nil {
					t.Fatal(err)
				}
				regs = append(regs, r)
			}
			var calls atomic.Int32
			var got atomic.Int64
			takeOver := func(ctx context.Context, tx *sql.Tx, id int64, queue, client string, owners []int64) (int, error) {
				calls.Add(1)
				got.Store(id)
				if queue != QueueName(dead.ID) || len(owners) != 3 {
					return 0, errors.New("wrong queue or owners")
				}
				return 0, nil
			}
			var wg sync.WaitGroup
			for _, r := range regs {
				wg.Add(1)
				go func() { defer wg.Done(); r.reap(ctx, takeOver) }()
			}
			wg.Wait()
			if calls.Load() != 1 || got.Load() != dead.ID {
				t.Fatalf("take-overs = %d (of %d), want exactly one of replica %d", calls.Load(), got.Load(), dead.ID)
			}
			all, _ := store.ListReplicas(ctx, s.Reader())
			for _, r := range all {
				if r.ID == dead.ID {
					t.Fatalf("the dead replica is still registered")
				}
			}
		})
		t.Run("a replica restarting at its address takes its stale row back, with what it owned", func(t *testing.T) {
			old, err := store.RegisterReplica(ctx, s.DB, "10.0.0.7:8080", store.Now().Add(-time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			r, err := Register(ctx, s, opts("10.0.0.7:8080"))
			if err != nil {
				t.Fatal(err)
			}
			if r.ID() != old.ID {
				t.Fatalf("registered as %d, want its old row %d", r.ID(), old.ID)
			}
		})
		t.Run("a second live replica at the same address is refused once the wait is over", func(t *testing.T) {
			if _, err := Register(ctx, s, opts("10.0.0.8:8080")); err != nil {
				t.Fatal(err)
			}
			// The first one keeps beating while the second waits.
			beat, stop := context.WithCancel(ctx)
			defer stop()
			go func() {
				for beat.Err() == nil {
					all, _ := store.ListReplicas(ctx, s.Reader())
					for _, r := range all {
						if r.Address == "10.0.0.8:8080" {
							store.HeartbeatReplica(ctx, s.DB, r.ID, store.Now())
						}
					}
					select {
					case <-beat.Done():
					case <-time.After(20 * time.Millisecond):
					}
				}
			}()
			_, err := Register(ctx, s, opts("10.0.0.8:8080"))
			if !errors.Is(err, ErrAddressInUse) {
				t.Fatalf("second replica at one address: %v, want ErrAddressInUse", err)
			}
		})
		t.Run("a replica whose row the others removed learns it is lost and stops", func(t *testing.T) {
			r, err := Register(ctx, s, opts("10.0.0.6:8080"))
			if err != nil {
				t.Fatal(err)
			}
			if err := store.RemoveReplica(ctx, s.DB, r.ID()); err != nil {
				t.Fatal(err)
			}
			lost := make(chan struct{})
			run, stop := context.WithCancel(ctx)
			defer stop()
			go r.Run(run, func(context.Context, *sql.Tx, int64, string, string, []int64) (int, error) { return 0, nil }, func() { close(lost) })
			select {
			case <-lost:
			case <-time.After(10 * time.Second):
				t.Fatal("the removed replica never noticed")
			}
		})
	})
}
