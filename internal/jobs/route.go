package jobs

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"

	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/rivertype"
)

// On PostgreSQL, River NOTIFYs in every transaction that inserts a job, and
// PostgreSQL serialises the commits of all transactions that NOTIFY on one
// lock (async.c, PreCommit_Notify: an AccessExclusiveLock on the database
// object): webhook acks from several replicas queued behind each other,
// and every listening replica woke and fetched on every insert
// (bench/replicas). routedDriver keeps the database's NOTIFY for the jobs
// only another replica works (its own queue, issue 16's placement) and
// tells this process's workers of their jobs after the commit instead, as
// on SQLite (nudge.go). Leadership and queue control notifications still go
// through PostgreSQL.

// routedDriver is River's PostgreSQL driver with its insert notifications
// routed by queue, and a listener that hears both PostgreSQL and this
// process (mergedListener).
type routedDriver struct {
	riverdriver.Driver[*sql.Tx]
	r *router
}

// router says where an insert notification for a queue goes.
type router struct {
	// local tells this process's workers of the queues it works
	// (local.works); the other queues are told through PostgreSQL.
	local *localListener
	// afterCommit runs fn once the glenv transaction tx commits
	// (store.AfterCommit).
	afterCommit func(tx *sql.Tx, fn func())
}

func (d routedDriver) GetExecutor() riverdriver.Executor {
	return routedExecutor{Executor: d.Driver.GetExecutor(), r: d.r}
}

func (d routedDriver) GetListener(p *riverdriver.GetListenenerParams) riverdriver.Listener {
	return &mergedListener{Listener: d.Driver.GetListener(p), local: d.r.local}
}

// UnwrapExecutor is how River works inside a transaction of glenv's
// (InsertTx): its local wakes run once glenv has committed tx.
func (d routedDriver) UnwrapExecutor(tx *sql.Tx) riverdriver.ExecutorTx {
	return &routedTx{ExecutorTx: d.Driver.UnwrapExecutor(tx), r: d.r,
		onCommit: func(fn func()) { d.r.afterCommit(tx, fn) }}
}

func (d routedDriver) UnwrapTx(e riverdriver.ExecutorTx) *sql.Tx {
	if t, ok := e.(*routedTx); ok {
		e = t.ExecutorTx
	}
	return d.Driver.UnwrapTx(e)
}

// routedExecutor begins River's own transactions (Insert outside a
// transaction, the scheduler, periodic jobs) as routedTx.
type routedExecutor struct {
	riverdriver.Executor
	r *router
}

func (e routedExecutor) Begin(ctx context.Context) (riverdriver.ExecutorTx, error) {
	tx, err := e.Executor.Begin(ctx)
	if err != nil {
		return nil, err
	}
	t := &routedTx{ExecutorTx: tx, r: e.r, own: true}
	t.onCommit = func(fn func()) { t.wakes = append(t.wakes, fn) }
	return t, nil
}

// routedTx is a River transaction whose insert notifications are routed.
type routedTx struct {
	riverdriver.ExecutorTx
	r *router
	// onCommit holds fn until the transaction has committed.
	onCommit func(fn func())
	// own: River began this transaction and commits it here, running
	// wakes (bounded by the queues this process works) after.
	own   bool
	wakes []func()
}

// Begin starts a savepoint whose wakes wait for the outer commit: waking
// for a savepoint rolled back later costs one empty fetch, no more.
func (t *routedTx) Begin(ctx context.Context) (riverdriver.ExecutorTx, error) {
	sub, err := t.ExecutorTx.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return &routedTx{ExecutorTx: sub, r: t.r, onCommit: t.onCommit}, nil
}

func (t *routedTx) Commit(ctx context.Context) error {
	if err := t.ExecutorTx.Commit(ctx); err != nil {
		return err
	}
	if t.own {
		for _, fn := range t.wakes {
			fn()
		}
		t.wakes = nil
	}
	return nil
}

// JobInsertFastMany and JobInsertFastManyNoReturning are every insert of
// River's client (InsertTx, Insert, InsertMany, periodic jobs): each job
// made available is told of here, whatever River's insert limiter (one
// NOTIFY per queue per FetchCooldown) left out of NotifyMany, so no insert
// waits for the poll.
func (t *routedTx) JobInsertFastMany(ctx context.Context, p *riverdriver.JobInsertFastManyParams) ([]*riverdriver.JobInsertFastResult, error) {
	res, err := t.ExecutorTx.JobInsertFastMany(ctx, p)
	if err != nil {
		return nil, err
	}
	return res, t.inserted(ctx, p)
}

func (t *routedTx) JobInsertFastManyNoReturning(ctx context.Context, p *riverdriver.JobInsertFastManyParams) (int, error) {
	n, err := t.ExecutorTx.JobInsertFastManyNoReturning(ctx, p)
	if err != nil {
		return 0, err
	}
	return n, t.inserted(ctx, p)
}

// inserted wakes this process's workers after the commit for the queues it
// works, and NOTIFYs the others' (PostgreSQL delivers one of identical
// NOTIFYs of a transaction, so River's own costs nothing more).
func (t *routedTx) inserted(ctx context.Context, p *riverdriver.JobInsertFastManyParams) error {
	seen := map[string]bool{}
	var remote []string
	for _, j := range p.Jobs {
		if j.State != rivertype.JobStateAvailable || seen[j.Queue] {
			continue
		}
		seen[j.Queue] = true
		queue := j.Queue
		if t.r.local.works[queue] {
			t.onCommit(func() { t.r.local.inserted(queue) })
		} else {
			remote = append(remote, insertPayload(queue))
		}
	}
	if len(remote) == 0 {
		return nil
	}
	return t.ExecutorTx.NotifyMany(ctx, &riverdriver.NotifyManyParams{Payload: remote, Schema: p.Schema, Topic: insertTopic})
}

// NotifyMany sends River's insert notifications for the queues this
// process works to its own workers after the commit, and the rest (a
// queue of another replica) through PostgreSQL: besides inserts, River's
// scheduler sends them for the retries and scheduled jobs it makes
// available.
func (t *routedTx) NotifyMany(ctx context.Context, p *riverdriver.NotifyManyParams) error {
	if p.Topic != insertTopic {
		return t.ExecutorTx.NotifyMany(ctx, p)
	}
	var remote []string
	for _, payload := range p.Payload {
		var n struct {
			Queue string `json:"queue"`
		}
		if err := json.Unmarshal([]byte(payload), &n); err != nil || !t.r.local.works[n.Queue] {
			remote = append(remote, payload)
			continue
		}
		queue := n.Queue
		t.onCommit(func() { t.r.local.inserted(queue) })
	}
	if len(remote) == 0 {
		return nil
	}
	return t.ExecutorTx.NotifyMany(ctx, &riverdriver.NotifyManyParams{Payload: remote, Schema: p.Schema, Topic: p.Topic})
}

// mergedListener is River's PostgreSQL listener that also yields what this
// process tells its local listener: River has one listener per client.
type mergedListener struct {
	riverdriver.Listener // PostgreSQL's
	local                *localListener
}

func (m *mergedListener) Connect(ctx context.Context) error {
	if err := m.Listener.Connect(ctx); err != nil {
		return err
	}
	return m.local.Connect(ctx)
}

func (m *mergedListener) Close(ctx context.Context) error {
	return errors.Join(m.local.Close(ctx), m.Listener.Close(ctx))
}

func (m *mergedListener) Listen(ctx context.Context, topic string) error {
	if err := m.Listener.Listen(ctx, topic); err != nil {
		return err
	}
	return m.local.Listen(ctx, topic)
}

func (m *mergedListener) Unlisten(ctx context.Context, topic string) error {
	return errors.Join(m.local.Unlisten(ctx, topic), m.Listener.Unlisten(ctx, topic))
}

// WaitForNotification returns this process's pending notifications first,
// else waits on PostgreSQL until a local one interrupts the wait (by its
// context, as River's notifier interrupts it for every LISTEN and ping).
// Local notifications coalesce per queue, so a burst of commits costs one
// interruption, not one each.
func (m *mergedListener) WaitForNotification(ctx context.Context) (*riverdriver.Notification, error) {
	for {
		if n := m.local.next(); n != nil {
			return n, nil
		}
		wctx, cancel := context.WithCancel(ctx)
		stop, done := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(done)
			select {
			case <-m.local.wake:
				cancel()
			case <-stop:
			}
		}()
		n, err := m.Listener.WaitForNotification(wctx)
		close(stop)
		<-done
		interrupted := wctx.Err() != nil
		cancel()
		if err == nil {
			return n, nil
		}
		if ctx.Err() != nil || !interrupted {
			return nil, err
		}
		// A local notification ended the wait: take it above.
	}
}
