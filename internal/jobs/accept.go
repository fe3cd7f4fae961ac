package jobs

import (
	"context"
	"database/sql"

	"github.com/glenv/glenv/internal/store"
)

// AcceptDeliveries stores a batch of webhook deliveries and the job that
// processes them in one transaction (the receiver's group commit): once it
// returns nil, every delivery is committed with its job. queue[i] says
// whether delivery i is to be processed; dups[i] that it repeats one
// already stored (its Idempotency-Key), which is then neither stored nor
// queued again.
func (q *Environments) AcceptDeliveries(ctx context.Context, batch []*store.Delivery, queue []bool) (dups []bool, err error) {
	err = q.store.TxUrgent(ctx, func(tx *sql.Tx) error {
		var err error
		if dups, err = store.InsertDeliveriesOn(ctx, tx, q.store.Dialect, batch); err != nil {
			return err
		}
		var ids []int64
		for i, d := range batch {
			if queue[i] && !dups[i] {
				ids = append(ids, d.ID)
			}
		}
		if len(ids) == 0 {
			return nil
		}
		_, err = q.InsertTx(ctx, tx, ProcessDeliveryArgs{DeliveryIDs: ids}, nil)
		return err
	})
	return dups, err
}
