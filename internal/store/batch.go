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
	b.WriteString(placeholdersFrom(2, len(names)))
	args := make([]any, 1, 1+len(names))
	args[0] = integration
	for _, n := range names {
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
