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
}

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

// CreateAPIToken stores a token with the given plaintext value.
func CreateAPIToken(ctx context.Context, q Querier, name, role, value string) (APIToken, error) {
	t := APIToken{Name: name, Role: role, Prefix: tokenPrefix(value), CreatedAt: Now()}
	err := q.QueryRowContext(ctx, `INSERT INTO api_tokens (name, hash, prefix, role, created_at) VALUES ($1,$2,$3,$4,$5) RETURNING id`,
		name, hashToken(value), t.Prefix, role, micros(t.CreatedAt)).Scan(&t.ID)
	if isUniqueViolation(err) {
		return t, ErrConflict
	}
	return t, err
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

// Authenticate returns the live token with that value.
func Authenticate(ctx context.Context, q Querier, value string) (APIToken, error) {
	var t APIToken
	var c, l, r int64
	err := q.QueryRowContext(ctx, `SELECT id, name, prefix, role, created_at, last_used_at, revoked_at FROM api_tokens
		WHERE hash = $1 AND revoked_at = 0`, hashToken(value)).Scan(&t.ID, &t.Name, &t.Prefix, &t.Role, &c, &l, &r)
	if errors.Is(err, sql.ErrNoRows) {
		return t, ErrNotFound
	}
	t.CreatedAt, t.LastUsedAt, t.RevokedAt = fromMicros(c), fromMicros(l), fromMicros(r)
	return t, err
}

// ListAPITokens returns every token (never their values).
func ListAPITokens(ctx context.Context, q Querier) ([]APIToken, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, name, prefix, role, created_at, last_used_at, revoked_at FROM api_tokens ORDER BY id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []APIToken{}
	for rows.Next() {
		var t APIToken
		var c, l, r int64
		if err := rows.Scan(&t.ID, &t.Name, &t.Prefix, &t.Role, &c, &l, &r); err != nil {
			return nil, err
		}
		t.CreatedAt, t.LastUsedAt, t.RevokedAt = fromMicros(c), fromMicros(l), fromMicros(r)
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
