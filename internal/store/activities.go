package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/glenv/glenv/internal/lifecycle"
)

// Activity kinds and states: the lifecycle's vocabulary, stored as is. A
// deploy's build and data clone are steps of its one deploy activity, and
// GitLab feedback is tracked by its own jobs, so neither is a kind.
const (
	ActivitySync   = lifecycle.ActivitySync
	ActivityDeploy = lifecycle.ActivityDeploy
	ActivityStop   = lifecycle.ActivityStop
	ActivityDelete = lifecycle.ActivityDelete
	ActivityPause  = lifecycle.ActivityPause
	// ActivityPrebuild builds an inactive environment's head without running it.
	ActivityPrebuild = lifecycle.ActivityPrebuild

	ActivityPending   = lifecycle.ActivityPending
	ActivityRunning   = lifecycle.ActivityRunning
	ActivityComplete  = lifecycle.ActivityComplete
	ActivityFailed    = lifecycle.ActivityFailed
	ActivityCancelled = lifecycle.ActivityCancelled
)

// Activity is one unit of work on an environment or integration. Its log
// lives apart, in append-only chunks (logchunks.go): no query that loads
// activities loads their logs.
type Activity struct {
	ID              int64     `json:"id"`
	IntegrationName string    `json:"integration"`
	EnvironmentID   int64     `json:"environment_id,omitempty"`
	EnvironmentName string    `json:"environment,omitempty"`
	DeliveryID      int64     `json:"delivery_id,omitempty"`
	Kind            string    `json:"kind"`
	State           string    `json:"state"`
	Result          string    `json:"result"`
	SHA             string    `json:"sha,omitempty"`
	Description     string    `json:"description"`
	CreatedAt       time.Time `json:"created_at"`
	StartedAt       time.Time `json:"started_at"`
	CompletedAt     time.Time `json:"completed_at"`
}

const activityCols = `id, integration_name, environment_id, environment_name, delivery_id, kind, state, result, sha,
	description, created_at, started_at, completed_at`

func scanActivity(row interface{ Scan(...any) error }) (Activity, error) {
	var a Activity
	var c, s, d int64
	err := row.Scan(&a.ID, &a.IntegrationName, &a.EnvironmentID, &a.EnvironmentName, &a.DeliveryID, &a.Kind, &a.State,
		&a.Result, &a.SHA, &a.Description, &c, &s, &d)
	if errors.Is(err, sql.ErrNoRows) {
		return a, ErrNotFound
	}
	a.CreatedAt, a.StartedAt, a.CompletedAt = fromMicros(c), fromMicros(s), fromMicros(d)
	return a, err
}

// InsertActivity stores a and sets its ID.
func InsertActivity(ctx context.Context, q Querier, a *Activity) error {
	a.CreatedAt = Now()
	return q.QueryRowContext(ctx, `INSERT INTO activities (`+activityInsertCols+`)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12) RETURNING id`, activityInsertArgs(nil, a)...).Scan(&a.ID)
}

// activityInsertCols and activityInsertArgs are the columns an activity is
// inserted with and a's values for them, in order: the one list
// InsertActivity and InsertActivities both bind.
const activityInsertCols = `integration_name, environment_id, environment_name,
		delivery_id, kind, state, result, sha, description, created_at, started_at, completed_at`

func activityInsertArgs(args []any, a *Activity) []any {
	return append(args, a.IntegrationName, a.EnvironmentID, a.EnvironmentName, a.DeliveryID, a.Kind, a.State, a.Result, a.SHA,
		a.Description, micros(a.CreatedAt), micros(a.StartedAt), micros(a.CompletedAt))
}

// SetActivityState moves an activity to state, stamping start and completion.
func SetActivityState(ctx context.Context, q Querier, id int64, state, result string) error {
	now := micros(Now())
	_, err := q.ExecContext(ctx, `UPDATE activities SET state = $1, result = $2,
		started_at = CASE WHEN started_at = 0 THEN $3 ELSE started_at END,
		completed_at = CASE WHEN $1 IN ('complete', 'failed', 'cancelled') THEN $3 ELSE completed_at END
		WHERE id = $4`, state, result, now, id)
	return err
}

// AppendActivityLog adds text to an activity's log, synchronously, as one
// chunk. Workers should write through internal/activitylog instead, which
// batches lines and never blocks its caller on the database.
func AppendActivityLog(ctx context.Context, q Querier, id int64, text string) error {
	_, err := AppendLog(ctx, q, id, text)
	return err
}

// GetActivity returns one activity (without its log: see ReadLog).
func GetActivity(ctx context.Context, q Querier, id int64) (Activity, error) {
	return scanActivity(q.QueryRowContext(ctx, `SELECT `+activityCols+` FROM activities WHERE id = $1`, id))
}

// ActivityFilter selects activities, newest first.
type ActivityFilter struct {
	Integration   string
	EnvironmentID int64
	DeliveryID    int64
	Kind          string
	Limit         int
}

// ListActivities returns the newest activities matching f.
func ListActivities(ctx context.Context, q Querier, f ActivityFilter) ([]Activity, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	rows, err := q.QueryContext(ctx, `SELECT `+activityCols+` FROM activities
		WHERE ($1 = '' OR integration_name = $1) AND ($2 = 0 OR environment_id = $2)
		AND ($3 = 0 OR delivery_id = $3) AND ($4 = '' OR kind = $4)
		ORDER BY id DESC LIMIT $5`, f.Integration, f.EnvironmentID, f.DeliveryID, f.Kind, f.Limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Activity{}
	for rows.Next() {
		a, err := scanActivity(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}
