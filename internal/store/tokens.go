package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"strings"
	"time"
)

// API token roles.
const (
	RoleAdmin  = "admin"
	RoleMember = "member"
)

// APIToken is a credential for /api/v1 and /api/v4. Only its SHA-256 is stored.
type APIToken struct {
	ID         int64     `json:"id"`
	Name       string    `json:"name"`
	Prefix     string    `json:"prefix"`
	Role       string    `json:"role"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at"`
	RevokedAt  time.Time `json:"revoked_at"`
	// UserID is the owner (0: a token of glenv itself, e.g. the seeded admin token).
	UserID int64 `json:"user_id"`
	// Scope is api (read and write) or read_api (reads only), as in GitLab.
	Scope     string    `json:"scope"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Token scopes, GitLab's names.
const (
	ScopeAPI     = "api"
	ScopeReadAPI = "read_api"
)

// TokenPrefix starts every generated token, so leaked ones are recognisable.
const TokenPrefix = "glenv_"

// NewTokenValue returns a fresh random token.
func NewTokenValue() string {
	b := make([]byte, 20)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return TokenPrefix + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

func hashToken(v string) string {
	h := sha256.Sum256([]byte(v))
	return hex.EncodeToString(h[:])
}

func tokenPrefix(v string) string {
	if len(v) > 10 {
		return v[:10]
	}
	return v
}

// CreateAPIToken stores a token of glenv itself (no owner, api scope) with
// the given plaintext value.
func CreateAPIToken(ctx context.Context, q Querier, name, role, value string) (APIToken, error) {
	return CreateUserToken(ctx, q, APIToken{Name: name, Role: role}, value)
}

// CreateUserToken stores t (its Name, Role, UserID, Scope, ExpiresAt) with
// the given plaintext value.
func CreateUserToken(ctx context.Context, q Querier, t APIToken, value string) (APIToken, error) {
	t.Prefix, t.CreatedAt = tokenPrefix(value), Now()
	if t.Scope == "" {
		t.Scope = ScopeAPI
	}
	err := q.QueryRowContext(ctx, `INSERT INTO api_tokens (name, hash, prefix, role, created_at, user_id, scope, expires_at)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$8) RETURNING id`,
		t.Name, hashToken(value), t.Prefix, t.Role, micros(t.CreatedAt), t.UserID, t.Scope, micros(t.ExpiresAt)).Scan(&t.ID)
	if isUniqueViolation(err) {
		return t, ErrConflict
	}
	return t, err
}

// TouchAPIToken records a use, at most once a minute per token so that
// reads do not turn into a write each.
func TouchAPIToken(ctx context.Context, q Querier, id int64, now time.Time) error {
	_, err := q.ExecContext(ctx, `UPDATE api_tokens SET last_used_at = $1 WHERE id = $2 AND last_used_at < $3`,
		micros(now), id, micros(now.Add(-time.Minute)))
	return err
}

// EnsureAPIToken stores value as a token unless it is stored already (seeding from GLENV_ADMIN_TOKEN).
func EnsureAPIToken(ctx context.Context, q Querier, name, role, value string) error {
	_, err := q.ExecContext(ctx, `INSERT INTO api_tokens (name, hash, prefix, role, created_at) VALUES ($1,$2,$3,$4,$5)
		ON CONFLICT (hash) DO UPDATE SET revoked_at = 0, role = excluded.role`, name, hashToken(value), tokenPrefix(value), role, micros(Now()))
	return err
}

// CountAPITokens counts tokens that are not revoked.
func CountAPITokens(ctx context.Context, q Querier) (int, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM api_tokens WHERE revoked_at = 0`).Scan(&n)
	return n, err
}

const tokenCols = `id, name, prefix, role, created_at, last_used_at, revoked_at, user_id, scope, expires_at`

func scanToken(row interface{ Scan(...any) error }) (APIToken, error) {
	var t APIToken
	var c, l, r, e int64
	err := row.Scan(&t.ID, &t.Name, &t.Prefix, &t.Role, &c, &l, &r, &t.UserID, &t.Scope, &e)
	if errors.Is(err, sql.ErrNoRows) {
		return t, ErrNotFound
	}
	t.CreatedAt, t.LastUsedAt, t.RevokedAt, t.ExpiresAt = fromMicros(c), fromMicros(l), fromMicros(r), fromMicros(e)
	return t, err
}

// ErrExpired is a token past its expiry.
var ErrExpired = errors.New("token expired")

// Authenticate returns the live token with that value: ErrNotFound for an
// unknown or revoked one, ErrExpired for one past its expiry.
func Authenticate(ctx context.Context, q Querier, value string) (APIToken, error) {
	t, err := scanToken(q.QueryRowContext(ctx, `SELECT `+tokenCols+` FROM api_tokens WHERE hash = $1 AND revoked_at = 0`, hashToken(value)))
	if err == nil && !t.ExpiresAt.IsZero() && !Now().Before(t.ExpiresAt) {
		return t, ErrExpired
	}
	return t, err
}

// GetAPIToken returns a token by id.
func GetAPIToken(ctx context.Context, q Querier, id int64) (APIToken, error) {
	return scanToken(q.QueryRowContext(ctx, `SELECT `+tokenCols+` FROM api_tokens WHERE id = $1`, id))
}

// ListAPITokens returns every token (never their values).
func ListAPITokens(ctx context.Context, q Querier) ([]APIToken, error) {
	return listTokens(ctx, q, `SELECT `+tokenCols+` FROM api_tokens ORDER BY id`)
}

// TokensOf returns the tokens of one user.
func TokensOf(ctx context.Context, q Querier, userID int64) ([]APIToken, error) {
	return listTokens(ctx, q, `SELECT `+tokenCols+` FROM api_tokens WHERE user_id = $1 ORDER BY id`, userID)
}

func listTokens(ctx context.Context, q Querier, query string, args ...any) ([]APIToken, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []APIToken{}
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// RevokeAPIToken revokes a token by id.
func RevokeAPIToken(ctx context.Context, q Querier, id int64) error {
	res, err := q.ExecContext(ctx, `UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at = 0`, micros(Now()), id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}
