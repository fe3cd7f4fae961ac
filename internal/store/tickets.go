package store

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// PutEnvTicket stores a one-time ticket (by hash) handing user over to host,
// and drops expired tickets.
func PutEnvTicket(ctx context.Context, q Querier, value string, userID int64, host string, expires time.Time) error {
	if _, err := q.ExecContext(ctx, `DELETE FROM env_tickets WHERE expires_at < $1`, micros(Now())); err != nil {
		return err
	}
	_, err := q.ExecContext(ctx, `INSERT INTO env_tickets (hash, user_id, host, expires_at) VALUES ($1,$2,$3,$4)`,
		hashToken(value), userID, host, micros(expires))
	return err
}

// TakeEnvTicket removes a live ticket for host and returns its user: a
// ticket works once, on the host it was made for.
func TakeEnvTicket(ctx context.Context, q Querier, value, host string) (int64, error) {
	var userID, e int64
	var h string
	err := q.QueryRowContext(ctx, `DELETE FROM env_tickets WHERE hash = $1 RETURNING user_id, host, expires_at`, hashToken(value)).Scan(&userID, &h, &e)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && (h != host || !fromMicros(e).After(Now()))) {
		return 0, ErrNotFound
	}
	return userID, err
}

// PutEnvSession stores the cookie an environment host sets after a ticket.
func PutEnvSession(ctx context.Context, q Querier, value string, userID int64, host string, expires time.Time) error {
	if _, err := q.ExecContext(ctx, `DELETE FROM env_sessions WHERE expires_at < $1`, micros(Now())); err != nil {
		return err
	}
	_, err := q.ExecContext(ctx, `INSERT INTO env_sessions (hash, user_id, host, expires_at) VALUES ($1,$2,$3,$4)`,
		hashToken(value), userID, host, micros(expires))
	return err
}

// GetEnvSession returns the user of a live environment cookie on host.
func GetEnvSession(ctx context.Context, q Querier, value, host string) (int64, error) {
	var userID int64
	err := q.QueryRowContext(ctx, `SELECT user_id FROM env_sessions WHERE hash = $1 AND host = $2 AND expires_at > $3`,
		hashToken(value), host, micros(Now())).Scan(&userID)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, ErrNotFound
	}
	return userID, err
}
