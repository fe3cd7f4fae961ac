package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"
)

// User is a person who signed in with GitLab (or was named an admin).
type User struct {
	ID         int64     `json:"id"`
	Username   string    `json:"username"`
	Name       string    `json:"name"`
	IsAdmin    bool      `json:"is_admin"`
	CreatedAt  time.Time `json:"created_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
}

// Identity states.
const (
	IdentityConnected       = "connected"
	IdentityReconnectNeeded = "reconnect_needed"
)

// Identity is one GitLab account (host + GitLab user id) of a user, with its
// sealed OAuth tokens.
type Identity struct {
	ID            int64     `json:"id"`
	UserID        int64     `json:"user_id"`
	Host          string    `json:"host"`
	GitLabUserID  int64     `json:"gitlab_user_id"`
	Username      string    `json:"username"`
	AccessSealed  string    `json:"-"`
	RefreshSealed string    `json:"-"`
	ExpiresAt     time.Time `json:"expires_at"`
	Scopes        string    `json:"scopes"`
	State         string    `json:"state"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

const userCols = `id, username, name, is_admin, created_at, last_seen_at`

func scanUser(row interface{ Scan(...any) error }) (User, error) {
	var u User
	var c, l int64
	err := row.Scan(&u.ID, &u.Username, &u.Name, &u.IsAdmin, &c, &l)
	if errors.Is(err, sql.ErrNoRows) {
		return u, ErrNotFound
	}
	u.CreatedAt, u.LastSeenAt = fromMicros(c), fromMicros(l)
	return u, err
}

const identityCols = `id, user_id, host, gitlab_user_id, username, access_token_enc, refresh_token_enc, expires_at,
	scopes, state, created_at, updated_at`

func scanIdentity(row interface{ Scan(...any) error }) (Identity, error) {
	var i Identity
	var e, c, u int64
	err := row.Scan(&i.ID, &i.UserID, &i.Host, &i.GitLabUserID, &i.Username, &i.AccessSealed, &i.RefreshSealed, &e,
		&i.Scopes, &i.State, &c, &u)
	if errors.Is(err, sql.ErrNoRows) {
		return i, ErrNotFound
	}
	i.ExpiresAt, i.CreatedAt, i.UpdatedAt = fromMicros(e), fromMicros(c), fromMicros(u)
	return i, err
}

// CreateUser inserts a user.
func CreateUser(ctx context.Context, q Querier, u User) (User, error) {
	u.CreatedAt = Now()
	err := q.QueryRowContext(ctx, `INSERT INTO users (username, name, is_admin, created_at) VALUES ($1,$2,$3,$4) RETURNING id`,
		u.Username, u.Name, u.IsAdmin, micros(u.CreatedAt)).Scan(&u.ID)
	return u, err
}

// GetUser returns a user by id.
func GetUser(ctx context.Context, q Querier, id int64) (User, error) {
	return scanUser(q.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE id = $1`, id))
}

// FindUser resolves how people name a user on the command line: a numeric id,
// or host/username of one of their identities.
func FindUser(ctx context.Context, q Querier, ref string) (User, error) {
	if host, name, ok := strings.Cut(ref, "/"); ok {
		return scanUser(q.QueryRowContext(ctx, `SELECT `+prefixed("u.", userCols)+` FROM users u JOIN identities i ON i.user_id = u.id
			WHERE i.host = $1 AND i.username = $2`, host, name))
	}
	var id int64
	for _, c := range ref {
		if c < '0' || c > '9' || id > 1<<50 {
			return User{}, ErrNotFound
		}
		id = id*10 + int64(c-'0')
	}
	return GetUser(ctx, q, id)
}

func prefixed(p, cols string) string {
	parts := strings.Split(cols, ",")
	for i, c := range parts {
		parts[i] = p + strings.TrimSpace(c)
	}
	return strings.Join(parts, ", ")
}

// ListUsers returns every user.
func ListUsers(ctx context.Context, q Querier) ([]User, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+userCols+` FROM users ORDER BY id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// SetUserAdmin sets or clears a user's admin flag.
func SetUserAdmin(ctx context.Context, q Querier, id int64, admin bool) error {
	return one(q.ExecContext(ctx, `UPDATE users SET is_admin = $1 WHERE id = $2`, admin, id))
}

// TouchUser records a sign-in and refreshes the profile.
func TouchUser(ctx context.Context, q Querier, id int64, username, name string) error {
	return one(q.ExecContext(ctx, `UPDATE users SET last_seen_at = $1, username = $2, name = $3 WHERE id = $4`, micros(Now()), username, name, id))
}

// DeleteUser removes a user with their identities, sessions, grants and tokens.
func DeleteUser(ctx context.Context, q Querier, id int64) error {
	for _, stmt := range []string{`DELETE FROM grants WHERE user_id = $1`, `DELETE FROM sessions WHERE user_id = $1`,
		`DELETE FROM env_sessions WHERE user_id = $1`, `DELETE FROM identities WHERE user_id = $1`} {
		if _, err := q.ExecContext(ctx, stmt, id); err != nil {
			return err
		}
	}
	if _, err := q.ExecContext(ctx, `UPDATE api_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at = 0`, micros(Now()), id); err != nil {
		return err
	}
	return one(q.ExecContext(ctx, `DELETE FROM users WHERE id = $1`, id))
}

func one(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// GetIdentity returns the identity of a GitLab account.
func GetIdentity(ctx context.Context, q Querier, host string, gitlabUserID int64) (Identity, error) {
	return scanIdentity(q.QueryRowContext(ctx, `SELECT `+identityCols+` FROM identities WHERE host = $1 AND gitlab_user_id = $2`, host, gitlabUserID))
}

// GetIdentityByID returns an identity by id.
func GetIdentityByID(ctx context.Context, q Querier, id int64) (Identity, error) {
	return scanIdentity(q.QueryRowContext(ctx, `SELECT `+identityCols+` FROM identities WHERE id = $1`, id))
}

// IdentitiesOf returns a user's identities.
func IdentitiesOf(ctx context.Context, q Querier, userID int64) ([]Identity, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+identityCols+` FROM identities WHERE user_id = $1 ORDER BY id`, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Identity{}
	for rows.Next() {
		i, err := scanIdentity(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, i)
	}
	return out, rows.Err()
}

// UserByUsername finds the user of host/username among identities: only for
// seeding admins from --admins, where the name is all an operator knows.
func UserByUsername(ctx context.Context, q Querier, host, username string) (User, error) {
	return FindUser(ctx, q, host+"/"+username)
}

// SaveIdentity inserts or updates an identity with fresh tokens, connected.
func SaveIdentity(ctx context.Context, q Querier, i Identity) (Identity, error) {
	now := Now()
	i.State, i.UpdatedAt = IdentityConnected, now
	err := q.QueryRowContext(ctx, `INSERT INTO identities (user_id, host, gitlab_user_id, username, access_token_enc,
		refresh_token_enc, expires_at, scopes, state, created_at, updated_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$10)
		ON CONFLICT (host, gitlab_user_id) DO UPDATE SET username = excluded.username, access_token_enc = excluded.access_token_enc,
		refresh_token_enc = excluded.refresh_token_enc, expires_at = excluded.expires_at, scopes = excluded.scopes,
		state = excluded.state, updated_at = excluded.updated_at, lease_owner = '', lease_until = 0
		RETURNING id, user_id`,
		i.UserID, i.Host, i.GitLabUserID, i.Username, i.AccessSealed, i.RefreshSealed, micros(i.ExpiresAt), i.Scopes, i.State,
		micros(now)).Scan(&i.ID, &i.UserID)
	return i, err
}

// StoreRefreshedTokens stores a rotated token pair, only while owner still
// holds the identity's refresh lease.
func StoreRefreshedTokens(ctx context.Context, q Querier, id int64, owner, access, refresh string, expires time.Time) error {
	return one(q.ExecContext(ctx, `UPDATE identities SET access_token_enc = $1, refresh_token_enc = $2, expires_at = $3,
		state = $4, updated_at = $5, lease_owner = '', lease_until = 0 WHERE id = $6 AND lease_owner = $7`,
		access, refresh, micros(expires), IdentityConnected, micros(Now()), id, owner))
}

// MarkReconnectNeeded records that GitLab refused the identity's refresh token.
func MarkReconnectNeeded(ctx context.Context, q Querier, id int64, owner string) error {
	_, err := q.ExecContext(ctx, `UPDATE identities SET state = $1, updated_at = $2, lease_owner = '', lease_until = 0
		WHERE id = $3 AND lease_owner = $4`, IdentityReconnectNeeded, micros(Now()), id, owner)
	return err
}

// TakeRefreshLease takes the identity's refresh lease for owner until until,
// unless another owner holds a live one. It is one conditional UPDATE, so it
// is atomic on both databases and across replicas.
func TakeRefreshLease(ctx context.Context, q Querier, id int64, owner string, until time.Time) (bool, error) {
	res, err := q.ExecContext(ctx, `UPDATE identities SET lease_owner = $1, lease_until = $2
		WHERE id = $3 AND (lease_owner = '' OR lease_owner = $1 OR lease_until < $4)`, owner, micros(until), id, micros(Now()))
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// ReleaseRefreshLease gives up a lease that was not used.
func ReleaseRefreshLease(ctx context.Context, q Querier, id int64, owner string) error {
	_, err := q.ExecContext(ctx, `UPDATE identities SET lease_owner = '', lease_until = 0 WHERE id = $1 AND lease_owner = $2`, id, owner)
	return err
}

// DeleteIdentity removes a connection.
func DeleteIdentity(ctx context.Context, q Querier, id int64) error {
	return one(q.ExecContext(ctx, `DELETE FROM identities WHERE id = $1`, id))
}
