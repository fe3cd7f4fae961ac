package replica

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/glenv/glenv/internal/store"
)

// TakeOver gives a dead replica's environments to the live ones inside tx
// (jobs.Environments.TakeOver).
type TakeOver func(ctx context.Context, tx *sql.Tx, dead int64, deadQueue string, owners []int64) (int, error)

// Options tune a Registry.
type Options struct {
	// Address is where the other replicas reach this one (--replica-address).
	Address   string
	Heartbeat time.Duration // --replica-heartbeat
	DeadAfter time.Duration // --replica-dead-after
	Logger    *slog.Logger
}

// Registry is this replica's row in the database and what it knows of the
// others, refreshed at every heartbeat.
type Registry struct {
	st   *store.Store
	opts Options
	self store.Replica

	mu   sync.RWMutex
	live map[int64]store.Replica
}

// ErrAddressInUse is a live replica already registered at this address.
var ErrAddressInUse = errors.New("replica address in use")

// Register adds this replica to the database. A row at the same address
// whose heartbeat went stale is a previous run of this replica: it is taken
// over, with the environments it owns, whose builds are still on this
// machine's disk. A live one at the same address is waited for up to
// dead-after, then refused: two replicas cannot share an address.
func Register(ctx context.Context, st *store.Store, opts Options) (*Registry, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	g := &Registry{st: st, opts: opts, live: map[int64]store.Replica{}}
	deadline := time.Now().Add(opts.DeadAfter + opts.Heartbeat)
	for {
		self, busy, err := g.register(ctx)
		if err != nil {
			return nil, err
		}
		if busy == nil {
			g.self = self
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("--replica-address %s: %w by replica %d (heartbeat %s ago); give each replica its own --replica-address that the others can reach",
				opts.Address, ErrAddressInUse, busy.ID, time.Since(busy.HeartbeatAt).Round(time.Millisecond))
		}
		opts.Logger.Warn("another replica heartbeats at this --replica-address; waiting for it to stop", "replica", busy.ID, "address", opts.Address)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(opts.Heartbeat):
		}
	}
	if err := g.refresh(ctx); err != nil {
		return nil, err
	}
	opts.Logger.Info("replica registered", "replica", g.self.ID, "address", g.self.Address)
	return g, nil
}

// register takes over a stale row at the address or inserts one; busy is
// a live replica at the address.
func (g *Registry) register(ctx context.Context) (self store.Replica, busy *store.Replica, err error) {
	all, err := store.ListReplicas(ctx, g.st.Reader())
	if err != nil {
		return self, nil, err
	}
	now := store.Now()
	for _, r := range all {
		if r.Address != g.opts.Address {
			continue
		}
		ok, err := store.TakeOverReplica(ctx, g.st.DB, r.ID, now.Add(-g.opts.DeadAfter), now)
		if err != nil {
			return self, nil, err
		}
		if ok {
			r.StartedAt, r.HeartbeatAt = now, now
			return r, nil, nil
		}
		if now.Sub(r.HeartbeatAt) < g.opts.DeadAfter {
			return self, &r, nil
		}
	}
	self, err = store.RegisterReplica(ctx, g.st.DB, g.opts.Address, now)
	return self, nil, err
}

// ID is this replica's id.
func (g *Registry) ID() int64 { return g.self.ID }

// Queue is this replica's own River queue.
func (g *Registry) Queue() string { return QueueName(g.self.ID) }

// Live returns the live replica id, or false.
func (g *Registry) Live(id int64) (store.Replica, bool) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	r, ok := g.live[id]
	return r, ok
}

// LiveIDs are the live replicas' ids (this one included), in order.
func (g *Registry) LiveIDs() []int64 {
	g.mu.RLock()
	defer g.mu.RUnlock()
	ids := make([]int64, 0, len(g.live))
	for id := range g.live {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Run heartbeats until ctx ends. At every beat it reads the others and
// takes over the dead ones it is first to remove. lost is called (once)
// when this replica's own row is gone: the others declared it dead and
// run its environments now, so it must stop.
func (g *Registry) Run(ctx context.Context, takeOver TakeOver, lost func()) {
	t := time.NewTicker(g.opts.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ok, err := store.HeartbeatReplica(ctx, g.st.DB, g.self.ID, store.Now())
		if err != nil {
			g.opts.Logger.Warn("replica heartbeat", "err", err)
			continue
		}
		if !ok {
			g.opts.Logger.Error("the other replicas declared this one dead and took its environments over; stopping", "replica", g.self.ID)
			lost()
			return
		}
		if err := g.refresh(ctx); err != nil {
			g.opts.Logger.Warn("read replicas", "err", err)
			continue
		}
		if err := g.reap(ctx, takeOver); err != nil && ctx.Err() == nil {
			g.opts.Logger.Warn("take over dead replicas", "err", err)
		}
	}
}

// refresh reads the live replicas.
func (g *Registry) refresh(ctx context.Context) error {
	all, err := store.ListReplicas(ctx, g.st.Reader())
	if err != nil {
		return err
	}
	live, _ := Split(all, g.self.ID, store.Now(), g.opts.DeadAfter)
	m := make(map[int64]store.Replica, len(live))
	for _, r := range live {
		m[r.ID] = r
	}
	g.mu.Lock()
	g.live = m
	g.mu.Unlock()
	return nil
}

// reap removes each dead replica and hands its environments to the live
// ones in the same transaction; a replica another one removed first is
// skipped.
func (g *Registry) reap(ctx context.Context, takeOver TakeOver) error {
	all, err := store.ListReplicas(ctx, g.st.Reader())
	if err != nil {
		return err
	}
	now := store.Now()
	live, dead := Split(all, g.self.ID, now, g.opts.DeadAfter)
	owners := IDs(live)
	var errs []error
	for _, d := range dead {
		var moved int
		var removed bool
		err := g.st.Tx(ctx, func(tx *sql.Tx) error {
			var err error
			if removed, err = store.RemoveDeadReplica(ctx, tx, d.ID, now.Add(-g.opts.DeadAfter)); err != nil || !removed {
				return err
			}
			moved, err = takeOver(ctx, tx, d.ID, QueueName(d.ID), owners)
			return err
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("replica %d: %w", d.ID, err))
			continue
		}
		if removed {
			g.opts.Logger.Warn("replica stopped heartbeating: its environments were taken over", "replica", d.ID,
				"address", d.Address, "environments", moved, "silent_for", now.Sub(d.HeartbeatAt).Round(time.Millisecond))
		}
	}
	return errors.Join(errs...)
}
