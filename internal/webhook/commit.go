package webhook

import (
	"context"
	"errors"
	"sync"

	"github.com/glenv/glenv/internal/store"
)

// Persist stores a batch of deliveries, and enqueues the processing job of
// each accepted, non-duplicate one with queue set, in ONE transaction; it
// reports per delivery whether it was a duplicate.
type Persist func(ctx context.Context, batch []*store.Delivery, queue []bool) (dup []bool, err error)

// committer is a group commit: concurrent deliveries wait for one shared
// transaction instead of one fsync each, so throughput grows with load while
// every 202 still means "on disk".
type committer struct {
	persist Persist
	in      chan *pending
	done    chan struct{}
	wg      sync.WaitGroup
}

type pending struct {
	d     *store.Delivery
	queue bool
	ctx   context.Context
	reply chan result
}

type result struct {
	dup bool
	err error
}

const maxBatch = 256

// newCommitter starts flushers goroutines that each commit one batch at a
// time: one suits SQLite's single writer; PostgreSQL commits batches in
// parallel, which hides its round trips.
func newCommitter(p Persist, flushers int) *committer {
	c := &committer{persist: p, in: make(chan *pending, 4096), done: make(chan struct{})}
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

var errClosed = errors.New("webhook receiver is shutting down")

func (c *committer) submit(ctx context.Context, d *store.Delivery, queue bool) (bool, error) {
	p := &pending{d: d, queue: queue, ctx: ctx, reply: make(chan result, 1)}
	select {
	case c.in <- p:
	case <-c.done:
		return false, errClosed
	case <-ctx.Done():
		return false, ctx.Err()
	}
	// Once handed over, wait for the outcome even if the client went away:
	// the delivery may be committed, and the answer must say so truthfully.
	r := <-p.reply
	return r.dup, r.err
}

func (c *committer) loop() {
	for {
		first, ok := <-c.in
		if !ok {
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
		c.flush(batch)
	}
}

func (c *committer) flush(batch []*pending) {
	ds := make([]*store.Delivery, len(batch))
	qs := make([]bool, len(batch))
	for i, p := range batch {
		ds[i], qs[i] = p.d, p.queue
	}
	dups, err := c.persist(context.Background(), ds, qs)
	for i, p := range batch {
		r := result{err: err}
		if err == nil {
			r.dup = dups[i]
		}
		p.reply <- r
	}
}

func (c *committer) close() {
	close(c.in)
	<-c.done
}
