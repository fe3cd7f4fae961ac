package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Replica is one `glenv serve` process registered in the database
// (migration 0020). Only PostgreSQL has more than one.
type Replica struct {
	ID int64 `json:"id"`
	// Address is where the other replicas reach it (--replica-address).
	Address     string    `json:"address"`
	StartedAt   time.Time `json:"started_at"`
	HeartbeatAt time.Time `json:"heartbeat_at"`
}

// RegisterReplica inserts a replica that starts now.
func RegisterReplica(ctx context.Context, q Querier, address string, now time.Time) (Replica, error) {
	r := Replica{Address: address, StartedAt: now, HeartbeatAt: now}
	err := q.QueryRowContext(ctx, `INSERT INTO replicas (address, started_at, heartbeat_at) VALUES ($1, $2, $2) RETURNING id`,
		address, micros(now)).Scan(&r.ID)
	if err != nil {
		return Replica{}, fmt.Errorf("register replica %s: %w", address, err)
	}
	return r, nil
}

// TakeOverReplica makes the replica row id, whose heartbeat is older than
// staleBefore, the row of a process starting now at the same address, so
// the environments it owned stay with it. It reports false when the row is
// gone or its heartbeat is fresh (another process is alive there).
func TakeOverReplica(ctx context.Context, q Querier, id int64, staleBefore, now time.Time) (bool, error) {
	res, err := q.ExecContext(ctx, `UPDATE replicas SET started_at = $1, heartbeat_at = $1 WHERE id = $2 AND heartbeat_at < $3`,
		micros(now), id, micros(staleBefore))
	if err != nil {
		return false, fmt.Errorf("take over replica %d: %w", id, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// HeartbeatReplica records that replica id is alive at now. It reports false
// when the row is gone: the other replicas declared it dead and took its
// environments over.
func HeartbeatReplica(ctx context.Context, q Querier, id int64, now time.Time) (bool, error) {
	res, err := q.ExecContext(ctx, `UPDATE replicas SET heartbeat_at = $1 WHERE id = $2`, micros(now), id)
	if err != nil {
		return false, fmt.Errorf("heartbeat of replica %d: %w", id, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// ListReplicas lists every registered replica, alive or not, by id.
func ListReplicas(ctx context.Context, q Querier) ([]Replica, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, address, started_at, heartbeat_at FROM replicas ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list replicas: %w", err)
	}
	defer rows.Close()
	var out []Replica
	for rows.Next() {
		var r Replica
		var started, beat int64
		if err := rows.Scan(&r.ID, &r.Address, &started, &beat); err != nil {
			return nil, err
		}
		r.StartedAt, r.HeartbeatAt = fromMicros(started), fromMicros(beat)
		out = append(out, r)
	}
	return out, rows.Err()
}

// RemoveDeadReplica deletes replica id if its heartbeat is still older than
// staleBefore. Only one caller gets true for a dead replica, even when
// several find it dead at once: that one takes its environments over in
// the same transaction.
func RemoveDeadReplica(ctx context.Context, q Querier, id int64, staleBefore time.Time) (bool, error) {
	res, err := q.ExecContext(ctx, `DELETE FROM replicas WHERE id = $1 AND heartbeat_at < $2`, id, micros(staleBefore))
	if err != nil {
		return false, fmt.Errorf("remove dead replica %d: %w", id, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// RemoveReplica deletes replica id (a clean shutdown: its environments are
// taken over at once, without waiting for the heartbeat to go stale).
func RemoveReplica(ctx context.Context, q Querier, id int64) error {
	_, err := q.ExecContext(ctx, `DELETE FROM replicas WHERE id = $1`, id)
	return err
}

// EnvironmentOwner is the replica that runs environment id (0: none).
func EnvironmentOwner(ctx context.Context, q Querier, id int64) (int64, error) {
	var owner int64
	err := q.QueryRowContext(ctx, `SELECT owner_replica_id FROM environments WHERE id = $1`, id).Scan(&owner)
	if err != nil {
		return 0, fmt.Errorf("owner of environment %d: %w", id, notFound(err))
	}
	return owner, nil
}

// EnvironmentOwnerByHost is the replica that runs the live environment with
// that host label (0: none).
func EnvironmentOwnerByHost(ctx context.Context, q Querier, host string) (int64, error) {
	var owner int64
	err := q.QueryRowContext(ctx, `SELECT owner_replica_id FROM environments WHERE host = $1 AND deleted_at = 0`, host).Scan(&owner)
	if err != nil {
		return 0, fmt.Errorf("owner of environment %s: %w", host, notFound(err))
	}
	return owner, nil
}

// SetEnvironmentOwner makes replica the one that runs environment id.
func SetEnvironmentOwner(ctx context.Context, q Querier, id, replica int64) error {
	_, err := q.ExecContext(ctx, `UPDATE environments SET owner_replica_id = $1 WHERE id = $2`, replica, id)
	return err
}

// ClaimEnvironment makes replica the owner of environment id when it has
// none, and reports whether replica owns it afterwards.
func ClaimEnvironment(ctx context.Context, q Querier, id, replica int64) (bool, error) {
	if _, err := q.ExecContext(ctx, `UPDATE environments SET owner_replica_id = $1 WHERE id = $2 AND owner_replica_id = 0`, replica, id); err != nil {
		return false, fmt.Errorf("claim environment %d: %w", id, err)
	}
	owner, err := EnvironmentOwner(ctx, q, id)
	return owner == replica, err
}

// EnvironmentsOwnedBy lists the live environments replica runs, by id.
func EnvironmentsOwnedBy(ctx context.Context, q Querier, replica int64) ([]int64, error) {
	rows, err := q.QueryContext(ctx, `SELECT id FROM environments WHERE owner_replica_id = $1 AND deleted_at = 0 ORDER BY id`, replica)
	if err != nil {
		return nil, fmt.Errorf("environments of replica %d: %w", replica, err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// notFound turns "no rows" into ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	return err
}

// OwnedCounts counts the live environments each replica runs.
func OwnedCounts(ctx context.Context, q Querier) (map[int64]int, error) {
	rows, err := q.QueryContext(ctx, `SELECT owner_replica_id, COUNT(*) FROM environments
		WHERE deleted_at = 0 AND owner_replica_id <> 0 GROUP BY owner_replica_id`)
	if err != nil {
		return nil, fmt.Errorf("count environments per replica: %w", err)
	}
	defer rows.Close()
	out := map[int64]int{}
	for rows.Next() {
		var id int64
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, err
		}
		out[id] = n
	}
	return out, rows.Err()
}
