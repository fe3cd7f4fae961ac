package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrStale means a row changed between a caller's read and its write: the
// write was not made. It is a conflict (HTTP 409); running again reads the
// new row.
var ErrStale = errors.New("changed by another request meanwhile, nothing was written; run it again")

// UpdateIntegrationIfUnchanged is UpdateIntegration for a row read at seen
// (its UpdatedAt): a caller that talked to GitLab between its read and its
// write must not revert what another request wrote meanwhile.
func UpdateIntegrationIfUnchanged(ctx context.Context, q Querier, in *Integration, seen time.Time) error {
	now := Now()
	if !now.After(seen) {
		now = seen.Add(time.Microsecond) // every write moves updated_at, even within one microsecond
	}
	res, err := q.ExecContext(ctx, `UPDATE integrations SET base_url=$1, user_facing_url=$2, gitlab_project=$3,
		project_id=$4, project_path=$5, default_branch=$6, token_enc=$7, webhook_secret_enc=$8, space=$9, labels=$10,
		description=$11, fetch_branches=$12, prune_branches=$13, build_merge_requests=$14,
		build_draft_merge_requests=$15, merge_requests_clone_parent_data=$16, build_tags=$17, build_forks=$18,
		hook_id=$19, token_expires_at=$20, updated_at=$21, pause_after_seconds=$24, environment_access=$25,
		environment_max_memory=$26, environment_max_processes=$27, environment_max_millicpu=$28,
		environment_max_disk=$29, services_database_connection_limit=$30, prebuild_branches=$31 WHERE id=$22 AND updated_at=$23`,
		in.BaseURL, in.UserFacingURL, in.GitLabProject, in.ProjectID, in.ProjectPath, in.DefaultBranch,
		in.TokenSealed, in.WebhookSecretSealed, in.Space, labelsJSON(in.Labels), in.Description, in.FetchBranches,
		in.PruneBranches, in.BuildMergeRequests, in.BuildDraftMergeRequests, in.MergeRequestsCloneParentData,
		in.BuildTags, in.BuildForks, in.HookID, in.TokenExpiresAt, micros(now), in.ID, micros(seen), in.PauseAfter.seconds(),
		accessOrPublic(in.EnvironmentAccess), int64(in.MaxMemory), in.MaxProcesses, in.millicpu(), int64(in.MaxDisk),
		in.DatabaseConnectionLimit, in.PrebuildBranches)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		var one int
		if err := q.QueryRowContext(ctx, `SELECT 1 FROM integrations WHERE id = $1`, in.ID).Scan(&one); err != nil {
			return ErrNotFound
		}
		return fmt.Errorf("integration %s: %w", in.Name, ErrStale)
	}
	in.UpdatedAt = now
	return nil
}

// SetIntegrationHookID records the hook glenv installed, and nothing else:
// validate must not write back the rest of a row it read before calling
// GitLab.
func SetIntegrationHookID(ctx context.Context, q Querier, id, hookID int64) error {
	res, err := q.ExecContext(ctx, `UPDATE integrations SET hook_id = $1, updated_at = $2 WHERE id = $3`, hookID, micros(Now()), id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}
