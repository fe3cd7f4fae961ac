package jobs

import (
	"context"
	"errors"
	"fmt"

	"github.com/glenv/glenv/internal/store"
)

// drainCheck declines a one-trip ack (store.PipelinedPG's Check) when no
// drain job is waiting or running: count(*) is then 0 and the division
// fails, which rolls the ack back whole; it is then redone in a transaction
// that inserts the drain job with River (ensureDrain). A drain waits for
// nearly every ack, so this is rare: once per drain, not per batch.
var drainCheck = `SELECT 1 / count(*) FROM (` + drainWaiting + `) AS waiting`

// acceptPipelined is AcceptDeliveries' common case on PostgreSQL in one
// round trip: the insert takes drainLock shared, and drainCheck — a later
// statement, so its snapshot is taken with the lock held, as ensureDrain's
// look — makes certain a drain will read the deliveries (see the top of
// drain.go). store.ErrDeclined: nothing was stored, take the transaction.
func (q *Environments) acceptPipelined(ctx context.Context, batch []*store.Delivery, queue []bool) ([]bool, error) {
	queued := false
	for _, b := range queue {
		queued = queued || b
	}
	var p store.PipelinedPG
	if queued {
		if !q.drainLikely.Load() {
			// No drain is known to wait: the check would fail, and each
			// failure is an ERROR line in PostgreSQL's log (division by
			// zero). The transaction inserts the drain at once instead;
			// at a few deliveries a minute that is every delivery.
			return nil, store.ErrDeclined
		}
		p = store.PipelinedPG{LockShared: drainLock, Check: drainCheck}
	}
	if err := q.store.InsertDeliveriesPipelined(ctx, batch, p); err != nil {
		if errors.Is(err, store.ErrDeclined) {
			// The drain may have ended (here or on another replica): the
			// transaction looks, and inserts one if so.
			q.drainLikely.Store(false)
			return nil, err
		}
		return nil, fmt.Errorf("store the deliveries: %w", err)
	}
	// The one-trip path takes only batches without duplicates.
	dups := make([]bool, len(batch))
	if queued {
		q.keepFresh(batch, queue, dups)
		q.wakeDrain()
	}
	return dups, nil
}
