package store

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// Session is a signed-in browser. Only the hash of its cookie is stored.
type Session struct {
	ID        int64
	UserID    int64
	CSRF      string
	ExpiresAt time.Time
}

// CreateSession stores a session under the hash of value, and drops expired
// sessions and sign-in states so neither grows without bound.
func CreateSession(ctx context.Context, q Querier, value string, s Session, remote string) (Session, error) {
	now := Now()
	if _, err := q.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at < $1`, micros(now)); err != nil {
		return s, err
	}
	err := q.QueryRowContext(ctx, `INSERT INTO sessions (hash, user_id, csrf, created_at, expires_at, remote_addr)
		VALUES ($1,$2,$3,$4,$5,$6) RETURNING id`, hashToken(value), s.UserID, s.CSRF, micros(now), micros(s.ExpiresAt), remote).Scan(&s.ID)
	return s, err
}

// GetSession returns the live session with that cookie value. A session of a
// removed user is gone with the user.
func GetSession(ctx context.Context, q Querier, value string) (Session, error) {
	var s Session
	var e int64
	err := q.QueryRowContext(ctx, `SELECT s.id, s.user_id, s.csrf, s.expires_at FROM sessions s JOIN users u ON u.id = s.user_id
		WHERE s.hash = $1 AND s.expires_at > $2`, hashToken(value), micros(Now())).Scan(&s.ID, &s.UserID, &s.CSRF, &e)
	if errors.Is(err, sql.ErrNoRows) {
		return s, ErrNotFound
	}
	s.ExpiresAt = fromMicros(e)
	return s, err
}

// DeleteSession revokes a session.
func DeleteSession(ctx context.Context, q Querier, value string) error {
	_, err := q.ExecContext(ctx, `DELETE FROM sessions WHERE hash = $1`, hashToken(value))
	return err
}

// OAuthState is a sign-in in flight.
type OAuthState struct {
	Host           string
	ReturnTo       string
	VerifierSealed string
	UserID         int64 // signed in already: connect this account to them
	ExpiresAt      time.Time
}

// PutOAuthState stores a sign-in in flight under the hash of its nonce and
// drops expired ones.
func PutOAuthState(ctx context.Context, q Querier, nonce string, st OAuthState) error {
	if _, err := q.ExecContext(ctx, `DELETE FROM oauth_states WHERE expires_at < $1`, micros(Now())); err != nil {
		return err
	}
	_, err := q.ExecContext(ctx, `INSERT INTO oauth_states (nonce_hash, host, return_to, verifier_enc, user_id, expires_at)
		VALUES ($1,$2,$3,$4,$5,$6)`, hashToken(nonce), st.Host, st.ReturnTo, st.VerifierSealed, st.UserID, micros(st.ExpiresAt))
	return err
}

// TakeOAuthState removes and returns the live state of nonce: a state works
// once, so a replayed callback finds nothing.
func TakeOAuthState(ctx context.Context, q Querier, nonce string) (OAuthState, error) {
	var st OAuthState
	var e int64
	err := q.QueryRowContext(ctx, `DELETE FROM oauth_states WHERE nonce_hash = $1
		RETURNING host, return_to, verifier_enc, user_id, expires_at`, hashToken(nonce)).Scan(&st.Host, &st.ReturnTo, &st.VerifierSealed, &st.UserID, &e)
	if errors.Is(err, sql.ErrNoRows) {
		return st, ErrNotFound
	}
	st.ExpiresAt = fromMicros(e)
	if err == nil && !st.ExpiresAt.After(Now()) {
		return st, ErrNotFound
	}
	return st, err
}
