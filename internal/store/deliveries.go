package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Delivery statuses.
const (
	DeliveryAccepted  = "accepted"  // stored, its job queued
	DeliveryDuplicate = "duplicate" // same Idempotency-Key as an earlier one: no effect
	DeliveryProcessed = "processed" // its actions were decided and applied
	DeliveryFailed    = "failed"    // processing gave up; result says why
)

// Delivery is one webhook request glenv accepted.
type Delivery struct {
	ID              int64     `json:"id"`
	IntegrationID   int64     `json:"-"`
	IntegrationName string    `json:"integration"`
	Event           string    `json:"event"`
	IdempotencyKey  string    `json:"idempotency_key"`
	EventUUID       string    `json:"event_uuid"`
	WebhookUUID     string    `json:"webhook_uuid"`
	Headers         string    `json:"headers"`
	Body            string    `json:"-"` // in delivery_bodies; loaded by GetDelivery(ies) only
	Status          string    `json:"status"`
	Result          string    `json:"result"`
	DuplicateOf     int64     `json:"duplicate_of,omitempty"`
	ReceivedAt      time.Time `json:"received_at"`
	ProcessedAt     time.Time `json:"processed_at"`
	// BodyDroppedAt is when retention dropped the body (zero: kept).
	BodyDroppedAt time.Time `json:"body_dropped_at,omitzero"`
	// stored is Body as PrepareBody encoded it for a database (bodies.go).
	stored preparedBody
}

// deliveryListCols are what a list shows: everything but the body (up to
// 25 MB each).
const deliveryListCols = `id, COALESCE(integration_id, 0), integration_name, event, idempotency_key, event_uuid, webhook_uuid,
	headers, status, result, duplicate_of, received_at, processed_at, body_dropped_at`

func scanDelivery(row interface{ Scan(...any) error }, withBody bool) (Delivery, error) {
	var d Delivery
	var rec, proc, dropped int64
	dest := []any{&d.ID, &d.IntegrationID, &d.IntegrationName, &d.Event, &d.IdempotencyKey, &d.EventUUID,
		&d.WebhookUUID, &d.Headers, &d.Status, &d.Result, &d.DuplicateOf, &rec, &proc, &dropped}
	if withBody {
		dest = append(dest, bodyCell{&d.Body})
	}
	err := row.Scan(dest...)
	if errors.Is(err, sql.ErrNoRows) {
		return d, ErrNotFound
	}
	d.ReceivedAt, d.ProcessedAt, d.BodyDroppedAt = fromMicros(rec), fromMicros(proc), fromMicros(dropped)
	return d, err
}

// InsertDelivery stores d; see InsertDeliveries.
func InsertDelivery(ctx context.Context, q Querier, d *Delivery) (dup bool, err error) {
	dups, err := InsertDeliveries(ctx, q, []*Delivery{d})
	if err != nil {
		return false, err
	}
	return dups[0], nil
}

// deliveryChunk bounds one multi-row INSERT (13 parameters a row stay far
// below both databases' limits; few distinct sizes keep statements cached).
// The bodies go to delivery_bodies in a statement of their own after the
// rows have ids (migration 0017 says why).
const deliveryChunk = 64

const deliveryInsert = `INSERT INTO deliveries (integration_id, integration_name, event, idempotency_key,
	dedupe_key, event_uuid, webhook_uuid, headers, body, status, result, duplicate_of, received_at) VALUES `

// InsertDeliveries stores a batch of deliveries and their bodies in a few
// multi-row statements (one round trip each on PostgreSQL) and sets their IDs. A
// delivery whose Idempotency-Key the integration has seen before — earlier
// or earlier in the batch — is stored as a duplicate (Status, DuplicateOf
// set) and reported true. The first delivery with a key wins even when two
// batches race: the unique dedupe_key decides.
func InsertDeliveries(ctx context.Context, q Querier, batch []*Delivery) ([]bool, error) {
	return InsertDeliveriesOn(ctx, q, "", batch)
}

// InsertDeliveriesOn is InsertDeliveries with the statements of dialect d
// ("" or SQLite: the portable ones). On PostgreSQL the deliveries that
// carry a new Idempotency-Key (all of GitLab's) and their bodies are
// stored by one statement, not two: one round trip and one statement's
// overhead less per group commit (deliveries_pg.go).
func InsertDeliveriesOn(ctx context.Context, q Querier, d Dialect, batch []*Delivery) ([]bool, error) {
	dups := make([]bool, len(batch))
	bodied := map[*Delivery]bool{} // bodies already stored with their rows
	now := Now()
	var keyed, rest []*Delivery
	firstOf := map[string]*Delivery{}
	for i, d := range batch {
		d.ReceivedAt = now
		k := dedupeKey(d)
		switch {
		case k == "":
			rest = append(rest, d)
		case firstOf[k] != nil:
			dups[i] = true
			rest = append(rest, d)
		default:
			firstOf[k] = d
			keyed = append(keyed, d)
		}
	}
	// Keyed deliveries first: those whose key already exists come back without an id.
	for len(keyed) > 0 {
		n := min(len(keyed), deliveryChunk)
		chunk := keyed[:n]
		keyed = keyed[n:]
		if d == Postgres {
			if err := insertKeyedPG(ctx, q, chunk, bodied); err != nil {
				return nil, err
			}
			for _, d := range chunk {
				if d.ID == 0 {
					firstOf[dedupeKey(d)] = nil // seen before this batch: look it up below
					rest = append(rest, d)
				}
			}
			continue
		}
		query, args := deliveryValues(chunk, func(d *Delivery) any { return dedupeKey(d) })
		rows, err := q.QueryContext(ctx, query+` ON CONFLICT (dedupe_key) DO NOTHING RETURNING id, dedupe_key`, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id int64
			var k string
			if err := rows.Scan(&id, &k); err != nil {
				rows.Close()
				return nil, err
			}
			firstOf[k].ID = id
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
		for _, d := range chunk {
			if d.ID == 0 {
				firstOf[dedupeKey(d)] = nil // seen before this batch: look it up below
				rest = append(rest, d)
			}
		}
	}
	for i, d := range batch {
		if k := dedupeKey(d); k != "" && d.ID == 0 {
			first := firstOf[k]
			if first == nil || first == d {
				if err := q.QueryRowContext(ctx, `SELECT id FROM deliveries WHERE dedupe_key = $1`, k).Scan(&d.DuplicateOf); err != nil {
					return nil, err
				}
			} else {
				d.DuplicateOf = first.ID
			}
			dups[i] = true
			d.Status = DeliveryDuplicate
			d.Result = "duplicate of an earlier delivery with the same Idempotency-Key: no effect"
		}
	}
	// The rest (no key, or duplicates) carry no dedupe_key. Ids come back in
	// insertion order, ascending, whatever order RETURNING lists them in.
	for len(rest) > 0 {
		n := min(len(rest), deliveryChunk)
		chunk := rest[:n]
		rest = rest[n:]
		query, args := deliveryValues(chunk, func(*Delivery) any { return nil })
		rows, err := q.QueryContext(ctx, query+` RETURNING id`, args...)
		if err != nil {
			return nil, err
		}
		var ids []int64
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, err
			}
			ids = append(ids, id)
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
		if len(ids) != len(chunk) {
			return nil, fmt.Errorf("insert deliveries: %d ids for %d rows", len(ids), len(chunk))
		}
		slices.Sort(ids)
		for i, d := range chunk {
			d.ID = ids[i]
		}
	}
	unbodied := batch
	if len(bodied) > 0 {
		unbodied = nil
		for _, d := range batch {
			if !bodied[d] {
				unbodied = append(unbodied, d)
			}
		}
	}
	for rest := unbodied; len(rest) > 0; {
		n := min(len(rest), bodyChunk)
		if err := insertBodies(ctx, q, d, rest[:n]); err != nil {
			return nil, err
		}
		rest = rest[n:]
	}
	return dups, nil
}

// bodyChunk bounds one multi-row INSERT of bodies: deliveryChunk's worth.
const bodyChunk = deliveryChunk

// insertBodies stores chunk's bodies as dialect stores them (storedBody).
func insertBodies(ctx context.Context, q Querier, dialect Dialect, chunk []*Delivery) error {
	var b strings.Builder
	b.WriteString(`INSERT INTO delivery_bodies (delivery_id, body) VALUES `)
	args := make([]any, 0, 2*len(chunk))
	for i, d := range chunk {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "($%d,$%d)", 2*i+1, 2*i+2)
		args = append(args, d.ID, d.storedBody(dialect))
	}
	_, err := q.ExecContext(ctx, b.String(), args...)
	return err
}

func deliveryValues(chunk []*Delivery, dedupe func(*Delivery) any) (string, []any) {
	var b strings.Builder
	b.WriteString(deliveryInsert)
	args := make([]any, 0, len(chunk)*13)
	for i, d := range chunk {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('(')
		for c := 0; c < 13; c++ {
			if c > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "$%d", i*13+c+1)
		}
		b.WriteByte(')')
		args = append(args, d.IntegrationID, d.IntegrationName, d.Event, d.IdempotencyKey, dedupe(d), d.EventUUID,
			d.WebhookUUID, d.Headers, "", d.Status, d.Result, d.DuplicateOf, micros(d.ReceivedAt))
	}
	return b.String(), args
}

// deliveryWithBody reads deliveries with their bodies ("" once retention
// dropped them); the WHERE clause follows.
const deliveryWithBody = `SELECT ` + deliveryListCols + `, COALESCE(b.body, '')
	FROM deliveries LEFT JOIN delivery_bodies b ON b.delivery_id = deliveries.id WHERE `

// GetDelivery returns a delivery by id, with its body.
func GetDelivery(ctx context.Context, q Querier, id int64) (Delivery, error) {
	return scanDelivery(q.QueryRowContext(ctx, deliveryWithBody+`deliveries.id = $1`, id), true)
}

// GetDeliveries returns the deliveries of ids that exist, with their
// bodies, by id: one round trip for a batch a worker processes.
func GetDeliveries(ctx context.Context, q Querier, ids []int64) (map[int64]Delivery, error) {
	out := make(map[int64]Delivery, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	list, args := idList(ids)
	rows, err := q.QueryContext(ctx, deliveryWithBody+`deliveries.id IN (`+list+`)`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		d, err := scanDelivery(rows, true)
		if err != nil {
			return nil, err
		}
		out[d.ID] = d
	}
	return out, rows.Err()
}

// GetDeliveryWithoutBody returns a delivery by id as lists show it, for
// views that never show the body.
func GetDeliveryWithoutBody(ctx context.Context, q Querier, id int64) (Delivery, error) {
	return scanDelivery(q.QueryRowContext(ctx, `SELECT `+deliveryListCols+` FROM deliveries WHERE id = $1`, id), false)
}

// FinishDelivery records the outcome of processing a delivery (a narrow
// row: the body is in delivery_bodies).
func FinishDelivery(ctx context.Context, q Querier, id int64, status, result string) error {
	_, err := q.ExecContext(ctx, `UPDATE deliveries SET status = $1, result = $2, processed_at = $3 WHERE id = $4`,
		status, truncate(result, 4000), micros(Now()), id)
	return err
}

// Outcome is how processing a delivery ended.
type Outcome struct {
	ID             int64
	Status, Result string
}

// finishChunk bounds one FinishDeliveries statement (3 parameters a row).
const finishChunk = 64

// FinishDeliveries is FinishDelivery for a batch, in one statement per
// finishChunk outcomes. (VALUES names its columns column1… on both
// databases; the casts tell PostgreSQL their types.)
func FinishDeliveries(ctx context.Context, q Querier, done []Outcome) error {
	now := micros(Now())
	for len(done) > 0 {
		n := min(len(done), finishChunk)
		var b strings.Builder
		b.WriteString(`UPDATE deliveries SET status = v.column2, result = v.column3, processed_at = $1 FROM (VALUES `)
		args := make([]any, 1, 1+3*n)
		args[0] = now
		for i, o := range done[:n] {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "(CAST($%d AS BIGINT), CAST($%d AS TEXT), CAST($%d AS TEXT))", 3*i+2, 3*i+3, 3*i+4)
			args = append(args, o.ID, o.Status, truncate(o.Result, 4000))
		}
		b.WriteString(`) AS v WHERE deliveries.id = v.column1`)
		if _, err := q.ExecContext(ctx, b.String(), args...); err != nil {
			return err
		}
		done = done[n:]
	}
	return nil
}

// ListDeliveries returns the newest deliveries of an integration ("" = all),
// without their bodies.
func ListDeliveries(ctx context.Context, q Querier, integration string, limit int) ([]Delivery, error) {
	query := `SELECT ` + deliveryListCols + ` FROM deliveries WHERE ($1 = '' OR integration_name = $1) ORDER BY id DESC LIMIT $2`
	rows, err := q.QueryContext(ctx, query, integration, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Delivery{}
	for rows.Next() {
		d, err := scanDelivery(rows, false)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// CountDeliveries counts deliveries by status (for tests and metrics).
func CountDeliveries(ctx context.Context, q Querier, status string) (int, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM deliveries WHERE status = $1`, status).Scan(&n)
	return n, err
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
