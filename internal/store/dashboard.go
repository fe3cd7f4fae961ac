package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// EnvironmentPage asks for one page of live environments, newest change
// first (the dashboard's list).
type EnvironmentPage struct {
	// Readable limits the list to these integrations; nil means every one
	// (an admin of root), empty means none.
	Readable []string
	// Integration, State and Kind are exact matches ("" = any); Text
	// matches a part of the name or ref, case-insensitively.
	Integration, State, Kind, Text string
	Offset, Limit                  int
	// CountCap bounds the count: past it the page says "more than".
	CountCap int
}

// ListEnvironmentPage returns a page of environments and how many match,
// counted up to f.CountCap (+1 when there are more), so a page costs the
// same with 10,000 environments as with 100.
func ListEnvironmentPage(ctx context.Context, q Querier, f EnvironmentPage) ([]Environment, int, error) {
	where, args := f.where()
	if f.Readable != nil && len(f.Readable) == 0 {
		return []Environment{}, 0, nil
	}
	n := len(args)
	page, err := listEnvs(ctx, q, `SELECT `+envCols+` FROM environments WHERE `+where+
		fmt.Sprintf(` ORDER BY updated_at DESC, id DESC LIMIT $%d OFFSET $%d`, n+1, n+2), append(args, f.Limit, f.Offset)...)
	if err != nil {
		return nil, 0, err
	}
	var count int
	err = q.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM environments WHERE `+where+
		fmt.Sprintf(` LIMIT $%d) AS capped`, n+1), append(args, f.CountCap+1)...).Scan(&count)
	return page, count, err
}

func (f EnvironmentPage) where() (string, []any) {
	conds := []string{"deleted_at = 0"}
	var args []any
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	if f.Readable != nil {
		ph := make([]string, 0, len(f.Readable))
		for _, name := range f.Readable {
			ph = append(ph, arg(name))
		}
		if len(ph) > 0 {
			conds = append(conds, "integration_name IN ("+strings.Join(ph, ", ")+")")
		}
	}
	if f.Integration != "" {
		conds = append(conds, "integration_name = "+arg(f.Integration))
	}
	if f.State != "" {
		conds = append(conds, "state = "+arg(f.State))
	}
	if f.Kind != "" {
		conds = append(conds, "kind = "+arg(f.Kind))
	}
	if f.Text != "" {
		like := "%" + escapeLike(strings.ToLower(f.Text)) + "%"
		conds = append(conds, "(LOWER(name) LIKE "+arg(like)+` ESCAPE '\' OR LOWER(ref) LIKE `+arg(like)+` ESCAPE '\')`)
	}
	return strings.Join(conds, " AND "), args
}

// EnvironmentsUpdatedSince returns environments (tombstones included, so a
// deletion shows) updated at or after since, oldest change first, at most
// limit: the dashboard's change feed polls it.
func EnvironmentsUpdatedSince(ctx context.Context, q Querier, since time.Time, limit int) ([]Environment, error) {
	return listEnvs(ctx, q, `SELECT `+envCols+` FROM environments WHERE updated_at >= $1 ORDER BY updated_at, id LIMIT $2`,
		micros(since), limit)
}

// GetEnvironmentAny returns an environment by id, tombstones included.
func GetEnvironmentAny(ctx context.Context, q Querier, id int64) (Environment, error) {
	return scanEnv(q.QueryRowContext(ctx, `SELECT `+envCols+` FROM environments WHERE id = $1`, id))
}

// LastActivities returns the newest activity of each environment in ids.
func LastActivities(ctx context.Context, q Querier, ids []int64) (map[int64]Activity, error) {
	out := map[int64]Activity{}
	if len(ids) == 0 {
		return out, nil
	}
	ph := make([]string, len(ids))
	args := make([]any, len(ids))
	for i, id := range ids {
		ph[i], args[i] = fmt.Sprintf("$%d", i+1), id
	}
	rows, err := q.QueryContext(ctx, `SELECT `+activityCols+` FROM activities WHERE id IN
		(SELECT MAX(id) FROM activities WHERE environment_id IN (`+strings.Join(ph, ", ")+`) GROUP BY environment_id)`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		a, err := scanActivity(rows)
		if err != nil {
			return nil, err
		}
		out[a.EnvironmentID] = a
	}
	return out, rows.Err()
}
