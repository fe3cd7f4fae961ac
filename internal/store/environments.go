package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/glenv/glenv/internal/lifecycle"
)

// Environment states (DESIGN.md "Model"): the lifecycle's vocabulary, stored as is.
const (
	StateInactive  = lifecycle.StateInactive
	StateBuilding  = lifecycle.StateBuilding
	StateDeploying = lifecycle.StateDeploying
	StateActive    = lifecycle.StateActive
	StateFailed    = lifecycle.StateFailed
	StatePaused    = lifecycle.StatePaused
	StateStopping  = lifecycle.StateStopping
	StateDeleted   = lifecycle.StateDeleted
)

// Environment is one branch's, merge request's or tag's environment. Deleted
// environments stay as tombstones (state deleted, DeletedAt set) so that late
// events cannot bring them back; they are hidden from every listing.
type Environment struct {
	ID              int64  `json:"id"`
	IntegrationID   int64  `json:"-"` // 0 when detached
	IntegrationName string `json:"integration"`
	Detached        bool   `json:"detached"`
	ProjectID       int64  `json:"project_id"`
	Name            string `json:"name"`
	Slug            string `json:"slug"`
	Host            string `json:"host"`
	Kind            string `json:"kind"`
	Ref             string `json:"ref"`
	Parent          string `json:"parent"`
	HeadSHA         string `json:"head_sha"`
	DeployedSHA     string `json:"deployed_sha"`
	State           string `json:"state"`
	Tier            string `json:"tier"`
	ExternalURL     string `json:"external_url"`
	Description     string `json:"description"`
	MRIID           int64  `json:"mr_iid,omitempty"`
	// FromFork: a merge request from another project than the
	// integration's; its code gets no variables, secrets or parent data.
	FromFork    bool      `json:"from_fork,omitempty"`
	MRUpdatedAt time.Time `json:"-"`
	SeenSHAs    []string  `json:"-"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	DeletedAt   time.Time `json:"-"`

	// PendingActivityID is the deploy, stop, delete or pause whose job the
	// environment waits for (0: none); see lifecycle.Subject.Pending.
	PendingActivityID int64 `json:"pending_activity_id,omitempty"`
}

// GitLabState maps a glenv state onto GitLab's available / stopping / stopped.
// An inactive branch environment runs nothing, so GitLab tools see it stopped.
func GitLabState(state string) string {
	switch state {
	case StateStopping:
		return "stopping"
	case StateInactive, StateDeleted:
		return "stopped"
	default:
		return "available"
	}
}

// statesFor is the inverse of GitLabState for filtering in SQL.
func statesFor(gitlabState string) []string {
	switch gitlabState {
	case "stopping":
		return []string{StateStopping}
	case "stopped":
		return []string{StateInactive}
	case "available":
		return []string{StateBuilding, StateDeploying, StateActive, StateFailed, StatePaused}
	}
	return nil
}

const envCols = `id, COALESCE(integration_id, 0), integration_name, project_id, name, slug, host, kind, ref, parent,
	head_sha, deployed_sha, state, tier, external_url, description, mr_iid, mr_updated_at, seen_shas,
	created_at, updated_at, deleted_at, pending_activity_id, from_fork`

func scanEnv(row interface{ Scan(...any) error }) (Environment, error) {
	var e Environment
	var seen string
	var mrUpd, created, updated, deleted int64
	err := row.Scan(&e.ID, &e.IntegrationID, &e.IntegrationName, &e.ProjectID, &e.Name, &e.Slug, &e.Host, &e.Kind,
		&e.Ref, &e.Parent, &e.HeadSHA, &e.DeployedSHA, &e.State, &e.Tier, &e.ExternalURL, &e.Description,
		&e.MRIID, &mrUpd, &seen, &created, &updated, &deleted, &e.PendingActivityID, &e.FromFork)
	if errors.Is(err, sql.ErrNoRows) {
		return e, ErrNotFound
	}
	if err != nil {
		return e, err
	}
	if err := json.Unmarshal([]byte(seen), &e.SeenSHAs); err != nil {
		return e, fmt.Errorf("environment %s: seen_shas column: %w", e.Name, err)
	}
	e.Detached = e.IntegrationID == 0
	e.MRUpdatedAt, e.CreatedAt, e.UpdatedAt, e.DeletedAt = fromMicros(mrUpd), fromMicros(created), fromMicros(updated), fromMicros(deleted)
	return e, nil
}

func seenJSON(s []string) string {
	if s == nil {
		s = []string{}
	}
	b, _ := json.Marshal(s)
	return string(b)
}

// envInsertCols and envUpsert are SaveEnvironment's (and SaveEnvironments')
// columns and conflict clause: a save writes the whole row.
const envInsertCols = `integration_id, integration_name, project_id, name, slug,
		host, kind, ref, parent, head_sha, deployed_sha, state, tier, external_url, description, mr_iid, mr_updated_at,
		seen_shas, created_at, updated_at, deleted_at, pending_activity_id, from_fork`

const envUpsert = `ON CONFLICT (integration_name, name) DO UPDATE SET integration_id=excluded.integration_id,
		project_id=excluded.project_id, slug=excluded.slug, host=excluded.host, kind=excluded.kind, ref=excluded.ref,
		parent=excluded.parent, head_sha=excluded.head_sha, deployed_sha=excluded.deployed_sha, state=excluded.state,
		tier=excluded.tier, external_url=excluded.external_url, description=excluded.description,
		mr_iid=excluded.mr_iid, mr_updated_at=excluded.mr_updated_at, seen_shas=excluded.seen_shas,
		created_at=excluded.created_at, updated_at=excluded.updated_at, deleted_at=excluded.deleted_at,
		pending_activity_id=excluded.pending_activity_id, from_fork=excluded.from_fork`

// SaveEnvironment inserts e, or, when a row of the same integration and name
// exists (a tombstone included), overwrites it in place. It sets ID and times.
func SaveEnvironment(ctx context.Context, q Querier, e *Environment) error {
	err := q.QueryRowContext(ctx, `INSERT INTO environments (`+envInsertCols+`)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22,$23)
		`+envUpsert+` RETURNING id`, envInsertArgs(nil, e, Now())...).Scan(&e.ID)
	if isUniqueViolation(err) {
		return fmt.Errorf("environment %q (host %s): %w", e.Name, e.Host, ErrConflict)
	}
	return err
}

// envInsertArgs appends to args e's values for envInsertCols, in order,
// after setting its times (now; CreatedAt only when unset): the one list
// SaveEnvironment and SaveEnvironments both bind.
func envInsertArgs(args []any, e *Environment, now time.Time) []any {
	if e.CreatedAt.IsZero() {
		e.CreatedAt = now
	}
	e.UpdatedAt = now
	var integ any
	if e.IntegrationID != 0 {
		integ = e.IntegrationID
	}
	return append(args, integ, e.IntegrationName, e.ProjectID, e.Name, e.Slug, e.Host, e.Kind, e.Ref, e.Parent, e.HeadSHA,
		e.DeployedSHA, e.State, e.Tier, e.ExternalURL, e.Description, e.MRIID, micros(e.MRUpdatedAt),
		seenJSON(e.SeenSHAs), micros(e.CreatedAt), micros(e.UpdatedAt), micros(e.DeletedAt), e.PendingActivityID, e.FromFork)
}

// GetEnvironment returns an environment of an integration by name, tombstones included.
func GetEnvironment(ctx context.Context, q Querier, integration, name string) (Environment, error) {
	return scanEnv(q.QueryRowContext(ctx, `SELECT `+envCols+` FROM environments WHERE integration_name = $1 AND name = $2`, integration, name))
}

// LockEnvironment is GetEnvironment that also locks the row until the
// transaction ends, in one round trip. On SQLite, whose one writer already
// excludes every other, it is GetEnvironment.
func LockEnvironment(ctx context.Context, q Querier, d Dialect, integration, name string) (Environment, error) {
	query := `SELECT ` + envCols + ` FROM environments WHERE integration_name = $1 AND name = $2`
	if d == Postgres {
		query += ` FOR UPDATE`
	}
	return scanEnv(q.QueryRowContext(ctx, query, integration, name))
}

// GetEnvironmentByID returns a live (not deleted) environment by id.
func GetEnvironmentByID(ctx context.Context, q Querier, id int64) (Environment, error) {
	return scanEnv(q.QueryRowContext(ctx, `SELECT `+envCols+` FROM environments WHERE id = $1 AND deleted_at = 0`, id))
}

// GetEnvironmentByHost returns the live environment with that host label.
func GetEnvironmentByHost(ctx context.Context, q Querier, host string) (Environment, error) {
	return scanEnv(q.QueryRowContext(ctx, `SELECT `+envCols+` FROM environments WHERE host = $1 AND deleted_at = 0`, host))
}

// EnvironmentsOfIntegration returns every environment of an integration by
// name; withDeleted includes tombstones (the lifecycle needs them).
func EnvironmentsOfIntegration(ctx context.Context, q Querier, integration string, withDeleted bool) ([]Environment, error) {
	query := `SELECT ` + envCols + ` FROM environments WHERE integration_name = $1`
	if !withDeleted {
		query += ` AND deleted_at = 0`
	}
	return listEnvs(ctx, q, query+` ORDER BY name`, integration)
}

func escapeLike(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(s)
}

func listEnvs(ctx context.Context, q Querier, query string, args ...any) ([]Environment, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Environment{}
	for rows.Next() {
		e, err := scanEnv(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// CountEnvironmentsByState returns live environments per state (for /metrics).
func CountEnvironmentsByState(ctx context.Context, q Querier) (map[string]int, error) {
	rows, err := q.QueryContext(ctx, `SELECT state, COUNT(*) FROM environments WHERE deleted_at = 0 GROUP BY state`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var s string
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			return nil, err
		}
		out[s] = n
	}
	return out, rows.Err()
}
