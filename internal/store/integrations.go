package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Integration is a named connection from glenv to one GitLab project.
// Secrets are kept sealed here; callers open them with the secret box.
type Integration struct {
	ID                           int64     `json:"id"`
	Name                         string    `json:"name"`
	Type                         string    `json:"type"`
	BaseURL                      string    `json:"base_url"`
	UserFacingURL                string    `json:"user_facing_url"`
	GitLabProject                string    `json:"gitlab_project"`
	ProjectID                    int64     `json:"project_id"`
	ProjectPath                  string    `json:"project_path"`
	DefaultBranch                string    `json:"default_branch"`
	TokenSealed                  string    `json:"-"`
	WebhookSecretSealed          string    `json:"-"`
	Space                        string    `json:"space"`
	Labels                       []string  `json:"labels"`
	Description                  string    `json:"description"`
	FetchBranches                bool      `json:"fetch_branches"`
	PruneBranches                bool      `json:"prune_branches"`
	BuildMergeRequests           bool      `json:"build_merge_requests"`
	BuildDraftMergeRequests      bool      `json:"build_draft_merge_requests"`
	MergeRequestsCloneParentData bool      `json:"merge_requests_clone_parent_data"`
	BuildTags                    string    `json:"build_tags"`
	BuildForks                   bool      `json:"build_forks"`
	HookID                       int64     `json:"hook_id"`
	TokenExpiresAt               string    `json:"token_expires_at"`
	CreatedAt                    time.Time `json:"created_at"`
	UpdatedAt                    time.Time `json:"updated_at"`
	EnvironmentAccess            string    `json:"environment_access"` // public, signed-in or members (internal/auth)
	// PauseAfter pauses an active environment that served no request for
	// this long (0: never).
	PauseAfter PauseAfter `json:"pause_after"`
	// PrebuildBranches builds the head of inactive branch environments on
	// every push without running it (--prebuild-branches).
	PrebuildBranches bool `json:"prebuild_branches"`
	// Ceilings cap its environments' limits below the server's.
	Ceilings
}

const integrationCols = `id, name, type, base_url, user_facing_url, gitlab_project, project_id, project_path,
	default_branch, token_enc, webhook_secret_enc, space, labels, description, fetch_branches, prune_branches,
	build_merge_requests, build_draft_merge_requests, merge_requests_clone_parent_data, build_tags, build_forks,
	hook_id, token_expires_at, created_at, updated_at, environment_access, pause_after_seconds,
	environment_max_memory, environment_max_processes, environment_max_millicpu, environment_max_disk,
	services_database_connection_limit, prebuild_branches`

func scanIntegration(row interface{ Scan(...any) error }) (Integration, error) {
	var in Integration
	var labels string
	var created, updated, pauseAfter, millicpu int64
	err := row.Scan(&in.ID, &in.Name, &in.Type, &in.BaseURL, &in.UserFacingURL, &in.GitLabProject, &in.ProjectID,
		&in.ProjectPath, &in.DefaultBranch, &in.TokenSealed, &in.WebhookSecretSealed, &in.Space, &labels,
		&in.Description, &in.FetchBranches, &in.PruneBranches, &in.BuildMergeRequests, &in.BuildDraftMergeRequests,
		&in.MergeRequestsCloneParentData, &in.BuildTags, &in.BuildForks, &in.HookID, &in.TokenExpiresAt,
		&created, &updated, &in.EnvironmentAccess, &pauseAfter,
		&in.MaxMemory, &in.MaxProcesses, &millicpu, &in.MaxDisk, &in.DatabaseConnectionLimit, &in.PrebuildBranches)
	in.MaxCPU = float64(millicpu) / 1000
	in.PauseAfter = PauseAfter(time.Duration(pauseAfter) * time.Second)
	if errors.Is(err, sql.ErrNoRows) {
		return in, ErrNotFound
	}
	if err != nil {
		return in, err
	}
	if err := json.Unmarshal([]byte(labels), &in.Labels); err != nil {
		return in, fmt.Errorf("integration %s: labels column: %w", in.Name, err)
	}
	if in.Labels == nil {
		in.Labels = []string{}
	}
	in.CreatedAt, in.UpdatedAt = fromMicros(created), fromMicros(updated)
	return in, nil
}

func labelsJSON(l []string) string {
	if l == nil {
		l = []string{}
	}
	b, _ := json.Marshal(l)
	return string(b)
}

// CreateIntegration inserts in and sets its ID and timestamps. A taken name
// returns ErrConflict.
func CreateIntegration(ctx context.Context, q Querier, in *Integration) error {
	now := Now()
	in.CreatedAt, in.UpdatedAt = now, now
	err := q.QueryRowContext(ctx, `INSERT INTO integrations (name, type, base_url, user_facing_url, gitlab_project,
		project_id, project_path, default_branch, token_enc, webhook_secret_enc, space, labels, description,
		fetch_branches, prune_branches, build_merge_requests, build_draft_merge_requests,
		merge_requests_clone_parent_data, build_tags, build_forks, hook_id, token_expires_at, created_at, updated_at,
		environment_access, pause_after_seconds, environment_max_memory, environment_max_processes,
		environment_max_millicpu, environment_max_disk, services_database_connection_limit, prebuild_branches)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22,$23,$24,$25,$26,
		$27,$28,$29,$30,$31,$32) RETURNING id`,
		in.Name, in.Type, in.BaseURL, in.UserFacingURL, in.GitLabProject, in.ProjectID, in.ProjectPath,
		in.DefaultBranch, in.TokenSealed, in.WebhookSecretSealed, in.Space, labelsJSON(in.Labels), in.Description,
		in.FetchBranches, in.PruneBranches, in.BuildMergeRequests, in.BuildDraftMergeRequests,
		in.MergeRequestsCloneParentData, in.BuildTags, in.BuildForks, in.HookID, in.TokenExpiresAt,
		micros(now), micros(now), accessOrPublic(in.EnvironmentAccess), in.PauseAfter.seconds(),
		int64(in.MaxMemory), in.MaxProcesses, in.millicpu(), int64(in.MaxDisk), in.DatabaseConnectionLimit, in.PrebuildBranches).Scan(&in.ID)
	if isUniqueViolation(err) {
		return fmt.Errorf("integration %q: %w", in.Name, ErrConflict)
	}
	return err
}

// UpdateIntegration writes every mutable field of in (never the name).
func UpdateIntegration(ctx context.Context, q Querier, in *Integration) error {
	in.UpdatedAt = Now()
	res, err := q.ExecContext(ctx, `UPDATE integrations SET base_url=$1, user_facing_url=$2, gitlab_project=$3,
		project_id=$4, project_path=$5, default_branch=$6, token_enc=$7, webhook_secret_enc=$8, space=$9, labels=$10,
		description=$11, fetch_branches=$12, prune_branches=$13, build_merge_requests=$14,
		build_draft_merge_requests=$15, merge_requests_clone_parent_data=$16, build_tags=$17, build_forks=$18,
		hook_id=$19, token_expires_at=$20, updated_at=$21, environment_access=$23, pause_after_seconds=$24,
		environment_max_memory=$25, environment_max_processes=$26, environment_max_millicpu=$27,
		environment_max_disk=$28, services_database_connection_limit=$29, prebuild_branches=$30 WHERE id=$22`,
		in.BaseURL, in.UserFacingURL, in.GitLabProject, in.ProjectID, in.ProjectPath, in.DefaultBranch,
		in.TokenSealed, in.WebhookSecretSealed, in.Space, labelsJSON(in.Labels), in.Description, in.FetchBranches,
		in.PruneBranches, in.BuildMergeRequests, in.BuildDraftMergeRequests, in.MergeRequestsCloneParentData,
		in.BuildTags, in.BuildForks, in.HookID, in.TokenExpiresAt, micros(in.UpdatedAt), in.ID, accessOrPublic(in.EnvironmentAccess),
		in.PauseAfter.seconds(), int64(in.MaxMemory), in.MaxProcesses, in.millicpu(), int64(in.MaxDisk),
		in.DatabaseConnectionLimit, in.PrebuildBranches)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// GetIntegration returns the integration called name.
func GetIntegration(ctx context.Context, q Querier, name string) (Integration, error) {
	return scanIntegration(q.QueryRowContext(ctx, `SELECT `+integrationCols+` FROM integrations WHERE name = $1`, name))
}

// IntegrationsForProject returns the integrations connecting a GitLab project, oldest first.
func IntegrationsForProject(ctx context.Context, q Querier, projectID int64) ([]Integration, error) {
	return listIntegrations(ctx, q, `SELECT `+integrationCols+` FROM integrations WHERE project_id = $1 ORDER BY id`, projectID)
}

// IntegrationsForProjectPath is IntegrationsForProject by "group/project" path.
func IntegrationsForProjectPath(ctx context.Context, q Querier, path string) ([]Integration, error) {
	return listIntegrations(ctx, q, `SELECT `+integrationCols+` FROM integrations WHERE LOWER(project_path) = LOWER($1) ORDER BY id`, path)
}

// ListIntegrations returns every integration by name.
func ListIntegrations(ctx context.Context, q Querier) ([]Integration, error) {
	return listIntegrations(ctx, q, `SELECT `+integrationCols+` FROM integrations ORDER BY name`)
}

func listIntegrations(ctx context.Context, q Querier, query string, args ...any) ([]Integration, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Integration{}
	for rows.Next() {
		in, err := scanIntegration(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, in)
	}
	return out, rows.Err()
}

// DeleteIntegration removes the integration; its environments are detached
// (integration_id set to NULL by the foreign key), not deleted.
func DeleteIntegration(ctx context.Context, q Querier, id int64) error {
	if _, err := q.ExecContext(ctx, `UPDATE environments SET integration_id = NULL WHERE integration_id = $1`, id); err != nil {
		return err
	}
	res, err := q.ExecContext(ctx, `DELETE FROM integrations WHERE id = $1`, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// ReattachEnvironments gives detached environments of the same name and
// project back to a re-created integration.
func ReattachEnvironments(ctx context.Context, q Querier, in Integration) error {
	_, err := q.ExecContext(ctx, `UPDATE environments SET integration_id = $1
		WHERE integration_id IS NULL AND integration_name = $2 AND project_id = $3`, in.ID, in.Name, in.ProjectID)
	return err
}

// SetDefaultBranch records a project's new default branch with a targeted
// UPDATE of that one column, so a concurrent change to the integration (a
// new token, an option) is never overwritten by a stale row. It reports
// whether the stored value changed.
func SetDefaultBranch(ctx context.Context, q Querier, integrationID int64, branch string) (bool, error) {
	res, err := q.ExecContext(ctx, `UPDATE integrations SET default_branch = $1, updated_at = $2
		WHERE id = $3 AND default_branch <> $1`, branch, micros(Now()), integrationID)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// accessOrPublic: an integration that says nothing is public, as before
// private previews existed.
func accessOrPublic(v string) string {
	if v == "" {
		return "public"
	}
	return v
}
