package jobs

import (
	"context"
	"database/sql"
	"fmt"
	"slices"

	"github.com/glenv/glenv/internal/lifecycle"
	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/webhook"
)

// deliveryBatch is what the deliveries processed in one transaction share,
// so that the batch costs a few statements rather than a few per delivery
// (on PostgreSQL a statement is a round trip, and its fixed cost on both
// sides was most of a delivery's): the integrations, read once; every
// delivery's event, parsed once; the environments the events concern, read
// and locked with one statement; and the sync activities, inserted with one
// statement at the end.
type deliveryBatch struct {
	ins    map[string]*store.Integration
	events map[int64]parsedEvent
	// locked holds rows read locked at the start, by integration and name
	// (nil: no such row). An entry is used once, by the first delivery
	// that concerns it, and dropped as soon as anything in the batch may
	// have changed its row: later deliveries read the row again.
	locked map[string]map[string]*store.Environment
	later  *activityQueue
}

type parsedEvent struct {
	ev  lifecycle.Event
	err error
}

// parseAll parses the events of ds, for newDeliveryBatch: the SQLite
// drain parses its batch before its write transaction, which then holds
// the one writer only for the batch's reads and writes (parsing was 5–9 %
// of that hold: BenchmarkDrainWriterHold's CPU profile).
func parseAll(ds []store.Delivery) map[int64]parsedEvent {
	out := make(map[int64]parsedEvent, len(ds))
	for _, d := range ds {
		if d.Status == store.DeliveryAccepted {
			out[d.ID] = parseDelivery(&d)
		}
	}
	return out
}

// parseDelivery parses d's stored event.
func parseDelivery(d *store.Delivery) parsedEvent {
	ev, err := webhook.ParseStored(d.Event, d.Body)
	return parsedEvent{ev: ev, err: err}
}

// newDeliveryBatch parses the accepted deliveries of ds and reads the
// environments their events concern, locked, one statement per integration.
//
// parsed holds events parsed before the transaction (parseAll), by
// delivery id; the rest are parsed here.
func newDeliveryBatch(ctx context.Context, tx *sql.Tx, q *Environments, ds map[int64]store.Delivery, parsed map[int64]parsedEvent) (*deliveryBatch, error) {
	d := q.store.Dialect
	b := &deliveryBatch{ins: map[string]*store.Integration{}, events: make(map[int64]parsedEvent, len(ds)),
		locked: map[string]map[string]*store.Environment{}, later: &activityQueue{saved: q.changed}}
	names := map[string][]string{}
	for id, dl := range ds {
		if dl.Status != store.DeliveryAccepted {
			continue
		}
		p, ok := parsed[id]
		if !ok {
			p = parseDelivery(&dl)
		}
		ev, err := p.ev, p.err
		b.events[id] = p
		if n := eventEnvName(ev); err == nil && n != "" && !slices.Contains(names[dl.IntegrationName], n) {
			names[dl.IntegrationName] = append(names[dl.IntegrationName], n)
		}
	}
	for integration, ns := range names {
		slices.Sort(ns) // one statement text per batch shape, whatever the order
		rows, err := store.LockEnvironments(ctx, tx, d, integration, ns)
		if err != nil {
			return nil, err
		}
		m := make(map[string]*store.Environment, len(ns))
		for _, n := range ns {
			m[n] = nil
			if e, ok := rows[n]; ok {
				m[n] = &e
			}
		}
		b.locked[integration] = m
	}
	return b, nil
}

// take returns the row read for integration and name at the start of the
// batch (nil: none) and forgets it; ok is false when there is none to use.
func (b *deliveryBatch) take(integration, name string) (row *store.Environment, ok bool) {
	if b == nil {
		return nil, false
	}
	row, ok = b.locked[integration][name]
	delete(b.locked[integration], name)
	return row, ok
}

// forget drops rows that may have changed since they were read.
func (b *deliveryBatch) forget(integration string, actions []lifecycle.Action) {
	if b == nil {
		return
	}
	for _, a := range actions {
		delete(b.locked[integration], a.Env)
	}
}

// forgetAll drops every row of integration (its default branch moved,
// which rewrites its environments' parents and tiers).
func (b *deliveryBatch) forgetAll(integration string) {
	if b != nil {
		delete(b.locked, integration)
	}
}

// activityQueue holds writes a batch makes together later in the same
// transaction: sync activities (nobody refers to them by id) and the rows of
// new inactive environments (nothing reads them before the batch ends), so
// a delivery creating a branch costs no statement of its own. The queue is
// flushed before anything else in the transaction reads or writes
// environments or inserts an activity, so nothing sees the database without
// them and ids still follow the order things were recorded in.
type activityQueue struct {
	envs []*store.Environment
	acts []queuedActivity
	// saved is told of each queued environment once it has its id (the
	// dashboard's after-commit notice, which a transition gives otherwise).
	saved func(tx *sql.Tx, id int64)
}

type queuedActivity struct {
	a   store.Activity
	env *store.Environment // queued environment it is about (nil: a.EnvironmentID)
}

// add records a about env, or inserts it now when there is no queue.
func (l *activityQueue) add(ctx context.Context, tx *sql.Tx, a store.Activity, env *store.Environment) error {
	if l == nil {
		return store.InsertActivity(ctx, tx, &a)
	}
	qa := queuedActivity{a: a}
	if env.ID == 0 {
		if qa.env = l.queued(env.IntegrationName, env.Name); qa.env == nil {
			return fmt.Errorf("activity for environment %q, which is neither stored nor queued", env.Name)
		}
	}
	qa.a.CreatedAt = store.Now()
	l.acts = append(l.acts, qa)
	return nil
}

// saveLater queues a copy of env, a new row, to be written by flush; it
// reports false (nothing queued) when there is no queue or the row is
// already queued.
func (l *activityQueue) saveLater(env *store.Environment) bool {
	if l == nil || env.ID != 0 || l.queued(env.IntegrationName, env.Name) != nil {
		return false
	}
	c := *env
	l.envs = append(l.envs, &c)
	return true
}

func (l *activityQueue) queued(integration, name string) *store.Environment {
	for _, e := range l.envs {
		if e.IntegrationName == integration && e.Name == name {
			return e
		}
	}
	return nil
}

// flush writes the queued environments, then the queued activities.
func (l *activityQueue) flush(ctx context.Context, tx *sql.Tx) error {
	if l == nil {
		return nil
	}
	if len(l.envs) > 0 {
		if err := store.SaveEnvironments(ctx, tx, l.envs); err != nil {
			return err
		}
		for _, e := range l.envs {
			if l.saved != nil {
				l.saved(tx, e.ID)
			}
		}
		l.envs = l.envs[:0]
	}
	if len(l.acts) == 0 {
		return nil
	}
	acts := make([]store.Activity, len(l.acts))
	for i, qa := range l.acts {
		acts[i] = qa.a
		if qa.env != nil {
			acts[i].EnvironmentID = qa.env.ID
		}
	}
	l.acts = l.acts[:0]
	return store.InsertActivities(ctx, tx, acts)
}

// eventEnvName is the one environment an event can concern ("" for none).
func eventEnvName(ev lifecycle.Event) string {
	switch {
	case ev.Kind == lifecycle.KindPush:
		return ev.Ref
	case ev.Kind == lifecycle.KindTagPush:
		return lifecycle.TagName(ev.Ref)
	case ev.Kind == lifecycle.KindMergeRequest && ev.MR != nil:
		return lifecycle.MRName(ev.MR.IID)
	}
	return ""
}

// perTx is how many deliveries one transaction processes. On SQLite it is
// deliveriesPerTx, which bounds how long processing holds the one writer.
// PostgreSQL has no such writer (acknowledgements commit beside a
// processing transaction), and a batch's statements are few and fixed (8:
// BEGIN, the deliveries, the integration, the environments, the new ones,
// the activities, the outcomes, COMMIT), so more deliveries share them:
// BenchmarkProcessDelivery on PostgreSQL went from 232 + 214 µs (glenv +
// server CPU) a delivery with 8 to 147 + 130 with 32 (load 7). A batch of
// 32 holds its environments' row locks for about 10 ms.
func perTx(d store.Dialect) int {
	if d == store.Postgres {
		return 32
	}
	return deliveriesPerTx
}

// event is the delivery's event as the batch parsed it.
func (b *deliveryBatch) event(id int64) (parsedEvent, bool) {
	if b == nil {
		return parsedEvent{}, false
	}
	p, ok := b.events[id]
	return p, ok
}

// flush inserts the batch's queued activities.
func (b *deliveryBatch) flush(ctx context.Context, tx *sql.Tx) error {
	if b == nil {
		return nil
	}
	return b.later.flush(ctx, tx)
}
