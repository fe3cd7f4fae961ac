package store

import (
	"context"
	"database/sql"
	"errors"
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
	Body            string    `json:"-"`
	Status          string    `json:"status"`
	Result          string    `json:"result"`
	DuplicateOf     int64     `json:"duplicate_of,omitempty"`
	ReceivedAt      time.Time `json:"received_at"`
	ProcessedAt     time.Time `json:"processed_at"`
}

const deliveryCols = `id, COALESCE(integration_id, 0), integration_name, event, idempotency_key, event_uuid, webhook_uuid,
	headers, body, status, result, duplicate_of, received_at, processed_at`

func scanDelivery(row interface{ Scan(...any) error }) (Delivery, error) {
	var d Delivery
	var rec, proc int64
	err := row.Scan(&d.ID, &d.IntegrationID, &d.IntegrationName, &d.Event, &d.IdempotencyKey, &d.EventUUID,
		&d.WebhookUUID, &d.Headers, &d.Body, &d.Status, &d.Result, &d.DuplicateOf, &rec, &proc)
	if errors.Is(err, sql.ErrNoRows) {
		return d, ErrNotFound
	}
	d.ReceivedAt, d.ProcessedAt = fromMicros(rec), fromMicros(proc)
	return d, err
}

// InsertDelivery stores d. When d.IdempotencyKey was already seen for the
// integration, it is stored as a duplicate instead (Status and DuplicateOf
// set) and dup is true. The first delivery with a key wins even when two
// arrive at once: the unique dedupe_key decides.
func InsertDelivery(ctx context.Context, q Querier, d *Delivery) (dup bool, err error) {
	d.ReceivedAt = Now()
	insert := func(dedupe any, conflict string) error {
		return q.QueryRowContext(ctx, `INSERT INTO deliveries (integration_id, integration_name, event, idempotency_key,
		dedupe_key, event_uuid, webhook_uuid, headers, body, status, result, duplicate_of, received_at)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13) `+conflict+` RETURNING id`,
			d.IntegrationID, d.IntegrationName, d.Event, d.IdempotencyKey, dedupe, d.EventUUID, d.WebhookUUID, d.Headers,
			d.Body, d.Status, d.Result, d.DuplicateOf, micros(d.ReceivedAt)).Scan(&d.ID)
	}
	if d.IdempotencyKey == "" {
		return false, insert(nil, "")
	}
	// Integration names never hold '/', so this key cannot collide across integrations.
	dedupe := d.IntegrationName + "/" + d.IdempotencyKey
	err = insert(dedupe, "ON CONFLICT (dedupe_key) DO NOTHING")
	if err == nil {
		return false, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return false, err
	}
	var first int64
	if err := q.QueryRowContext(ctx, `SELECT id FROM deliveries WHERE dedupe_key = $1`, dedupe).Scan(&first); err != nil {
		return false, err
	}
	d.Status, d.DuplicateOf = DeliveryDuplicate, first
	d.Result = "duplicate of an earlier delivery with the same Idempotency-Key: no effect"
	return true, insert(nil, "")
}

// GetDelivery returns a delivery by id.
func GetDelivery(ctx context.Context, q Querier, id int64) (Delivery, error) {
	return scanDelivery(q.QueryRowContext(ctx, `SELECT `+deliveryCols+` FROM deliveries WHERE id = $1`, id))
}

// FinishDelivery records the outcome of processing a delivery.
func FinishDelivery(ctx context.Context, q Querier, id int64, status, result string) error {
	_, err := q.ExecContext(ctx, `UPDATE deliveries SET status = $1, result = $2, processed_at = $3 WHERE id = $4`,
		status, truncate(result, 4000), micros(Now()), id)
	return err
}

// ListDeliveries returns the newest deliveries of an integration ("" = all).
func ListDeliveries(ctx context.Context, q Querier, integration string, limit int) ([]Delivery, error) {
	query := `SELECT ` + deliveryCols + ` FROM deliveries WHERE ($1 = '' OR integration_name = $1) ORDER BY id DESC LIMIT $2`
	rows, err := q.QueryContext(ctx, query, integration, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Delivery{}
	for rows.Next() {
		d, err := scanDelivery(rows)
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
