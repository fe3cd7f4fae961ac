package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Variable is one stored variable: the integration's (Environment "") or
// one environment's. Value is sealed when Sensitive; callers open it with
// the secret box and never show it.
type Variable struct {
	ID            int64
	IntegrationID int64
	Environment   string
	Name          string
	Value         string
	Sensitive     bool
	Inheritable   bool
	VisibleBuild  bool
	VisibleRun    bool
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

const variableCols = `id, integration_id, environment, name, value, sensitive, inheritable, visible_build, visible_run, created_at, updated_at`

func scanVariable(row interface{ Scan(...any) error }) (Variable, error) {
	var v Variable
	var created, updated int64
	err := row.Scan(&v.ID, &v.IntegrationID, &v.Environment, &v.Name, &v.Value, &v.Sensitive, &v.Inheritable,
		&v.VisibleBuild, &v.VisibleRun, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return v, ErrNotFound
	}
	v.CreatedAt, v.UpdatedAt = fromMicros(created), fromMicros(updated)
	return v, err
}

// CreateVariable inserts v and sets its ID and times; a name taken at the
// same level returns ErrConflict.
func CreateVariable(ctx context.Context, q Querier, v *Variable) error {
	now := Now()
	v.CreatedAt, v.UpdatedAt = now, now
	err := q.QueryRowContext(ctx, `INSERT INTO variables (integration_id, environment, name, value, sensitive, inheritable,
		visible_build, visible_run, created_at, updated_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10) RETURNING id`,
		v.IntegrationID, v.Environment, v.Name, v.Value, v.Sensitive, v.Inheritable, v.VisibleBuild, v.VisibleRun,
		micros(now), micros(now)).Scan(&v.ID)
	if isUniqueViolation(err) {
		return fmt.Errorf("variable %s: %w", v.Name, ErrConflict)
	}
	return err
}

// UpdateVariable writes v's value and flags (never its name or level).
func UpdateVariable(ctx context.Context, q Querier, v *Variable) error {
	v.UpdatedAt = Now()
	res, err := q.ExecContext(ctx, `UPDATE variables SET value = $1, sensitive = $2, inheritable = $3, visible_build = $4,
		visible_run = $5, updated_at = $6 WHERE id = $7`,
		v.Value, v.Sensitive, v.Inheritable, v.VisibleBuild, v.VisibleRun, micros(v.UpdatedAt), v.ID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// DeleteVariable removes one variable.
func DeleteVariable(ctx context.Context, q Querier, id int64) error {
	res, err := q.ExecContext(ctx, `DELETE FROM variables WHERE id = $1`, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// GetVariable returns the variable called name at one level (environment
// "" for the integration's).
func GetVariable(ctx context.Context, q Querier, integrationID int64, environment, name string) (Variable, error) {
	return scanVariable(q.QueryRowContext(ctx, `SELECT `+variableCols+` FROM variables
		WHERE integration_id = $1 AND environment = $2 AND name = $3`, integrationID, environment, name))
}

// VariablesAt lists one level's variables by name.
func VariablesAt(ctx context.Context, q Querier, integrationID int64, environment string) ([]Variable, error) {
	return listVariables(ctx, q, `SELECT `+variableCols+` FROM variables WHERE integration_id = $1 AND environment = $2 ORDER BY name`,
		integrationID, environment)
}

// VariablesOfIntegration lists every variable of an integration, at every
// level, by level and name.
func VariablesOfIntegration(ctx context.Context, q Querier, integrationID int64) ([]Variable, error) {
	return listVariables(ctx, q, `SELECT `+variableCols+` FROM variables WHERE integration_id = $1 ORDER BY environment, name`, integrationID)
}

// VariablesNamed lists the definitions of one name at every level of an
// integration: all a change of that name can alter.
func VariablesNamed(ctx context.Context, q Querier, integrationID int64, name string) ([]Variable, error) {
	return listVariables(ctx, q, `SELECT `+variableCols+` FROM variables WHERE integration_id = $1 AND name = $2 ORDER BY environment`,
		integrationID, name)
}

// CountVariablesAt counts one level's variables (for the bound per level).
func CountVariablesAt(ctx context.Context, q Querier, integrationID int64, environment string) (int, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM variables WHERE integration_id = $1 AND environment = $2`,
		integrationID, environment).Scan(&n)
	return n, err
}

// DeleteEnvironmentVariables removes one environment's own variables: they
// go with the environment when it is deleted.
func DeleteEnvironmentVariables(ctx context.Context, q Querier, integrationID int64, environment string) error {
	if integrationID == 0 || environment == "" {
		return nil
	}
	_, err := q.ExecContext(ctx, `DELETE FROM variables WHERE integration_id = $1 AND environment = $2`, integrationID, environment)
	return err
}

func listVariables(ctx context.Context, q Querier, query string, args ...any) ([]Variable, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Variable{}
	for rows.Next() {
		v, err := scanVariable(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
