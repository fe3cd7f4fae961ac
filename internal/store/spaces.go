package store

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// Space is a node of the tree of spaces under root.
type Space struct {
	Name        string    `json:"name"`
	Parent      string    `json:"parent"`
	Inherit     bool      `json:"inherit"`
	Description string    `json:"description"`
	CreatedAt   time.Time `json:"created_at"`
}

// Grant is a user's role in a space.
type Grant struct {
	UserID int64  `json:"user_id"`
	Space  string `json:"space"`
	Role   string `json:"role"`
}

// CreateSpace inserts a space; a taken name is ErrConflict.
func CreateSpace(ctx context.Context, q Querier, s Space) (Space, error) {
	s.CreatedAt = Now()
	_, err := q.ExecContext(ctx, `INSERT INTO spaces (name, parent, inherit, description, created_at) VALUES ($1,$2,$3,$4,$5)`,
		s.Name, s.Parent, s.Inherit, s.Description, micros(s.CreatedAt))
	if isUniqueViolation(err) {
		return s, ErrConflict
	}
	return s, err
}

// ListSpaces returns every space.
func ListSpaces(ctx context.Context, q Querier) ([]Space, error) {
	rows, err := q.QueryContext(ctx, `SELECT name, parent, inherit, description, created_at FROM spaces ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Space{}
	for rows.Next() {
		var s Space
		var c int64
		if err := rows.Scan(&s.Name, &s.Parent, &s.Inherit, &s.Description, &c); err != nil {
			return nil, err
		}
		s.CreatedAt = fromMicros(c)
		out = append(out, s)
	}
	return out, rows.Err()
}

// GetSpace returns one space.
func GetSpace(ctx context.Context, q Querier, name string) (Space, error) {
	var s Space
	var c int64
	err := q.QueryRowContext(ctx, `SELECT name, parent, inherit, description, created_at FROM spaces WHERE name = $1`, name).
		Scan(&s.Name, &s.Parent, &s.Inherit, &s.Description, &c)
	if errors.Is(err, sql.ErrNoRows) {
		return s, ErrNotFound
	}
	s.CreatedAt = fromMicros(c)
	return s, err
}

// SpaceUsage counts what keeps a space from being deleted: child spaces,
// integrations and grants.
func SpaceUsage(ctx context.Context, q Querier, name string) (children, integrations, grants int, err error) {
	if err = q.QueryRowContext(ctx, `SELECT COUNT(*) FROM spaces WHERE parent = $1`, name).Scan(&children); err != nil {
		return
	}
	if err = q.QueryRowContext(ctx, `SELECT COUNT(*) FROM integrations WHERE space = $1`, name).Scan(&integrations); err != nil {
		return
	}
	err = q.QueryRowContext(ctx, `SELECT COUNT(*) FROM grants WHERE space = $1`, name).Scan(&grants)
	return
}

// DeleteSpace removes a space.
func DeleteSpace(ctx context.Context, q Querier, name string) error {
	return one(q.ExecContext(ctx, `DELETE FROM spaces WHERE name = $1`, name))
}

// PutGrant gives a user a role in a space, replacing the one they had there.
func PutGrant(ctx context.Context, q Querier, g Grant) error {
	_, err := q.ExecContext(ctx, `INSERT INTO grants (user_id, space, role, created_at) VALUES ($1,$2,$3,$4)
		ON CONFLICT (user_id, space) DO UPDATE SET role = excluded.role`, g.UserID, g.Space, g.Role, micros(Now()))
	return err
}

// DeleteGrant takes a user's role in a space away.
func DeleteGrant(ctx context.Context, q Querier, userID int64, space string) error {
	return one(q.ExecContext(ctx, `DELETE FROM grants WHERE user_id = $1 AND space = $2`, userID, space))
}

// GrantsOf returns a user's grants.
func GrantsOf(ctx context.Context, q Querier, userID int64) ([]Grant, error) {
	rows, err := q.QueryContext(ctx, `SELECT user_id, space, role FROM grants WHERE user_id = $1 ORDER BY space`, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Grant{}
	for rows.Next() {
		var g Grant
		if err := rows.Scan(&g.UserID, &g.Space, &g.Role); err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

// Membership is a cached GitLab access level of an identity on a project.
type Membership struct {
	AccessLevel int
	CheckedAt   time.Time
}

// GetMembership returns the cached level, ErrNotFound when none is cached.
func GetMembership(ctx context.Context, q Querier, identityID, projectID int64) (Membership, error) {
	var m Membership
	var c int64
	err := q.QueryRowContext(ctx, `SELECT access_level, checked_at FROM gitlab_memberships WHERE identity_id = $1 AND project_id = $2`,
		identityID, projectID).Scan(&m.AccessLevel, &c)
	if errors.Is(err, sql.ErrNoRows) {
		return m, ErrNotFound
	}
	m.CheckedAt = fromMicros(c)
	return m, err
}

// PutMembership caches a level read from GitLab.
func PutMembership(ctx context.Context, q Querier, identityID, projectID int64, level int) error {
	_, err := q.ExecContext(ctx, `INSERT INTO gitlab_memberships (identity_id, project_id, access_level, checked_at) VALUES ($1,$2,$3,$4)
		ON CONFLICT (identity_id, project_id) DO UPDATE SET access_level = excluded.access_level, checked_at = excluded.checked_at`,
		identityID, projectID, level, micros(Now()))
	return err
}

// PruneMemberships drops cached levels older than cutoff.
func PruneMemberships(ctx context.Context, q Querier, cutoff time.Time) error {
	_, err := q.ExecContext(ctx, `DELETE FROM gitlab_memberships WHERE checked_at < $1`, micros(cutoff))
	return err
}
