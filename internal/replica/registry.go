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
type TakeOver func(ctx context.Context, tx *sql.Tx, dead int64, deadQueue, deadClient string, owners []int64) (int, error)

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

// Leave marks this replica stopped (a clean shutdown): its heartbeat is
// cleared, so the others take its environments over at their next beat
// instead of after --replica-dead-after, and a restart at the same address
// takes the row back at once.
func (g *Registry) Leave(ctx context.Context) error {
	_, err := g.st.DB.ExecContext(ctx, `UPDATE replicas SET heartbeat_at = 0 WHERE id = $1`, g.self.ID)
	return err
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

// Run heartbeats until ctx ends and, beside it, reads the others at every
// beat and takes over the dead ones it is first to remove. The beat has its
// own loop and its own connection, so neither a slow take-over nor a pool
// busy with a burst of webhooks makes this replica look dead. lost is
// called (once) when this replica's own row is gone: the others declared
// it dead and run its environments now, so it must stop.
func (g *Registry) Run(ctx context.Context, takeOver TakeOver, lost func()) {
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan struct{})
	go func() {
		defer close(done)
		g.watch(ctx, takeOver)
	}()
	defer func() { <-done }()
	var conn *sql.Conn
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	t := time.NewTicker(g.opts.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if conn == nil {
			var err error
			if conn, err = g.st.DB.Conn(ctx); err != nil {
				g.opts.Logger.Warn("replica heartbeat: connect", "err", err)
				continue
			}
		}
		beat, cancel := context.WithTimeout(ctx, g.opts.DeadAfter/2)
		ok, err := store.HeartbeatReplica(beat, conn, g.self.ID, store.Now())
		cancel()
		if err != nil {
			g.opts.Logger.Warn("replica heartbeat", "err", err)
			conn.Close() // a broken connection is replaced at the next beat
			conn = nil
			continue
		}
		if !ok {
			g.opts.Logger.Error("the other replicas declared this one dead and took its environments over; stopping", "replica", g.self.ID)
			lost()
			return
		}
	}
}

// watch reads the replicas at every beat and takes over the dead ones.
func (g *Registry) watch(ctx context.Context, takeOver TakeOver) {
	t := time.NewTicker(g.opts.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := g.refresh(ctx); err != nil {
			if ctx.Err() == nil {
				g.opts.Logger.Warn("read replicas", "err", err)
			}
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
			moved, err = takeOver(ctx, tx, d.ID, QueueName(d.ID), ClientID(d.ID), owners)
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
