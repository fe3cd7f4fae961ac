package webhook

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/glenv/glenv/internal/store"
)

// Persist stores a batch of deliveries in ONE transaction that also makes
// certain each accepted, non-duplicate one with queue set will be
// processed (a job that will process it exists once it commits: internal/jobs
// queues one drain job for all of them, not a job per batch); it reports
// per delivery whether it was a duplicate. It must honour ctx: its
// deadline is what keeps a hung database from hanging every webhook.
type Persist func(ctx context.Context, batch []*store.Delivery, queue []bool) (dup []bool, err error)

// committer is a group commit: concurrent deliveries wait for one shared
// transaction instead of one fsync each, so throughput grows with load while
// every 202 still means "on disk".
type committer struct {
	persist Persist
	timeout time.Duration // deadline of one batch's transaction
	// inProgress is how many deliveries the receiver is working on, from
	// authentication until answered (its pressure), and held how many of
	// them the flushers hold in their batches, gathering or committing:
	// the rest are on their way, or answered and soon followed by their
	// senders' next (gather).
	inProgress func() int
	held       atomic.Int64
	gatherFor  time.Duration // gatherFor but in tests
	forming    sync.Mutex    // held by the flusher forming its batch
	in         chan *pending
	quit       chan struct{} // closed first on close: senders stop waiting
	done       chan struct{}
	wg         sync.WaitGroup

	// mu guards closed and the send on in: a request that arrives during
	// the drain is refused instead of sending on a closed channel.
	mu       sync.RWMutex
	closed   bool
	quitOnce sync.Once
}

type pending struct {
	d     *store.Delivery
	queue bool
	ctx   context.Context // the request's: once it is over, the delivery is not stored
	reply chan result
}

type result struct {
	dup bool
	err error
}

const maxBatch = 256

// gatherFor bounds how long a flusher about to commit a batch waits for
// more while the receiver is working on deliveries that no flusher holds
// yet, as PostgreSQL's commit_delay waits while
// commit_siblings transactions are active. GitLab sends a project's hooks
// from Sidekiq threads that each wait on their reply; such senders reach
// a committer that commits as soon as it can a few at a time (bench/ack's
// 32 waiting senders: 2.3 deliveries a batch on average), and every
// delivery then paid a large share of a transaction: on SQLite the
// deliveries row, its four indexes, AUTOINCREMENT's sequence and the
// database header, six pages or more whatever the batch's size. A delivery
// that comes alone (none other in progress, as at a steady few hundred a
// second) is committed at once. Go's timers wake a parked flusher up to a
// millisecond late, so the wait costs up to that when nothing comes.
const gatherFor = 300 * time.Microsecond

// newCommitter starts flushers goroutines that each commit one batch at a
// time: one suits SQLite's single writer; PostgreSQL commits batches in
// parallel, which hides its round trips.
func newCommitter(p Persist, flushers int, timeout time.Duration, inProgress func() int) *committer {
	return newGatheringCommitter(p, flushers, timeout, inProgress, gatherFor)
}

// newGatheringCommitter is newCommitter with a gather bound of its own
// (tests).
func newGatheringCommitter(p Persist, flushers int, timeout time.Duration, inProgress func() int, gather time.Duration) *committer {
	c := &committer{persist: p, timeout: timeout, inProgress: inProgress, gatherFor: gather, in: make(chan *pending, 4096),
		quit: make(chan struct{}), done: make(chan struct{})}
	for i := 0; i < max(flushers, 1); i++ {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.loop()
		}()
	}
	go func() {
		c.wg.Wait()
		close(c.done)
	}()
	return c
}

// PostgresFlushers is how many batches commit at once on PostgreSQL. Two
// keep a commit in flight while the next batch is built, which is all two
// CPUs can use; each more split the same deliveries into smaller batches
// (bench/replicas: 4.5 deliveries a batch with 4 flushers, 2.4 with three
// replicas of 4), and every batch costs PostgreSQL its transaction and its
// statements whatever its size.
const PostgresFlushers = 2

var errClosed = errors.New("webhook receiver is shutting down")

// errUnconfirmed: the request's deadline passed before its batch committed.
var errUnconfirmed = errors.New("the delivery was not confirmed stored before the deadline")

// submit hands d to the group commit and waits for its outcome until ctx
// ends. ctx must carry the request's deadline.
func (c *committer) submit(ctx context.Context, d *store.Delivery, queue bool) (bool, error) {
	p := &pending{d: d, queue: queue, ctx: ctx, reply: make(chan result, 1)}
	if err := c.send(ctx, p); err != nil {
		return false, err
	}
	select {
	case r := <-p.reply:
		return r.dup, r.err
	case <-ctx.Done():
		// A batch that was not flushed yet skips this delivery (see flush),
		// so the 503 the caller sends is true unless the flush was already
		// under way; the message says so.
		return false, errUnconfirmed
	}
}

func (c *committer) send(ctx context.Context, p *pending) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return errClosed
	}
	select {
	case c.in <- p:
		return nil
	case <-c.quit:
		return errClosed
	case <-ctx.Done():
		return errUnconfirmed
	}
}

func (c *committer) loop() {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		// One flusher forms its batch at a time (forming): a gathering
		// one then sees every arrival, and no delivery another flusher
		// took is waited for. Their commits still overlap.
		c.forming.Lock()
		first, ok := <-c.in
		if !ok {
			c.forming.Unlock()
			return
		}
		batch := []*pending{first}
	fill:
		for len(batch) < maxBatch {
			select {
			case p, ok := <-c.in:
				if !ok {
					break fill
				}
				batch = append(batch, p)
			default:
				break fill
			}
		}
		c.held.Add(int64(len(batch)))
		if len(batch) < maxBatch && c.othersInProgress() {
			batch = c.gather(batch, timer)
		}
		c.forming.Unlock()
		c.flush(batch)
		c.held.Add(-int64(len(batch)))
	}
}

// othersInProgress reports whether the receiver is working on deliveries
// that no flusher holds yet.
func (c *committer) othersInProgress() bool {
	return int64(c.inProgress())-c.held.Load() > 0
}

// gather adds to batch, already held, what arrives while others are in
// progress, for gatherFor at most (timer is the flusher's own, stopped).
func (c *committer) gather(batch []*pending, timer *time.Timer) []*pending {
	timer.Reset(c.gatherFor)
	defer timer.Stop()
	for len(batch) < maxBatch && c.othersInProgress() {
		select {
		case p, ok := <-c.in:
			if !ok {
				return batch
			}
			c.held.Add(1)
			batch = append(batch, p)
		case <-timer.C:
			return batch
		}
	}
	return batch
}

func (c *committer) flush(all []*pending) {
	// A delivery whose request already ended was answered 503 (or its
	// client is gone without an answer): storing it now would make that
	// answer a lie, so it is dropped.
	batch := all[:0]
	for _, p := range all {
		if err := p.ctx.Err(); err != nil {
			p.reply <- result{err: errUnconfirmed}
			continue
		}
		batch = append(batch, p)
	}
	if len(batch) == 0 {
		return
	}
	ds := make([]*store.Delivery, len(batch))
	qs := make([]bool, len(batch))
	for i, p := range batch {
		ds[i], qs[i] = p.d, p.queue
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	dups, err := c.persist(ctx, ds, qs)
	cancel()
	for i, p := range batch {
		r := result{err: err}
		if err == nil {
			r.dup = dups[i]
		}
		p.reply <- r
	}
}

// close stops taking deliveries and waits up to wait for the batches
// already handed over; it reports whether they all finished.
func (c *committer) close(wait time.Duration) bool {
	c.quitOnce.Do(func() { close(c.quit) })
	c.mu.Lock() // waits only for senders, and they leave at once through quit
	if !c.closed {
		c.closed = true
		close(c.in)
	}
	c.mu.Unlock()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-c.done:
		return true
	case <-t.C:
		return false
	}
}
