package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Queries for the GitLab-compatible environments API (internal/envapi). A
// GitLab project's environments are the live environments of the
// integrations that connect it; every query here takes those integrations'
// ids and pages in the database.

// ProjectEnvQuery selects environments of a GitLab project the way GitLab's
// EnvironmentsFinder does.
type ProjectEnvQuery struct {
	IntegrationIDs []int64
	Name           string // exact; "" = any
	Prefix         string // GitLab's search (see where); "" = any
	GitLabState    string // available, stopping or stopped; "" = any
}

// segmentChars are the characters a folder name (a name's first segment)
// is made of: every printable ASCII character but '/'.
var segmentChars = func() string {
	var b strings.Builder
	for c := byte(' '); c <= '~'; c++ {
		if c != '/' {
			b.WriteByte(c)
		}
	}
	return b.String()
}()

// where renders q as a condition on environments and its arguments.
func (q ProjectEnvQuery) where() (string, []any) {
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	ids := make([]string, len(q.IntegrationIDs))
	for i, id := range q.IntegrationIDs {
		ids[i] = arg(id)
	}
	if len(ids) == 0 {
		ids = []string{"NULL"}
	}
	cond := []string{"integration_id IN (" + strings.Join(ids, ",") + ")", "deleted_at = 0"}
	if q.Name != "" {
		cond = append(cond, "name = "+arg(q.Name))
	}
	if q.Prefix != "" {
		// GitLab's search (app/finders/environments/environments_finder.rb
		// #by_search) is the union of for_name_like, a case-insensitive
		// prefix of the name, and for_name_like_within_folder, the same
		// prefix of the name without its folder ("review/" of
		// "review/feature-1"): app/models/environment.rb strips the folder
		// with LTRIM(LTRIM(name, environment_type), '/'). glenv has no
		// environment_type column; LTRIM by every printable character but
		// '/' strips the first segment just as well, in SQLite and
		// PostgreSQL alike.
		p := arg(strings.ToLower(escapeLike(q.Prefix)) + "%")
		cond = append(cond, "(LOWER(name) LIKE "+p+` ESCAPE '\' OR (name LIKE '%/%' AND LOWER(LTRIM(LTRIM(name, `+
			arg(segmentChars)+"), '/')) LIKE "+p+` ESCAPE '\'))`)
	}
	if q.GitLabState != "" {
		var ph []string
		for _, s := range statesFor(q.GitLabState) {
			ph = append(ph, arg(s))
		}
		if len(ph) == 0 {
			ph = []string{"NULL"}
		}
		cond = append(cond, "state IN ("+strings.Join(ph, ",")+")")
	}
	return strings.Join(cond, " AND "), args
}

// PageProjectEnvironments returns at most limit environments matching q,
// ordered by id, skipping offset (GitLab's offset pagination).
func PageProjectEnvironments(ctx context.Context, db Querier, q ProjectEnvQuery, limit, offset int) ([]Environment, error) {
	envs, _, err := PageProjectEnvironmentsWithAttrs(ctx, db, q, limit, offset)
	return envs, err
}

// PageProjectEnvironmentsWithAttrs is PageProjectEnvironments with each
// environment's GitLab attributes (defaults where it has none). The page's
// ids are found first, so the rows skipped by OFFSET are read from the index
// environments_integration_live alone, and only the page's rows are fetched,
// their attributes joined in the same query.
func PageProjectEnvironmentsWithAttrs(ctx context.Context, db Querier, q ProjectEnvQuery, limit, offset int) ([]Environment, []EnvAPIAttrs, error) {
	cond, args := q.where()
	args = append(args, limit, offset)
	rows, err := db.QueryContext(ctx, fmt.Sprintf(`SELECT %s, COALESCE(x.auto_stop_setting, '%s'), COALESCE(x.auto_delete_at, 0)
		FROM environments LEFT JOIN envapi_environments x ON x.environment_id = environments.id
			AND x.environment_created_at = environments.created_at
		WHERE environments.id IN (SELECT id FROM environments WHERE %s ORDER BY id LIMIT $%d OFFSET $%d) ORDER BY environments.id`,
		envCols, DefaultAutoStopSetting, cond, len(args)-1, len(args)), args...)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	envs, attrs := []Environment{}, []EnvAPIAttrs{}
	for rows.Next() {
		var a EnvAPIAttrs
		var del int64
		e, err := scanEnv(withExtra{rows, []any{&a.AutoStopSetting, &del}})
		if err != nil {
			return nil, nil, err
		}
		if del != 0 {
			a.AutoDeleteAt = fromMicros(del)
		}
		envs, attrs = append(envs, e), append(attrs, a)
	}
	return envs, attrs, rows.Err()
}

// withExtra scans a row of envCols followed by more columns.
type withExtra struct {
	row   interface{ Scan(...any) error }
	extra []any
}

func (w withExtra) Scan(dest ...any) error { return w.row.Scan(append(dest, w.extra...)...) }

// CountProjectEnvironments counts the environments matching q, but stops
// counting past limit: GitLab leaves the totals out beyond 10,000 rows, and
// counting them all would cost more than the page itself.
func CountProjectEnvironments(ctx context.Context, db Querier, q ProjectEnvQuery, limit int) (int, error) {
	cond, args := q.where()
	args = append(args, limit+1)
	var n int
	err := db.QueryRowContext(ctx, fmt.Sprintf(`SELECT COUNT(*) FROM (SELECT 1 FROM environments WHERE %s LIMIT $%d) matched`,
		cond, len(args)), args...).Scan(&n)
	return n, err
}

// ProjectEnvironmentExists reports whether a live environment of the
// integrations has that name or slug (GitLab's per-project uniqueness), and
// which of the two is taken.
func ProjectEnvironmentExists(ctx context.Context, db Querier, integrationIDs []int64, name, slug string) (nameTaken, slugTaken bool, err error) {
	cond, args := ProjectEnvQuery{IntegrationIDs: integrationIDs}.where()
	args = append(args, name, slug)
	rows, err := db.QueryContext(ctx, fmt.Sprintf(`SELECT name, slug FROM environments WHERE %s AND (name = $%d OR slug = $%d)`,
		cond, len(args)-1, len(args)), args...)
	if err != nil {
		return false, false, err
	}
	defer rows.Close()
	for rows.Next() {
		var n, s string
		if err := rows.Scan(&n, &s); err != nil {
			return false, false, err
		}
		nameTaken = nameTaken || n == name
		slugTaken = slugTaken || s == slug
	}
	return nameTaken, slugTaken, rows.Err()
}

// GetEnvironmentOrTombstone returns an environment by id, deleted or not.
func GetEnvironmentOrTombstone(ctx context.Context, db Querier, id int64) (Environment, error) {
	return scanEnv(db.QueryRowContext(ctx, `SELECT `+envCols+` FROM environments WHERE id = $1`, id))
}

// StaleEnvironments returns the live environments of the integrations that
// GitLab would call available, last updated before `before`, with no deploy
// started, running or finished since (GitLab's deployed_and_updated_before).
func StaleEnvironments(ctx context.Context, db Querier, integrationIDs []int64, before time.Time) ([]Environment, error) {
	cond, args := ProjectEnvQuery{IntegrationIDs: integrationIDs, GitLabState: "available"}.where()
	args = append(args, micros(before), ActivityDeploy)
	b, kind := len(args)-1, len(args)
	return listEnvs(ctx, db, fmt.Sprintf(`SELECT %s FROM environments WHERE %s AND updated_at < $%d
		AND NOT EXISTS (SELECT 1 FROM activities a WHERE a.environment_id = environments.id AND a.kind = $%d
			AND (a.created_at >= $%d OR a.started_at >= $%d OR a.completed_at >= $%d))
		ORDER BY id`, envCols, cond, b, kind, b, b, b), args...)
}

// StoppedReviewApps returns up to limit stopped environments of the
// integrations in GitLab's "review" folder (names "review/…") created before
// `before`, oldest first, and not already scheduled for deletion (GitLab's
// not_scheduled_for_deletion.stopped_review_apps).
func StoppedReviewApps(ctx context.Context, db Querier, integrationIDs []int64, before time.Time, limit int) ([]Environment, error) {
	cond, args := ProjectEnvQuery{IntegrationIDs: integrationIDs, GitLabState: "stopped"}.where()
	args = append(args, micros(before), limit)
	return listEnvs(ctx, db, fmt.Sprintf(`SELECT %s FROM environments WHERE %s AND SUBSTR(name, 1, 7) = 'review/' AND created_at < $%d
		AND NOT EXISTS (SELECT 1 FROM envapi_environments x WHERE x.environment_id = environments.id
			AND x.environment_created_at = environments.created_at AND x.auto_delete_at > 0)
		ORDER BY created_at, id LIMIT $%d`, envCols, cond, len(args)-1, len(args)), args...)
}

// EnvAPIAttrs are the GitLab attributes glenv's environments have beyond
// their own columns (table envapi_environments).
type EnvAPIAttrs struct {
	AutoStopSetting string    // "always" or "with_action"
	AutoDeleteAt    time.Time // zero: not scheduled for deletion
}

// DefaultAutoStopSetting is GitLab's default, which an environment without
// a row has.
const DefaultAutoStopSetting = "always"

// EnvAPIAttrsOf returns the GitLab attributes of e, or GitLab's defaults
// when it has none (or only a stale row of an earlier environment that had
// its id).
func EnvAPIAttrsOf(ctx context.Context, db Querier, e Environment) (EnvAPIAttrs, error) {
	a := EnvAPIAttrs{AutoStopSetting: DefaultAutoStopSetting}
	var del int64
	err := db.QueryRowContext(ctx, `SELECT auto_stop_setting, auto_delete_at FROM envapi_environments
		WHERE environment_id = $1 AND environment_created_at = $2`, e.ID, micros(e.CreatedAt)).Scan(&a.AutoStopSetting, &del)
	if errors.Is(err, sql.ErrNoRows) {
		return a, nil
	}
	if del != 0 {
		a.AutoDeleteAt = fromMicros(del)
	}
	return a, err
}

// ResetEnvAPIAttrs gives e (new, or a tombstone revived under the same id)
// its auto_stop_setting and no scheduled deletion.
func ResetEnvAPIAttrs(ctx context.Context, db Querier, e Environment, autoStopSetting string) error {
	_, err := db.ExecContext(ctx, `INSERT INTO envapi_environments (environment_id, environment_created_at, auto_stop_setting, auto_delete_at)
		VALUES ($1, $2, $3, 0) ON CONFLICT (environment_id) DO UPDATE SET environment_created_at = excluded.environment_created_at,
		auto_stop_setting = excluded.auto_stop_setting, auto_delete_at = 0`, e.ID, micros(e.CreatedAt), autoStopSetting)
	return err
}

// SetAutoStopSetting changes e's auto_stop_setting, keeping a scheduled
// deletion only if the row is e's own.
func SetAutoStopSetting(ctx context.Context, db Querier, e Environment, setting string) error {
	_, err := db.ExecContext(ctx, `INSERT INTO envapi_environments (environment_id, environment_created_at, auto_stop_setting)
		VALUES ($1, $2, $3) ON CONFLICT (environment_id) DO UPDATE SET auto_stop_setting = excluded.auto_stop_setting,
		auto_delete_at = CASE WHEN envapi_environments.environment_created_at = excluded.environment_created_at
			THEN envapi_environments.auto_delete_at ELSE 0 END,
		environment_created_at = excluded.environment_created_at`, e.ID, micros(e.CreatedAt), setting)
	return err
}

// ScheduleDeletion marks e for deletion at `at` (GitLab's
// Environment.schedule_to_delete), keeping its auto_stop_setting only if
// the row is e's own.
func ScheduleDeletion(ctx context.Context, db Querier, e Environment, at time.Time) error {
	_, err := db.ExecContext(ctx, `INSERT INTO envapi_environments (environment_id, environment_created_at, auto_delete_at)
		VALUES ($1, $2, $3) ON CONFLICT (environment_id) DO UPDATE SET auto_delete_at = excluded.auto_delete_at,
		auto_stop_setting = CASE WHEN envapi_environments.environment_created_at = excluded.environment_created_at
			THEN envapi_environments.auto_stop_setting ELSE '`+DefaultAutoStopSetting+`' END,
		environment_created_at = excluded.environment_created_at`, e.ID, micros(e.CreatedAt), micros(at))
	return err
}

// DueForDeletion returns up to limit live environments that GitLab would
// call stopped and whose scheduled deletion is due at now (GitLab's
// Environment.auto_deletable).
func DueForDeletion(ctx context.Context, db Querier, now time.Time, limit int) ([]Environment, error) {
	var ph []string
	var args []any
	for _, st := range statesFor("stopped") {
		args = append(args, st)
		ph = append(ph, fmt.Sprintf("$%d", len(args)))
	}
	args = append(args, micros(now), limit)
	return listEnvs(ctx, db, fmt.Sprintf(`SELECT %s FROM environments WHERE deleted_at = 0 AND state IN (%s)
		AND EXISTS (SELECT 1 FROM envapi_environments x WHERE x.environment_id = environments.id
			AND x.environment_created_at = environments.created_at AND x.auto_delete_at > 0 AND x.auto_delete_at <= $%d)
		ORDER BY id LIMIT $%d`, envCols, strings.Join(ph, ","), len(args)-1, len(args)), args...)
}

// ForgetDeletedEnvAPIAttrs removes the rows of environments that were
// deleted or no longer exist, so the table never outgrows the live
// environments.
func ForgetDeletedEnvAPIAttrs(ctx context.Context, db Querier) (int64, error) {
	res, err := db.ExecContext(ctx, `DELETE FROM envapi_environments WHERE NOT EXISTS
		(SELECT 1 FROM environments e WHERE e.id = envapi_environments.environment_id AND e.deleted_at = 0)`)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// LastSuccessfulDeploy returns the environment's deploy activity that
// completed last (GitLab's last_deployment: the last successful one), or
// ErrNotFound.
func LastSuccessfulDeploy(ctx context.Context, db Querier, environmentID int64) (Activity, error) {
	return scanActivity(db.QueryRowContext(ctx, `SELECT `+activityCols+` FROM activities
		WHERE environment_id = $1 AND kind = $2 AND state = $3 ORDER BY completed_at DESC, id DESC LIMIT 1`,
		environmentID, ActivityDeploy, ActivityComplete))
}

// SetEnvironmentAttrs writes only the attributes GitLab lets a client edit,
// so an edit racing a deploy cannot undo the deploy's state change.
func SetEnvironmentAttrs(ctx context.Context, db Querier, id int64, externalURL, tier, description string) error {
	res, err := db.ExecContext(ctx, `UPDATE environments SET external_url = $1, tier = $2, description = $3, updated_at = $4
		WHERE id = $5 AND deleted_at = 0`, externalURL, tier, description, micros(Now()), id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}
