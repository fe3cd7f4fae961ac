package jobs

import (
	"context"
	"database/sql"
	"errors"

	"github.com/glenv/glenv/internal/store"
)

// AcceptDeliveries stores a batch of webhook deliveries in one transaction
// (the receiver's group commit) and makes sure the delivery drain will
// process them (ensureDrain, drain.go): once it returns nil, every delivery
// is committed and certain to be processed. queue[i] says whether delivery
// i is to be processed; dups[i] that it repeats one already stored (its
// Idempotency-Key), which is then neither stored nor processed again.
func (q *Environments) AcceptDeliveries(ctx context.Context, batch []*store.Delivery, queue []bool) (dups []bool, err error) {
	for i, d := range batch {
		if !queue[i] && d.Status == store.DeliveryAccepted {
			// The drain processes every accepted delivery: one that is
			// not to be processed is recorded as such, as the receiver
			// records the events it does not handle.
			d.Status = store.DeliveryProcessed
			if d.Result == "" {
				d.Result = "recorded only: not queued for processing"
			}
		}
	}
	if q.store.Dialect == store.Postgres {
		dups, err := q.acceptPipelined(ctx, batch, queue)
		if !errors.Is(err, store.ErrDeclined) {
			return dups, err
		}
		// Declined, nothing stored: the transaction stores it.
	}
	return q.acceptInTx(ctx, batch, queue)
}

// acceptInTx stores batch in a transaction of its own, which inserts the
// drain job when none waits (ensureDrain): AcceptDeliveries on SQLite, and
// on PostgreSQL for the batches the one-trip path declines.
func (q *Environments) acceptInTx(ctx context.Context, batch []*store.Delivery, queue []bool) (dups []bool, err error) {
	err = q.store.TxUrgent(ctx, func(tx *sql.Tx) error {
		var err error
		if dups, err = store.InsertDeliveriesOn(ctx, tx, q.store.Dialect, batch); err != nil {
			return err
		}
		// For this process's drain to take, once committed (fresh.go).
		stored := dups
		q.store.AfterCommit(tx, func() { q.keepFresh(batch, queue, stored) })
		for i := range batch {
			if queue[i] && !dups[i] {
				return q.ensureDrain(ctx, tx)
			}
		}
		return nil
	})
	return dups, err
}
