package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// PipelinedPG is the PostgreSQL acknowledgement of a batch in ONE round
// trip: the insert of the rows and bodies and a later check statement go
// in one pipeline ending with a single Sync, so PostgreSQL runs them as one
// implicit transaction and commits it at the Sync, before it answers
// (protocol-flow: "Pipelining"; a statement that fails aborts the whole
// implicit transaction). database/sql would spend a round trip on each of
// BEGIN, every statement and COMMIT.
type PipelinedPG struct {
	// LockShared, when not 0, is a transaction advisory lock the insert
	// takes shared (a CTE of the insert statement, so no statement of
	// its own) before Check runs.
	LockShared int64
	// Check, when not "", runs after the insert as a statement of its
	// own, so its snapshot (READ COMMITTED: one per statement) is taken
	// with LockShared held. It declines the batch — nothing is stored —
	// by failing with division_by_zero (22012): a statement cannot
	// commit or roll back a pipeline's implicit transaction on a
	// condition, but it can fail it.
	Check string
}

// ErrDeclined means the one-trip path stored nothing and the caller must
// store the batch in a transaction of its own (InsertDeliveriesOn): the
// batch has a delivery without a key or a key twice, a key was stored
// before, the check declined, or the connection is not pgx's.
var ErrDeclined = errors.New("batch declined by the one-round-trip path")

// InsertDeliveriesPipelined stores batch, whose deliveries all carry
// distinct Idempotency-Keys (as GitLab's do), and runs p's check, in one
// round trip on a connection of the acks' own pool (Store.acks); it sets
// their IDs and ReceivedAt.
// Once it returns nil, the batch is committed. ErrDeclined: nothing was
// stored.
func (s *Store) InsertDeliveriesPipelined(ctx context.Context, batch []*Delivery, p PipelinedPG) error {
	if s.Dialect != Postgres || len(batch) == 0 {
		return ErrDeclined
	}
	byKey := make(map[string]*Delivery, len(batch))
	for _, d := range batch {
		k := dedupeKey(d)
		if k == "" || byKey[k] != nil {
			return ErrDeclined // duplicates and keyless rows take the portable path
		}
		byKey[k] = d
	}
	return s.urgently(func() error {
		pool := s.DB
		if s.acks != nil {
			pool = s.acks // (Store.acks says why)
		}
		conn, err := pool.Conn(ctx)
		if err != nil {
			return fmt.Errorf("take a connection: %w", err)
		}
		defer conn.Close()
		return conn.Raw(func(dc any) error {
			pc, ok := dc.(interface{ Conn() *pgx.Conn })
			if !ok {
				return ErrDeclined
			}
			return pipelineBatch(ctx, pc.Conn(), batch, byKey, p)
		})
	})
}

// dedupeKey is the unique deliveries.dedupe_key of d ("" without a key).
// Integration names never hold '/', so it cannot collide across integrations.
func dedupeKey(d *Delivery) string {
	if d.IdempotencyKey == "" {
		return ""
	}
	return d.IntegrationName + "/" + d.IdempotencyKey
}

func pipelineBatch(ctx context.Context, c *pgx.Conn, batch []*Delivery, byKey map[string]*Delivery, p PipelinedPG) error {
	now := Now()
	for _, d := range batch {
		d.ReceivedAt = now
	}
	args := append([]any{p.LockShared}, deliveryArrays(batch)...)
	b := &pgx.Batch{}
	b.Queue(insertPipelinedPGQuery, args...)
	if p.Check != "" {
		b.Queue(p.Check)
	}
	br := c.SendBatch(ctx, b)
	ids := make(map[*Delivery]int64, len(batch))
	rows, err := br.Query()
	if err == nil {
		for rows.Next() {
			var id int64
			var k string
			if err := rows.Scan(&id, &k); err != nil {
				rows.Close()
				br.Close()
				return err
			}
			ids[byKey[k]] = id
		}
		rows.Close()
		err = rows.Err()
	}
	if err == nil && p.Check != "" {
		_, err = br.Exec()
	}
	// Close reads up to the Sync's ReadyForQuery: an error the commit
	// itself meets comes back here, so nil means committed.
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "23505" || pgErr.Code == "22012") {
		// A key stored before (unique_violation: the portable path
		// records the duplicate) or the check declined: the implicit
		// transaction was rolled back whole.
		return ErrDeclined
	}
	if err != nil {
		return err
	}
	if len(ids) != len(batch) {
		// Cannot happen (a plain INSERT stores every row or fails), but
		// a delivery without its id must never be acknowledged.
		return fmt.Errorf("stored %d of %d deliveries in one trip", len(ids), len(batch))
	}
	for _, d := range batch {
		d.ID = ids[d]
	}
	return nil
}

// deliveryArrays are the 13 column arrays of insertKeyedPGQuery's and
// insertPipelinedPGQuery's unnest, in their order.
func deliveryArrays(batch []*Delivery) []any {
	n := len(batch)
	var (
		integrationID, duplicateOf, received                    = make([]int64, n), make([]int64, n), make([]int64, n)
		name, event, idem, key, eventUUID, webhookUUID, headers = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		status, result, body                                    = make([]string, n), make([]string, n), make([]string, n)
	)
	for i, d := range batch {
		integrationID[i], name[i], event[i], idem[i], key[i] = d.IntegrationID, d.IntegrationName, d.Event, d.IdempotencyKey, dedupeKey(d)
		eventUUID[i], webhookUUID[i], headers[i], status[i], result[i] = d.EventUUID, d.WebhookUUID, d.Headers, d.Status, d.Result
		duplicateOf[i], received[i], body[i] = d.DuplicateOf, micros(d.ReceivedAt), d.Body
	}
	return []any{integrationID, name, event, idem, key, eventUUID, webhookUUID, headers, status, result, duplicateOf, received, body}
}

// insertPipelinedPGQuery is insertKeyedPGQuery with the shared advisory
// lock $1 (0: none) as a CTE the insert reads, so it is taken without a
// statement of its own (an unreferenced CTE would not run), and without ON CONFLICT: a
// key stored before fails the statement (23505) and the batch goes the
// portable way, which records it as a duplicate.
const insertPipelinedPGQuery = `WITH l AS (
	SELECT pg_advisory_xact_lock_shared($1::bigint) WHERE $1::bigint <> 0
), v AS (
	SELECT * FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
		$9::text[], $10::text[], $11::text[], $12::bigint[], $13::bigint[], $14::text[])
		AS v(integration_id, integration_name, event, idempotency_key, dedupe_key, event_uuid, webhook_uuid,
			headers, status, result, duplicate_of, received_at, body)
), d AS (
	INSERT INTO deliveries (integration_id, integration_name, event, idempotency_key, dedupe_key, event_uuid,
		webhook_uuid, headers, body, status, result, duplicate_of, received_at)
	SELECT integration_id, integration_name, event, idempotency_key, dedupe_key, event_uuid,
		webhook_uuid, headers, '', status, result, duplicate_of, received_at FROM v LEFT JOIN l ON true
	RETURNING id, dedupe_key
), b AS (
	INSERT INTO delivery_bodies (delivery_id, body) SELECT d.id, v.body FROM d JOIN v ON v.dedupe_key = d.dedupe_key
)
SELECT id, dedupe_key FROM d`
