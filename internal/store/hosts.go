package store

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// GitLabHost is a GitLab instance registered as an OAuth application that
// people sign in with. The client secret stays sealed here.
type GitLabHost struct {
	ID                 int64     `json:"id"`
	Host               string    `json:"host"`
	URL                string    `json:"url"`
	ClientID           string    `json:"client_id"`
	ClientSecretSealed string    `json:"-"`
	CreatedAt          time.Time `json:"created_at"`
}

const hostCols = `id, host, url, client_id, client_secret_enc, created_at`

func scanHost(row interface{ Scan(...any) error }) (GitLabHost, error) {
	var h GitLabHost
	var c int64
	err := row.Scan(&h.ID, &h.Host, &h.URL, &h.ClientID, &h.ClientSecretSealed, &c)
	if errors.Is(err, sql.ErrNoRows) {
		return h, ErrNotFound
	}
	h.CreatedAt = fromMicros(c)
	return h, err
}

// CreateGitLabHost stores a host; a host registered already is ErrConflict.
func CreateGitLabHost(ctx context.Context, q Querier, h GitLabHost) (GitLabHost, error) {
	h.CreatedAt = Now()
	err := q.QueryRowContext(ctx, `INSERT INTO gitlab_hosts (host, url, client_id, client_secret_enc, created_at)
		VALUES ($1,$2,$3,$4,$5) RETURNING id`, h.Host, h.URL, h.ClientID, h.ClientSecretSealed, micros(h.CreatedAt)).Scan(&h.ID)
	if isUniqueViolation(err) {
		return h, ErrConflict
	}
	return h, err
}

// GetGitLabHost returns the host registered under host (host[:port]).
func GetGitLabHost(ctx context.Context, q Querier, host string) (GitLabHost, error) {
	return scanHost(q.QueryRowContext(ctx, `SELECT `+hostCols+` FROM gitlab_hosts WHERE host = $1`, host))
}

// ListGitLabHosts returns every registered host.
func ListGitLabHosts(ctx context.Context, q Querier) ([]GitLabHost, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+hostCols+` FROM gitlab_hosts ORDER BY host`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []GitLabHost{}
	for rows.Next() {
		h, err := scanHost(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// DeleteGitLabHost removes a host and the identities on it.
func DeleteGitLabHost(ctx context.Context, q Querier, host string) error {
	res, err := q.ExecContext(ctx, `DELETE FROM gitlab_hosts WHERE host = $1`, host)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	_, err = q.ExecContext(ctx, `DELETE FROM identities WHERE host = $1`, host)
	return err
}
