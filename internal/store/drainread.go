package store

import (
	"context"
	"fmt"
)

// AcceptedAmong returns which of ids (in ascending order) are still
// accepted, read in q: the SQLite drain reads its next batch, bodies and
// all, through the read pool, and then only checks their status on the
// writer (one range of the primary key: the same statement whatever the
// batch).
func AcceptedAmong(ctx context.Context, q Querier, ids []int64) (map[int64]bool, error) {
	if len(ids) == 0 {
		return map[int64]bool{}, nil
	}
	rows, err := q.QueryContext(ctx, `SELECT id FROM deliveries WHERE id >= $1 AND id <= $2 AND status = $3`,
		ids[0], ids[len(ids)-1], DeliveryAccepted)
	if err != nil {
		return nil, fmt.Errorf("check the deliveries read for processing are still accepted: %w", err)
	}
	return scanIDSet(rows)
}
