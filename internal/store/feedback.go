package store

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// Queries of internal/feedback (migration 0003): what glenv has told GitLab
// about each environment and each deploy.

// FeedbackEnv is what GitLab knows about one glenv environment.
type FeedbackEnv struct {
	EnvironmentID int64
	// GitLabEnvID is the GitLab environment glenv created or found (0 = none yet).
	GitLabEnvID    int64
	GitLabEnvName  string
	GitLabEnvURL   string // the external_url GitLab has
	GitLabEnvState string // "", available, stopped or deleted
	// NoteID is the merge request note glenv keeps current (0 = not known yet).
	NoteID   int64
	NoteHash string // hash of the body GitLab has
	// SyncedVersion is the environment version (FeedbackVersion) the last
	// complete sync showed.
	SyncedVersion int64
	// CreatedAt is when glenv first heard of feedback for the environment;
	// deploys older than that are history, not news (see FeedbackDeploys).
	CreatedAt time.Time
	UpdatedAt time.Time
}

// FeedbackDeploy is one deploy activity and what GitLab shows of it.
type FeedbackDeploy struct {
	ActivityID    int64
	EnvironmentID int64
	SHA           string
	State         string // the activity's: pending, running, complete, failed, cancelled
	Result        string
	CreatedAt     time.Time
	CompletedAt   time.Time

	StatusSent   string // commit status GitLab has
	StatusTrying string // a final status sent whose answer was lost when != StatusSent
	// DeploymentID is the GitLab deployment (0 = none yet); DeploymentTrying
	// marks a creation sent whose answer may have been lost.
	DeploymentID     int64
	DeploymentStatus string // running, success, failed, canceled, or skipped (none will be made)
	DeploymentTrying bool
	// Settled is the activity state GitLab fully shows.
	Settled string
}

// FeedbackEnvironment returns an environment by id, tombstones included:
// feedback must still clean up after a deleted one.
func FeedbackEnvironment(ctx context.Context, q Querier, id int64) (Environment, error) {
	return scanEnv(q.QueryRowContext(ctx, `SELECT `+envCols+` FROM environments WHERE id = $1`, id))
}

// FeedbackVersion is a number that grows whenever the environment or one of
// its deploy activities changes (the newest of their timestamps).
func FeedbackVersion(ctx context.Context, q Querier, envID int64) (int64, error) {
	var env, created, started, completed int64
	err := q.QueryRowContext(ctx, `SELECT e.updated_at, COALESCE(MAX(a.created_at), 0), COALESCE(MAX(a.started_at), 0),
		COALESCE(MAX(a.completed_at), 0)
		FROM environments e LEFT JOIN activities a ON a.environment_id = e.id AND a.kind = 'deploy'
		WHERE e.id = $1 GROUP BY e.updated_at`, envID).Scan(&env, &created, &started, &completed)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, ErrNotFound
	}
	return max(env, created, started, completed), err
}

// AcquireFeedbackLease takes the environment's sync lease for owner until
// until, unless another owner holds an unexpired one; it then returns false
// and when that lease ends.
func AcquireFeedbackLease(ctx context.Context, q Querier, envID int64, owner string, until time.Time) (bool, time.Time, error) {
	now := micros(Now())
	var got string
	err := q.QueryRowContext(ctx, `INSERT INTO feedback_environments (environment_id, lease_owner, lease_until, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $4)
		ON CONFLICT (environment_id) DO UPDATE SET lease_owner = excluded.lease_owner, lease_until = excluded.lease_until
		WHERE feedback_environments.lease_until < excluded.updated_at OR feedback_environments.lease_owner = excluded.lease_owner
		RETURNING lease_owner`, envID, owner, micros(until), now).Scan(&got)
	if err == nil {
		return true, until, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return false, time.Time{}, err
	}
	var held int64
	if err := q.QueryRowContext(ctx, `SELECT lease_until FROM feedback_environments WHERE environment_id = $1`, envID).Scan(&held); err != nil {
		return false, time.Time{}, err
	}
	return false, fromMicros(held), nil
}

// RequestFeedback bumps the environment's notification counter inside the
// caller's transaction (see FeedbackRequested).
func RequestFeedback(ctx context.Context, q Querier, envID int64) error {
	_, err := q.ExecContext(ctx, `INSERT INTO feedback_environments (environment_id, requested, created_at, updated_at)
		VALUES ($1, 1, $2, $2)
		ON CONFLICT (environment_id) DO UPDATE SET requested = feedback_environments.requested + 1`, envID, micros(Now()))
	return err
}

// FeedbackRequested reads the notification counter. Inside a transaction on
// PostgreSQL it locks the row, so a notification still being committed is
// waited for rather than missed (SQLite transactions are serial anyway).
func FeedbackRequested(ctx context.Context, q Querier, envID int64, d Dialect) (int64, error) {
	query := `SELECT requested FROM feedback_environments WHERE environment_id = $1`
	if _, inTx := q.(*sql.Tx); inTx && d == Postgres {
		query += ` FOR UPDATE`
	}
	var n int64
	err := q.QueryRowContext(ctx, query, envID).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return n, err
}

// ReleaseFeedbackLease gives the lease back if owner still holds it.
func ReleaseFeedbackLease(ctx context.Context, q Querier, envID int64, owner string) error {
	_, err := q.ExecContext(ctx, `UPDATE feedback_environments SET lease_owner = '', lease_until = 0
		WHERE environment_id = $1 AND lease_owner = $2`, envID, owner)
	return err
}

// GetFeedbackEnv returns what GitLab knows about an environment; a zero
// value (with EnvironmentID set) when nothing was sent yet.
func GetFeedbackEnv(ctx context.Context, q Querier, envID int64) (FeedbackEnv, error) {
	f := FeedbackEnv{EnvironmentID: envID}
	var created, updated int64
	err := q.QueryRowContext(ctx, `SELECT gitlab_env_id, gitlab_env_name, gitlab_env_url, gitlab_env_state, note_id,
		note_hash, synced_version, created_at, updated_at FROM feedback_environments WHERE environment_id = $1`, envID).Scan(
		&f.GitLabEnvID, &f.GitLabEnvName, &f.GitLabEnvURL, &f.GitLabEnvState, &f.NoteID, &f.NoteHash, &f.SyncedVersion,
		&created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return f, nil
	}
	f.CreatedAt, f.UpdatedAt = fromMicros(created), fromMicros(updated)
	return f, err
}

// SaveFeedbackEnv records f; the lease is left alone.
func SaveFeedbackEnv(ctx context.Context, q Querier, f *FeedbackEnv) error {
	f.UpdatedAt = Now()
	if f.CreatedAt.IsZero() {
		f.CreatedAt = f.UpdatedAt
	}
	_, err := q.ExecContext(ctx, `INSERT INTO feedback_environments (environment_id, gitlab_env_id, gitlab_env_name,
		gitlab_env_url, gitlab_env_state, note_id, note_hash, synced_version, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $10, $9)
		ON CONFLICT (environment_id) DO UPDATE SET gitlab_env_id = excluded.gitlab_env_id,
		gitlab_env_name = excluded.gitlab_env_name, gitlab_env_url = excluded.gitlab_env_url,
		gitlab_env_state = excluded.gitlab_env_state, note_id = excluded.note_id, note_hash = excluded.note_hash,
		synced_version = excluded.synced_version, updated_at = excluded.updated_at`,
		f.EnvironmentID, f.GitLabEnvID, f.GitLabEnvName, f.GitLabEnvURL, f.GitLabEnvState, f.NoteID, f.NoteHash,
		f.SyncedVersion, micros(f.UpdatedAt), micros(f.CreatedAt))
	return err
}

// FeedbackWindow is how many of an environment's newest deploys feedback
// looks at by default: retention keeps those until feedback has recorded
// them (ForgetActivities).
const FeedbackWindow = 20

// FeedbackDeploys returns, oldest first, the newest window deploy
// activities of an environment, plus any older one GitLab shows in a state
// it has since left (a status still running must be finished however old).
func FeedbackDeploys(ctx context.Context, q Querier, envID int64, window int) ([]FeedbackDeploy, error) {
	var from int64
	err := q.QueryRowContext(ctx, `SELECT id FROM activities WHERE environment_id = $1 AND kind = 'deploy'
		ORDER BY id DESC LIMIT 1 OFFSET $2`, envID, window-1).Scan(&from)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, err
	}
	rows, err := q.QueryContext(ctx, `SELECT a.id, a.sha, a.state, a.result, a.created_at, a.completed_at,
		f.activity_id IS NOT NULL, COALESCE(f.status_sent, ''), COALESCE(f.status_trying, ''), COALESCE(f.deployment_id, 0),
		COALESCE(f.deployment_status, ''), COALESCE(f.deployment_trying, FALSE), COALESCE(f.settled, '')
		FROM activities a LEFT JOIN feedback_deploys f ON f.activity_id = a.id
		WHERE a.environment_id = $1 AND a.kind = 'deploy'
		AND (a.id >= $2 OR (f.activity_id IS NOT NULL AND f.settled <> a.state))
		ORDER BY a.id`, envID, from)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []FeedbackDeploy
	for rows.Next() {
		d := FeedbackDeploy{EnvironmentID: envID}
		var created, completed int64
		var known bool
		if err := rows.Scan(&d.ActivityID, &d.SHA, &d.State, &d.Result, &created, &completed, &known, &d.StatusSent,
			&d.StatusTrying, &d.DeploymentID, &d.DeploymentStatus, &d.DeploymentTrying, &d.Settled); err != nil {
			return nil, err
		}
		d.CreatedAt, d.CompletedAt = fromMicros(created), fromMicros(completed)
		out = append(out, d)
	}
	return out, rows.Err()
}

// SaveFeedbackDeploy records what GitLab shows of one deploy.
func SaveFeedbackDeploy(ctx context.Context, q Querier, d *FeedbackDeploy) error {
	_, err := q.ExecContext(ctx, `INSERT INTO feedback_deploys (activity_id, environment_id, status_sent, status_trying,
		deployment_id, deployment_status, deployment_trying, settled, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT (activity_id) DO UPDATE SET status_sent = excluded.status_sent,
		status_trying = excluded.status_trying, deployment_id = excluded.deployment_id,
		deployment_status = excluded.deployment_status, deployment_trying = excluded.deployment_trying,
		settled = excluded.settled, updated_at = excluded.updated_at`,
		d.ActivityID, d.EnvironmentID, d.StatusSent, d.StatusTrying, d.DeploymentID, d.DeploymentStatus,
		d.DeploymentTrying, d.Settled, micros(Now()))
	return err
}

// DeploymentClaims are the GitLab deployments glenv's deploys of one
// environment own: those recorded, and every one up to the newest that
// belonged to a deploy retention forgot (ForgetActivities).
type DeploymentClaims struct {
	IDs  map[int64]bool
	Upto int64
}

// Has says whether deployment id is claimed.
func (c DeploymentClaims) Has(id int64) bool { return id <= c.Upto || c.IDs[id] }

// FeedbackDeploymentClaims returns the GitLab deployments already claimed
// by an environment's deploys.
func FeedbackDeploymentClaims(ctx context.Context, q Querier, envID int64) (DeploymentClaims, error) {
	var c DeploymentClaims
	// The recorded ids first: retention raises forgotten_deployment_id and
	// deletes rows in one transaction, so a pass committing between the two
	// reads leaves a deployment in one of them, never in neither.
	rows, err := q.QueryContext(ctx, `SELECT deployment_id FROM feedback_deploys WHERE environment_id = $1 AND deployment_id <> 0`, envID)
	if err != nil {
		return c, err
	}
	if c.IDs, err = scanIDSet(rows); err != nil {
		return c, err
	}
	err = q.QueryRowContext(ctx, `SELECT forgotten_deployment_id FROM feedback_environments WHERE environment_id = $1`, envID).Scan(&c.Upto)
	if errors.Is(err, sql.ErrNoRows) {
		err = nil
	}
	return c, err
}

// FeedbackBacklog returns environments of live integrations that changed
// since their last complete sync, looking at changes after since and at the
// newest 2,000 deploy activities only.
func FeedbackBacklog(ctx context.Context, q Querier, since time.Time) ([]int64, error) {
	s := micros(since)
	rows, err := q.QueryContext(ctx, `SELECT e.id FROM environments e
		LEFT JOIN feedback_environments f ON f.environment_id = e.id
		WHERE e.integration_id IS NOT NULL AND e.updated_at > $1 AND e.updated_at > COALESCE(f.synced_version, 0)
		UNION
		SELECT a.environment_id FROM (SELECT environment_id, created_at, started_at, completed_at FROM activities
			WHERE kind = 'deploy' ORDER BY id DESC LIMIT 2000) a
		JOIN environments e ON e.id = a.environment_id AND e.integration_id IS NOT NULL
		LEFT JOIN feedback_environments f ON f.environment_id = a.environment_id
		WHERE a.created_at > $1 AND (a.created_at > COALESCE(f.synced_version, 0)
			OR a.started_at > COALESCE(f.synced_version, 0) OR a.completed_at > COALESCE(f.synced_version, 0))`, s)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}
