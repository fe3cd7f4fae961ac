package jobs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/rivertype"

	"github.com/glenv/glenv/internal/store"
)

// River fetches new jobs when told of them or when its poll comes round:
// a deploy queued by a delivery's transaction used to wait for two polls.
// River is told of jobs by its listener. glenv tells it of the jobs it
// commits for this process's own workers right after the commit
// (store.AfterCommit) through localListener below: on SQLite, which has no
// LISTEN/NOTIFY, and on PostgreSQL too, where River's NOTIFY in every
// inserting transaction serialised the commits of all replicas (route.go).
// Jobs for a queue another replica works are told through PostgreSQL's
// NOTIFY. River's poll stays, for the jobs River itself makes available
// (retries, scheduled jobs) and those other processes insert.

// InsertTx inserts a job in tx, as River's InsertTx, and has the workers
// that work its queue fetch it as soon as tx commits: on SQLite here, on
// PostgreSQL in River's driver (route.go), which sees every insert.
func (q *Environments) InsertTx(ctx context.Context, tx *sql.Tx, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error) {
	res, err := q.River.InsertTx(ctx, tx, args, opts)
	if err != nil {
		return nil, err
	}
	if q.store.Dialect == store.SQLite && res.Job != nil && res.Job.State == rivertype.JobStateAvailable && q.works(res.Job.Queue) {
		queue := res.Job.Queue
		q.store.AfterCommit(tx, func() { q.local.inserted(queue) })
	}
	return res, nil
}

// works reports whether this process's River client works queue.
func (q *Environments) works(queue string) bool {
	return q.local != nil && q.local.works[queue]
}

// insertTopic and insertPayload are River's own names for "jobs were
// inserted in this queue" (river/internal/notifier; client.go,
// maybeNotifyInsertForQueues, whose payload this repeats to the byte).
const insertTopic = "river_insert"

func insertPayload(queue string) string { return fmt.Sprintf(`{"queue": %q}`, queue) }

// localDriver is River's SQLite driver with localListener as its listener,
// and its background writes yielding to acknowledgements (riveryield.go).
type localDriver struct {
	riverdriver.Driver[*sql.Tx]
	listener *localListener
	// yield waits for the acknowledgements in progress, bounded; nil: none.
	yield func(ctx context.Context)
}

func (d localDriver) GetExecutor() riverdriver.Executor {
	if d.yield == nil {
		return d.Driver.GetExecutor()
	}
	return yieldingExecutor{Executor: d.Driver.GetExecutor(), yield: d.yield}
}

func (d localDriver) GetListener(*riverdriver.GetListenenerParams) riverdriver.Listener {
	return d.listener
}

func (d localDriver) SupportsListener() bool { return true }

// localListener is a River listener within this process: it hears what
// inserted says, at once. River's SQLite driver has a listener of its own,
// but it polls a table every 50 ms, no faster than River's fetch poll.
type localListener struct {
	// works are the queues this process's River client works, the only
	// ones it is told of.
	works map[string]bool

	mu        sync.Mutex
	connected bool
	topics    map[string]bool
	// pending are the queues with a notification not yet taken: one per
	// queue is enough (each makes River fetch everything available), so a
	// burst of commits coalesces and it never grows beyond works.
	pending map[string]bool
	// wake holds a token while pending may be non-empty.
	wake chan struct{}
}

func newLocalListener(works map[string]bool) *localListener {
	return &localListener{works: works, topics: map[string]bool{}, pending: map[string]bool{}, wake: make(chan struct{}, 1)}
}

// inserted tells River's producers that queue has a new available job.
func (l *localListener) inserted(queue string) {
	l.mu.Lock()
	listening := l.connected && l.topics[insertTopic] && l.works[queue]
	if listening {
		l.pending[queue] = true
	}
	l.mu.Unlock()
	if !listening {
		return // River polls until its notifier is up again
	}
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// next takes a pending notification, or nil.
func (l *localListener) next() *riverdriver.Notification {
	l.mu.Lock()
	defer l.mu.Unlock()
	for queue := range l.pending {
		delete(l.pending, queue)
		return &riverdriver.Notification{Topic: insertTopic, Payload: insertPayload(queue)}
	}
	return nil
}

func (l *localListener) Connect(context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.connected {
		return errors.New("connection already established")
	}
	l.connected = true
	return nil
}

func (l *localListener) Close(context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.connected = false
	clear(l.topics)
	clear(l.pending)
	return nil
}

func (l *localListener) Listen(_ context.Context, topic string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.connected {
		return errors.New("listener is not connected")
	}
	l.topics[topic] = true
	return nil
}

func (l *localListener) Unlisten(_ context.Context, topic string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.topics, topic)
	return nil
}

func (l *localListener) Ping(context.Context) error { return nil }
func (l *localListener) Schema() string             { return "" }
func (l *localListener) SetAfterConnectExec(string) {}

func (l *localListener) WaitForNotification(ctx context.Context) (*riverdriver.Notification, error) {
	for {
		if n := l.next(); n != nil {
			return n, nil
		}
		select {
		case <-l.wake:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
