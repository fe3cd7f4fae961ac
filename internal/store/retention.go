package store

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Queries for internal/retention. Each works on at most limit rows so that
// no transaction grows with the backlog; the caller loops until a pass
// returns fewer.

// DropDeliveryBodies deletes the bodies of up to limit deliveries received
// before before that are done with (processed, failed or duplicates: a
// delivery still waiting for its job keeps its body), keeping headers and
// results, and stamps body_dropped_at. It returns how many it dropped.
// The stamp and the deletion are two statements, so it takes a
// transaction.
func DropDeliveryBodies(ctx context.Context, tx *sql.Tx, before time.Time, limit int) (int, error) {
	return withoutBodies(ctx, tx, `UPDATE deliveries SET body_dropped_at = $1
		WHERE id IN (SELECT id FROM deliveries WHERE body_dropped_at = 0 AND received_at < $2 AND status <> $3
			ORDER BY received_at LIMIT $4) RETURNING id`, micros(Now()), micros(before), DeliveryAccepted, limit)
}

// ForgetDeliveries deletes up to limit deliveries received before before,
// whole (headers, status, result and any body left), oldest first. A
// delivery still waiting for its job stays. GitLab redelivering a
// forgotten one finds no dedupe key and has it processed again, as a new
// event (--delivery-retention is far longer than GitLab retries for).
// The rows and their bodies go in two statements, so it takes a
// transaction.
func ForgetDeliveries(ctx context.Context, tx *sql.Tx, before time.Time, limit int) (int, error) {
	return withoutBodies(ctx, tx, `DELETE FROM deliveries
		WHERE id IN (SELECT id FROM deliveries WHERE received_at < $1 AND status <> $2 ORDER BY id LIMIT $3)
		RETURNING id`, micros(before), DeliveryAccepted, limit)
}

// withoutBodies runs stmt, which returns the ids of deliveries, and
// deletes those deliveries' stored bodies, in lists far below both
// databases' parameter limits. It returns how many ids stmt returned.
func withoutBodies(ctx context.Context, q Querier, stmt string, args ...any) (int, error) {
	rows, err := q.QueryContext(ctx, stmt, args...)
	if err != nil {
		return 0, err
	}
	ids, err := scanIDs(rows)
	if err != nil {
		return 0, err
	}
	for rest := ids; len(rest) > 0; {
		n := min(len(rest), 500)
		list, args := idList(rest[:n])
		if _, err := q.ExecContext(ctx, `DELETE FROM delivery_bodies WHERE delivery_id IN (`+list+`)`, args...); err != nil {
			return 0, err
		}
		rest = rest[n:]
	}
	return len(ids), nil
}

// idList is ids as the parameters of `IN (…)`: the list "$1,…,$n" and its
// arguments.
func idList(ids []int64) (string, []any) {
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	return placeholders(len(ids)), args
}

// placeholders is "$1,$2,…,$n".
func placeholders(n int) string { return placeholdersFrom(1, n) }

// placeholdersFrom is "$first,…,$first+n-1": the parameters of one row of a
// multi-row statement, or of a list after other parameters.
func placeholdersFrom(first, n int) string {
	var b strings.Builder
	for i := first; i < first+n; i++ {
		if i > first {
			b.WriteByte(',')
		}
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(i))
	}
	return b.String()
}

// PurgeDeletedEnvironments forgets up to limit environments deleted before
// before: the tombstone, its activities, their logs and its feedback
// bookkeeping, in one transaction so nothing is left half-removed. It
// returns how many environments it removed.
func PurgeDeletedEnvironments(ctx context.Context, tx *sql.Tx, before time.Time, limit int) (int, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id FROM environments WHERE deleted_at > 0 AND deleted_at < $1
		ORDER BY deleted_at LIMIT $2`, micros(before), limit)
	if err != nil {
		return 0, err
	}
	ids, err := scanIDs(rows)
	if err != nil {
		return 0, err
	}
	purged := 0
	for _, id := range ids {
		// The tombstone goes first, still guarded: one brought back meanwhile
		// (an environment re-created under its name) keeps everything.
		res, err := tx.ExecContext(ctx, `DELETE FROM environments WHERE id = $1 AND deleted_at > 0 AND deleted_at < $2`, id, micros(before))
		if err != nil {
			return 0, err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return 0, err
		}
		if n == 0 {
			continue
		}
		for _, stmt := range []string{
			`DELETE FROM activity_log_chunks WHERE activity_id IN (SELECT id FROM activities WHERE environment_id = $1)`,
			`DELETE FROM feedback_deploys WHERE environment_id = $1`,
			`DELETE FROM feedback_environments WHERE environment_id = $1`,
			`DELETE FROM activities WHERE environment_id = $1`,
		} {
			if _, err := tx.ExecContext(ctx, stmt, id); err != nil {
				return 0, err
			}
		}
		purged++
	}
	return purged, nil
}

// CrowdedEnvironments lists the environments, deleted or not, with more
// than keep activities: those ForgetActivities has work in. One pass over
// the (environment_id, id) index.
func CrowdedEnvironments(ctx context.Context, q Querier, keep int) ([]int64, error) {
	rows, err := q.QueryContext(ctx, `SELECT environment_id FROM activities GROUP BY environment_id
		HAVING COUNT(*) > $1 ORDER BY environment_id`, keep)
	if err != nil {
		return nil, err
	}
	return scanIDs(rows)
}

// ForgetActivities deletes up to limit of an environment's activities
// older than its newest keep, oldest first, with their logs and GitLab
// bookkeeping (--activity-history). It keeps, however old:
//   - an activity not finished, or still the environment's pending one;
//   - the newest activity of each kind (the dashboard and environment:get
//     show the latest prebuild, say);
//   - the last successful deploy: GitLab's last_deployment, and where
//     idleness counts from (LastSuccessfulDeploy, IdleCandidates);
//   - a deploy whose state GitLab does not fully show yet (feedback still
//     has to finish its commit status or deployment: FeedbackDeploys), and
//     one of the newest FeedbackWindow deploys feedback has not recorded
//     at all yet (GitLab down, a backlog).
//
// The GitLab deployments of forgotten deploys stay claimed through
// feedback_environments.forgotten_deployment_id (DeploymentClaims). It
// returns how many activities it deleted.
func ForgetActivities(ctx context.Context, tx *sql.Tx, envID int64, keep, limit int) (int, error) {
	ids, err := ForgettableActivities(ctx, tx, envID, keep, limit)
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	list, args := idList(ids)
	var claimed int64
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(deployment_id), 0) FROM feedback_deploys
		WHERE activity_id IN (`+list+`)`, args...).Scan(&claimed); err != nil {
		return 0, err
	}
	if claimed > 0 {
		// The row exists: a deploy with a deployment id was synced.
		if _, err := tx.ExecContext(ctx, `UPDATE feedback_environments SET forgotten_deployment_id = $1
			WHERE environment_id = $2 AND forgotten_deployment_id < $1`, claimed, envID); err != nil {
			return 0, err
		}
	}
	var deleted int64
	for _, stmt := range []string{
		`DELETE FROM activity_log_chunks WHERE activity_id IN (` + list + `)`,
		`DELETE FROM feedback_deploys WHERE activity_id IN (` + list + `)`,
		`DELETE FROM activities WHERE id IN (` + list + `)`,
	} {
		res, err := tx.ExecContext(ctx, stmt, args...)
		if err != nil {
			return 0, err
		}
		if deleted, err = res.RowsAffected(); err != nil {
			return 0, err
		}
	}
	// The rows this transaction deleted: a pass running alongside on another
	// replica does not count them twice.
	return int(deleted), nil
}

// ForgettableActivities lists, oldest first, up to limit of the
// activities ForgetActivities would delete. Retention asks a reader first,
// so an environment whose old activities must all stay costs no write
// transaction.
func ForgettableActivities(ctx context.Context, q Querier, envID int64, keep, limit int) ([]int64, error) {
	var newestGoing int64
	err := q.QueryRowContext(ctx, `SELECT id FROM activities WHERE environment_id = $1 ORDER BY id DESC LIMIT 1 OFFSET $2`,
		envID, keep).Scan(&newestGoing)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	rows, err := q.QueryContext(ctx, `SELECT a.id FROM activities a LEFT JOIN feedback_deploys f ON f.activity_id = a.id
		WHERE a.environment_id = $1 AND a.id <= $2 AND a.state IN ($3, $4, $5)
		AND (f.settled = a.state OR f.activity_id IS NULL AND (a.kind <> $6 OR a.id < COALESCE(
			(SELECT id FROM activities WHERE environment_id = $1 AND kind = $6 ORDER BY id DESC LIMIT 1 OFFSET $7), 0)))
		AND a.id NOT IN (SELECT pending_activity_id FROM environments WHERE id = $1)
		AND a.id NOT IN (SELECT MAX(id) FROM activities WHERE environment_id = $1 GROUP BY kind)
		AND a.id NOT IN (SELECT id FROM activities WHERE environment_id = $1 AND kind = $6 AND state = $3
			ORDER BY completed_at DESC, id DESC LIMIT 1)
		ORDER BY a.id LIMIT $8`, envID, newestGoing, ActivityComplete, ActivityFailed, ActivityCancelled, ActivityDeploy,
		FeedbackWindow-1, limit)
	if err != nil {
		return nil, err
	}
	return scanIDs(rows)
}
