package jobs

import (
	"context"
	"database/sql"
	"maps"
	"sync"

	"github.com/glenv/glenv/internal/store"
)

// freshDeliveries holds the deliveries this process acknowledged and its
// drain has not read yet, bodies included: the drain takes them from here
// instead of reading back rows it was handed a few milliseconds before.
//
//   - SQLite: that read was 30 % of processing's CPU at 500 deliveries/s
//     (a CPU profile of bench/ack's open loop: 75 µs a delivery, the
//     bodies' pages read from the WAL with a reader's cold page cache). The
//     drain takes its ids from the (status, id) index and checks them still
//     accepted in its write transaction (AcceptedAmong), so one changed
//     meanwhile is not processed from here.
//   - PostgreSQL: the drain reads and locks its batch's rows in its
//     transaction as before and takes only the bodies from here (lockNext):
//     a body never changes once stored, and reading 8 KB pushes back out of
//     TOAST was most of the drain's reads. Another replica's acks, and a
//     replica whose drain runs elsewhere, leave entries that the bounds and
//     the drain's next take evict.
//
// The database stays the truth: a delivery missing here (glenv restarted,
// a bound evicted it, another replica acknowledged it) is read from it.
type freshDeliveries struct {
	mu    sync.Mutex
	byID  map[int64]store.Delivery
	order []int64 // ids in the order put, the oldest first: what the bounds evict
	bytes int     // the bodies' bytes in byID
}

// The bounds of freshDeliveries: beyond them the oldest are dropped (and
// read from the database when their turn comes). A burst's backlog past
// them costs the read it always cost.
const (
	freshMaxCount = 4096
	freshMaxBytes = 32 << 20
	freshMaxBody  = 1 << 20 // a larger body is not kept
)

// put keeps the deliveries of batch that were stored to be processed
// (queue[i], not dups[i], still accepted), as a read would return them. It
// runs after their transaction committed.
func (f *freshDeliveries) put(batch []*store.Delivery, queue, dups []bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.byID == nil {
		f.byID = map[int64]store.Delivery{}
	}
	for i, d := range batch {
		if !queue[i] || dups[i] || d.Status != store.DeliveryAccepted || d.ID == 0 || len(d.Body) > freshMaxBody {
			continue
		}
		if _, ok := f.byID[d.ID]; ok {
			continue
		}
		f.byID[d.ID] = store.AsRead(d)
		f.order = append(f.order, d.ID)
		f.bytes += len(d.Body)
	}
	for len(f.byID) > freshMaxCount || f.bytes > freshMaxBytes {
		f.drop(f.order[0])
		f.order = f.order[1:]
	}
	f.compact()
}

// take removes and returns those of ids (ascending) it holds, and the ids
// it does not (misses). The drain reads in id order, so what it holds
// below ids[0] was processed another way (a batch redone one by one, an
// operator) and is dropped too.
func (f *freshDeliveries) take(ids []int64) (hits map[int64]store.Delivery, misses []int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	hits = make(map[int64]store.Delivery, len(ids))
	for len(ids) > 0 && len(f.order) > 0 && f.order[0] < ids[0] {
		f.drop(f.order[0])
		f.order = f.order[1:]
	}
	for _, id := range ids {
		d, ok := f.byID[id]
		if !ok {
			misses = append(misses, id)
			continue
		}
		hits[id] = d
		f.drop(id)
	}
	f.compact()
	return hits, misses
}

// clear forgets every delivery it holds.
func (f *freshDeliveries) clear() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.byID, f.order, f.bytes = nil, nil, 0
}

// drop forgets id's delivery (its id stays in order until compact).
func (f *freshDeliveries) drop(id int64) {
	if d, ok := f.byID[id]; ok {
		f.bytes -= len(d.Body)
		delete(f.byID, id)
	}
}

// compact trims order of the ids already dropped: from its head, where the
// drain takes them, and wholly once more than half of it is stale, so
// order stays within twice freshMaxCount whatever the drain skips.
func (f *freshDeliveries) compact() {
	for len(f.order) > 0 {
		if _, ok := f.byID[f.order[0]]; ok {
			break
		}
		f.order = f.order[1:]
	}
	if len(f.order) > 2*len(f.byID)+64 {
		kept := make([]int64, 0, len(f.byID))
		for _, id := range f.order {
			if _, ok := f.byID[id]; ok {
				kept = append(kept, id)
			}
		}
		f.order = kept
	}
	if len(f.byID) == 0 {
		f.order = nil // let go of the array
	}
}

// len is how many deliveries it holds (tests).
func (f *freshDeliveries) len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.byID)
}

// lockNext reads and locks PostgreSQL's drain's next batch of at most n
// accepted deliveries in its transaction tx, oldest first, with the bodies
// from fresh, or from the database for those fresh lacks.
func (w *deliveryWorker) lockNext(ctx context.Context, tx *sql.Tx, n int) ([]store.Delivery, error) {
	ds, err := store.LockNextAcceptedDeliveries(ctx, tx, w.q.store.Dialect, n)
	if err != nil {
		return nil, err
	}
	if len(ds) == 0 {
		w.q.fresh.clear() // caught up: see readAhead
		return nil, nil
	}
	ids := make([]int64, len(ds))
	for i, d := range ds {
		ids[i] = d.ID
	}
	got, misses := w.q.fresh.take(ids)
	var read map[int64]string
	if len(misses) > 0 {
		if read, err = store.DeliveryBodies(ctx, tx, misses); err != nil {
			return nil, err
		}
	}
	for i := range ds {
		if d, ok := got[ds[i].ID]; ok {
			ds[i].Body = d.Body
		} else {
			ds[i].Body = read[ds[i].ID]
		}
	}
	return ds, nil
}

// keepFresh keeps the deliveries of batch stored to be processed (see
// put) for this process's drain, once they are committed: call it after
// the commit.
func (q *Environments) keepFresh(batch []*store.Delivery, queue, dups []bool) {
	if !q.drainReadInTx && q.works(QueueDeliveries) {
		q.fresh.put(batch, queue, dups)
	}
}

// readAhead reads the SQLite drain's next batch of at most n accepted
// deliveries, oldest first, outside its write transaction: the ids from
// the (status, id) index through the read pool, and each delivery from
// fresh, or, with its body, from the read pool when fresh lacks it.
func (w *deliveryWorker) readAhead(ctx context.Context, n int) ([]store.Delivery, error) {
	r := w.q.store.Reader()
	ids, err := store.NextAcceptedIDs(ctx, r, n)
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		// Caught up: what fresh still holds was processed another way,
		// or put after this read began (then read when its turn comes).
		w.q.fresh.clear()
		return nil, nil
	}
	got, misses := w.q.fresh.take(ids)
	if len(misses) > 0 {
		read, err := store.GetDeliveries(ctx, r, misses)
		if err != nil {
			return nil, err
		}
		maps.Copy(got, read)
	}
	out := make([]store.Delivery, 0, len(ids))
	for _, id := range ids {
		if d, ok := got[id]; ok && d.Status == store.DeliveryAccepted {
			out = append(out, d)
		}
	}
	return out, nil
}
