package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Queries of the delivery drain (internal/jobs/drain.go): the one job that
// processes every accepted delivery, oldest first.

// NextAcceptedDeliveries returns up to n accepted deliveries, with their
// bodies, in id order. On PostgreSQL it locks their rows (a job queued by an
// older glenv may name the same deliveries and run on another worker: the
// second to lock a row sees it processed and skips it).
func NextAcceptedDeliveries(ctx context.Context, q Querier, d Dialect, n int) ([]Delivery, error) {
	query := deliveryWithBody + `deliveries.status = $1 ORDER BY deliveries.id LIMIT $2`
	if d == Postgres {
		query += ` FOR UPDATE OF deliveries`
	}
	return nextAccepted(ctx, q, query, n, true)
}

// nextAccepted runs query, one of the reads of the next n accepted
// deliveries, and scans its rows (with their bodies when withBody).
func nextAccepted(ctx context.Context, q Querier, query string, n int, withBody bool) ([]Delivery, error) {
	rows, err := q.QueryContext(ctx, query, DeliveryAccepted, n)
	if err != nil {
		return nil, fmt.Errorf("read the next accepted deliveries: %w", err)
	}
	defer rows.Close()
	var out []Delivery
	for rows.Next() {
		dv, err := scanDelivery(rows, withBody)
		if err != nil {
			return nil, err
		}
		out = append(out, dv)
	}
	return out, rows.Err()
}

// LockNextAcceptedDeliveries is NextAcceptedDeliveries without the
// bodies, for a drain that has most of them in memory (PostgreSQL's, see
// internal/jobs/fresh.go): the rows only, locked on PostgreSQL. Reading the
// bodies back was the drain's largest read: an 8 KB push is TOASTed out of
// line, and its chunks, their index and its decompression cost PostgreSQL
// 10–11 buffer reads a delivery (pg_stat_statements over bench/ack) where
// the row and its index cost 2–3. DeliveryBodies reads those it lacks.
func LockNextAcceptedDeliveries(ctx context.Context, q Querier, d Dialect, n int) ([]Delivery, error) {
	query := `SELECT ` + deliveryListCols + ` FROM deliveries WHERE status = $1 ORDER BY id LIMIT $2`
	if d == Postgres {
		query += ` FOR UPDATE`
	}
	return nextAccepted(ctx, q, query, n, false)
}

// DeliveryBodies returns the stored bodies of the deliveries of ids that
// have one, by id.
func DeliveryBodies(ctx context.Context, q Querier, ids []int64) (map[int64]string, error) {
	out := make(map[int64]string, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	list, args := idList(ids)
	rows, err := q.QueryContext(ctx, `SELECT delivery_id, body FROM delivery_bodies WHERE delivery_id IN (`+list+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("read the deliveries' bodies: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var body string
		if err := rows.Scan(&id, bodyCell{&body}); err != nil {
			return nil, err
		}
		out[id] = body
	}
	return out, rows.Err()
}

// NextAcceptedIDs returns the ids of up to n accepted deliveries, the
// oldest first: the (status, id) index alone, no row and no body.
func NextAcceptedIDs(ctx context.Context, q Querier, n int) ([]int64, error) {
	rows, err := q.QueryContext(ctx, `SELECT id FROM deliveries WHERE status = $1 ORDER BY id LIMIT $2`, DeliveryAccepted, n)
	if err != nil {
		return nil, fmt.Errorf("read the next accepted deliveries: %w", err)
	}
	return scanIDs(rows)
}

// AsRead is d, just stored by InsertDeliveries, as GetDeliveries would
// read it back: times at the microseconds stored, in UTC.
func AsRead(d *Delivery) Delivery {
	c := *d
	c.stored = preparedBody{}
	c.ReceivedAt = fromMicros(micros(d.ReceivedAt))
	c.ProcessedAt = fromMicros(micros(d.ProcessedAt))
	c.BodyDroppedAt = fromMicros(micros(d.BodyDroppedAt))
	return c
}

// AnyAcceptedDelivery reports whether a delivery still waits to be processed.
func AnyAcceptedDelivery(ctx context.Context, q Querier) (bool, error) {
	var one int
	err := q.QueryRowContext(ctx, `SELECT 1 FROM deliveries WHERE status = $1 LIMIT 1`, DeliveryAccepted).Scan(&one)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return false, err
}

// LockDeliveries locks the rows of ids on PostgreSQL, in id order (so two
// workers locking overlapping sets never deadlock); a no-op on SQLite,
// whose one writer already serialises them.
func LockDeliveries(ctx context.Context, q Querier, d Dialect, ids []int64) error {
	if d != Postgres || len(ids) == 0 {
		return nil
	}
	list, args := idList(ids)
	rows, err := q.QueryContext(ctx, `SELECT id FROM deliveries WHERE id IN (`+list+`) ORDER BY id FOR UPDATE`, args...)
	if err != nil {
		return fmt.Errorf("lock deliveries: %w", err)
	}
	return rows.Close()
}

// RecordDeliveryAttempt counts one failed attempt at processing delivery
// id, keeps reason as its result (status unchanged), and returns how many
// attempts failed so far.
func RecordDeliveryAttempt(ctx context.Context, q Querier, id int64, reason string) (int, error) {
	var n int
	err := q.QueryRowContext(ctx, `UPDATE deliveries SET attempts = attempts + 1, result = $1 WHERE id = $2 RETURNING attempts`,
		truncate(reason, 4000), id).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, ErrNotFound
	}
	return n, err
}
