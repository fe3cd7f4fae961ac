package store

import (
	"context"
)

// insertKeyedPG is PostgreSQL's insert of a chunk of deliveries with
// distinct, non-empty dedupe keys: the rows and their bodies in ONE
// statement (data-modifying CTEs see the same snapshot and commit
// together), where the portable path needs two. The rows travel as 13
// arrays, so the statement text is the same for every chunk size and each
// connection prepares and plans it once (pgx caches prepared statements
// per connection). Bodies are matched to the ids RETURNING gives by
// dedupe_key, which is unique; a row whose key already exists is skipped
// (ON CONFLICT DO NOTHING), keeps ID 0 and gets no body here: the caller
// stores it as a duplicate. Inserted rows are marked in bodied.
func insertKeyedPG(ctx context.Context, q Querier, chunk []*Delivery, bodied map[*Delivery]bool) error {
	byKey := make(map[string]*Delivery, len(chunk))
	for _, d := range chunk {
		byKey[dedupeKey(d)] = d
	}
	rows, err := q.QueryContext(ctx, insertKeyedPGQuery, deliveryArrays(chunk)...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var k string
		if err := rows.Scan(&id, &k); err != nil {
			return err
		}
		d := byKey[k]
		d.ID = id
		bodied[d] = true
	}
	return rows.Err()
}

const insertKeyedPGQuery = `WITH v AS (
	SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
		$8::text[], $9::text[], $10::text[], $11::bigint[], $12::bigint[], $13::text[])
		AS v(integration_id, integration_name, event, idempotency_key, dedupe_key, event_uuid, webhook_uuid,
			headers, status, result, duplicate_of, received_at, body)
), d AS (
	INSERT INTO deliveries (integration_id, integration_name, event, idempotency_key, dedupe_key, event_uuid,
		webhook_uuid, headers, body, status, result, duplicate_of, received_at)
	SELECT integration_id, integration_name, event, idempotency_key, dedupe_key, event_uuid,
		webhook_uuid, headers, '', status, result, duplicate_of, received_at FROM v
	ON CONFLICT (dedupe_key) DO NOTHING
	RETURNING id, dedupe_key
), b AS (
	INSERT INTO delivery_bodies (delivery_id, body) SELECT d.id, v.body FROM d JOIN v ON v.dedupe_key = d.dedupe_key
)
SELECT id, dedupe_key FROM d`
