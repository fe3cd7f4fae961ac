package jobs

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"sync"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/rivertype"
)

// River fetches new jobs when told of them or when its poll comes round
// (50 ms on SQLite): a deploy queued by a delivery's transaction used to
// wait for two polls. River is told of jobs by its listener: on PostgreSQL
// the database's own LISTEN/NOTIFY (store.RiverListenDriver: River NOTIFYs
// in the inserting transaction, delivered at its commit); on SQLite, which
// has none, by localListener below, which glenv tells right after its own
// commits (store.AfterCommit). River's poll stays as it was, for the jobs
// River itself makes available (retries, scheduled jobs).

// InsertTx inserts a job in tx, as River's InsertTx, and has the local
// workers fetch it as soon as tx commits.
func (q *Environments) InsertTx(ctx context.Context, tx *sql.Tx, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error) {
	res, err := q.River.InsertTx(ctx, tx, args, opts)
	if err != nil {
		return nil, err
	}
	if q.local != nil && res.Job != nil && res.Job.State == rivertype.JobStateAvailable {
		queue := res.Job.Queue
		q.store.AfterCommit(tx, func() { q.local.inserted(queue) })
	}
	return res, nil
}

// insertTopic and insertPayload are River's own names for "jobs were
// inserted in this queue" (river/internal/notifier, producer.go).
const insertTopic = "river_insert"

func insertPayload(queue string) string { return `{"queue":` + strconv.Quote(queue) + `}` }

// localDriver is River's SQLite driver with localListener as its listener.
type localDriver struct {
	riverdriver.Driver[*sql.Tx]
	listener *localListener
}

func (d localDriver) GetListener(*riverdriver.GetListenenerParams) riverdriver.Listener {
	return d.listener
}

func (d localDriver) SupportsListener() bool { return true }

// localListener is a River listener within this process: it hears what
// inserted says, at once. River's SQLite driver has a listener of its own,
// but it polls a table every 50 ms, no faster than River's fetch poll.
type localListener struct {
	mu        sync.Mutex
	connected bool
	topics    map[string]bool
	// ch holds notifications not yet taken; one per queue waiting is
	// enough (each makes River fetch everything available), so it never
	// grows and a full ch drops the newcomer.
	ch chan *riverdriver.Notification
}

func newLocalListener() *localListener {
	return &localListener{topics: map[string]bool{}, ch: make(chan *riverdriver.Notification, 16)}
}

// inserted tells River's producers that queue has a new available job.
func (l *localListener) inserted(queue string) {
	l.mu.Lock()
	listening := l.connected && l.topics[insertTopic]
	l.mu.Unlock()
	if !listening {
		return // River polls until its notifier is up again
	}
	select {
	case l.ch <- &riverdriver.Notification{Topic: insertTopic, Payload: insertPayload(queue)}:
	default:
	}
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
	select {
	case n := <-l.ch:
		return n, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
