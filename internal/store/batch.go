package store

import (
	"context"
	"fmt"
	"strings"
)

// Statements for a batch of deliveries processed in one transaction: one
// round trip for many rows. On PostgreSQL each statement costs a round trip
// (two system calls and a wake-up on each side) and a bind and executor
// start on the server, more than the rows it touches.

// LockEnvironments is LockEnvironment for several names of one integration
// in one statement: the rows that exist, tombstones included, by name. On
// PostgreSQL they are locked until the transaction ends, in name order (the
// order every batch takes them in, so two batches cannot deadlock).
func LockEnvironments(ctx context.Context, q Querier, d Dialect, integration string, names []string) (map[string]Environment, error) {
	out := make(map[string]Environment, len(names))
	if len(names) == 0 {
		return out, nil
	}
	var b strings.Builder
	b.WriteString(`SELECT ` + envCols + ` FROM environments WHERE integration_name = $1 AND name IN (`)
	args := make([]any, 1, 1+len(names))
	args[0] = integration
	for i, n := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "$%d", i+2)
		args = append(args, n)
	}
	b.WriteString(`) ORDER BY name`)
	if d == Postgres {
		b.WriteString(` FOR UPDATE`)
	}
	rows, err := q.QueryContext(ctx, b.String(), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		e, err := scanEnv(rows)
		if err != nil {
			return nil, err
		}
		out[e.Name] = e
	}
	return out, rows.Err()
}

// activityChunk bounds one InsertActivities statement (12 parameters a row).
const activityChunk = 64

// InsertActivities stores acts with one statement per activityChunk, in
// order. It does not set their IDs: it is for activities nobody refers to
// by id afterwards (a sync's record of what a delivery changed).
func InsertActivities(ctx context.Context, q Querier, acts []Activity) error {
	now := micros(Now())
	for len(acts) > 0 {
		n := min(len(acts), activityChunk)
		var b strings.Builder
		b.WriteString(`INSERT INTO activities (integration_name, environment_id, environment_name,
		delivery_id, kind, state, result, sha, description, created_at, started_at, completed_at) VALUES `)
		args := make([]any, 0, 12*n)
		for i, a := range acts[:n] {
			if i > 0 {
				b.WriteByte(',')
			}
			p := 12 * i
			fmt.Fprintf(&b, "($%d,$%d,$%d,$%d,$%d,$%d,$%d,$%d,$%d,$%d,$%d,$%d)",
				p+1, p+2, p+3, p+4, p+5, p+6, p+7, p+8, p+9, p+10, p+11, p+12)
			created := now
			if !a.CreatedAt.IsZero() {
				created = micros(a.CreatedAt)
			}
			args = append(args, a.IntegrationName, a.EnvironmentID, a.EnvironmentName, a.DeliveryID, a.Kind, a.State,
				a.Result, a.SHA, a.Description, created, micros(a.StartedAt), micros(a.CompletedAt))
		}
		if _, err := q.ExecContext(ctx, b.String(), args...); err != nil {
			return err
		}
		acts = acts[n:]
	}
	return nil
}
