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
// PostgreSQL they are locked until the transaction ends, in the order of
// names (the caller sorts them, so two batches take their rows in the same
// order and cannot deadlock).
func LockEnvironments(ctx context.Context, q Querier, d Dialect, integration string, names []string) (map[string]Environment, error) {
	out := make(map[string]Environment, len(names))
	if len(names) == 0 {
		return out, nil
	}
	var query string
	var args []any
	if d == Postgres {
		query, args = lockEnvironmentsPG, []any{integration, names}
	} else {
		query = `SELECT ` + envCols + ` FROM environments WHERE integration_name = $1 AND name IN (` +
			placeholdersFrom(2, len(names)) + `) ORDER BY name`
		args = make([]any, 1, 1+len(names))
		args[0] = integration
		for _, n := range names {
			args = append(args, n)
		}
	}
	rows, err := q.QueryContext(ctx, query, args...)
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

// lockEnvironmentsPG looks each name up on its own through the unique
// (integration_name, name) index, whatever PostgreSQL's statistics say. With
// `name IN (…32 names…)` and no statistics yet (a new database, or before
// autovacuum's first ANALYZE of a table that grew fast), the planner took
// integration_name's equality for selective, scanned environments_dashboard_integration
// for the integration and filtered every row of it by name: bench/ack's
// drain spent 5.9 ms a batch there (pg_stat_statements: 277 blocks a call,
// 38 % of the processing database's statement time), against 0.3 ms for
// 32 unique-index probes. A LATERAL probe per name is estimated at one row
// through the unique index whatever the statistics, so the plan cannot
// flip (TestLockEnvironmentsProbesTheUniqueIndex). The locks are taken in
// the order of names (WITH ORDINALITY), each as its probe finds the row.
const lockEnvironmentsPG = `SELECT e.* FROM unnest($2::text[]) WITH ORDINALITY AS n(name, i),
	LATERAL (SELECT ` + envCols + ` FROM environments WHERE integration_name = $1 AND name = n.name FOR UPDATE) AS e
	ORDER BY n.i`

// activityChunk bounds one InsertActivities statement (12 parameters a row).
const activityChunk = 64

// InsertActivities stores acts with one statement per activityChunk, in
// order. It does not set their IDs: it is for activities nobody refers to
// by id afterwards (a sync's record of what a delivery changed).
func InsertActivities(ctx context.Context, q Querier, acts []Activity) error {
	now := Now()
	for len(acts) > 0 {
		n := min(len(acts), activityChunk)
		var b strings.Builder
		b.WriteString(`INSERT INTO activities (` + activityInsertCols + `) VALUES `)
		args := make([]any, 0, 12*n)
		for i, a := range acts[:n] {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(`(` + placeholdersFrom(12*i+1, 12) + `)`)
			if a.CreatedAt.IsZero() {
				a.CreatedAt = now
			}
			args = activityInsertArgs(args, &a)
		}
		if _, err := q.ExecContext(ctx, b.String(), args...); err != nil {
			return err
		}
		acts = acts[n:]
	}
	return nil
}

// envChunk bounds one SaveEnvironments statement (23 parameters a row).
const envChunk = 32

// SaveEnvironments is SaveEnvironment for several environments, with one
// statement per envChunk: it sets their IDs and times. No two may share an
// integration and name (one statement cannot write a row twice).
func SaveEnvironments(ctx context.Context, q Querier, envs []*Environment) error {
	now := Now()
	for len(envs) > 0 {
		n := min(len(envs), envChunk)
		var b strings.Builder
		b.WriteString(`INSERT INTO environments (` + envInsertCols + `) VALUES `)
		args := make([]any, 0, 23*n)
		byKey := make(map[[2]string]*Environment, n)
		for i, e := range envs[:n] {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(`(` + placeholdersFrom(23*i+1, 23) + `)`)
			args = envInsertArgs(args, e, now)
			byKey[[2]string{e.IntegrationName, e.Name}] = e
		}
		// RETURNING's order is not promised: rows are matched by key.
		b.WriteString(` ` + envUpsert + ` RETURNING id, integration_name, name`)
		if err := saveEnvironmentsChunk(ctx, q, b.String(), args, byKey); err != nil {
			return err
		}
		envs = envs[n:]
	}
	return nil
}

func saveEnvironmentsChunk(ctx context.Context, q Querier, query string, args []any, byKey map[[2]string]*Environment) error {
	rows, err := q.QueryContext(ctx, query, args...)
	if isUniqueViolation(err) {
		return fmt.Errorf("%d environments (a host taken): %w", len(byKey), ErrConflict)
	}
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var k [2]string
		if err := rows.Scan(&id, &k[0], &k[1]); err != nil {
			return err
		}
		if e := byKey[k]; e != nil {
			e.ID = id
		}
	}
	err = rows.Err()
	if isUniqueViolation(err) {
		return fmt.Errorf("%d environments (a host taken): %w", len(byKey), ErrConflict)
	}
	return err
}
