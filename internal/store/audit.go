package store

import (
	"context"
	"time"
)

// AuditEvent is one recorded change: who did what to which target, when and
// from where.
type AuditEvent struct {
	ID         int64     `json:"id"`
	At         time.Time `json:"at"`
	Actor      string    `json:"actor"`
	Action     string    `json:"action"`
	Target     string    `json:"target"`
	Detail     string    `json:"detail"`
	RemoteAddr string    `json:"remote_addr"`
}

// InsertAuditEvent records e (At is set to now).
func InsertAuditEvent(ctx context.Context, q Querier, e AuditEvent) error {
	_, err := q.ExecContext(ctx, `INSERT INTO audit_events (at, actor, action, target, detail, remote_addr) VALUES ($1,$2,$3,$4,$5,$6)`,
		micros(Now()), e.Actor, e.Action, e.Target, e.Detail, e.RemoteAddr)
	return err
}

// ListAuditEvents returns events newest first, at most limit, older than
// before when before > 0 (paging by id).
func ListAuditEvents(ctx context.Context, q Querier, before int64, limit int) ([]AuditEvent, error) {
	if before <= 0 {
		before = 1 << 62
	}
	rows, err := q.QueryContext(ctx, `SELECT id, at, actor, action, target, detail, remote_addr FROM audit_events
		WHERE id < $1 ORDER BY id DESC LIMIT $2`, before, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []AuditEvent{}
	for rows.Next() {
		var e AuditEvent
		var at int64
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Target, &e.Detail, &e.RemoteAddr); err != nil {
			return nil, err
		}
		e.At = fromMicros(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

// PruneAuditEvents deletes events older than cutoff, so the trail does not
// grow without bound.
func PruneAuditEvents(ctx context.Context, q Querier, cutoff time.Time) (int64, error) {
	res, err := q.ExecContext(ctx, `DELETE FROM audit_events WHERE at < $1`, micros(cutoff))
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
