package jobs

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/glenv/glenv/internal/lifecycle"
	"github.com/glenv/glenv/internal/store"
)

// refreshDefaultBranch records the project's default branch as GitLab
// reports it now (project.default_branch in push and merge request payloads,
// or the project read by reconcile), so a rename (master → main) does not
// leave environments hanging on a branch that is gone. Only the column and
// what hangs on it change, with targeted UPDATEs, never a whole-row write of
// the integration: branch and tag environments below the old default move
// below the new one, and the two environments swap tiers. in is updated.
func refreshDefaultBranch(ctx context.Context, tx *sql.Tx, in *store.Integration, branch string) (bool, error) {
	if branch == "" || branch == in.DefaultBranch {
		return false, nil
	}
	old := in.DefaultBranch
	changed, err := store.SetDefaultBranch(ctx, tx, in.ID, branch)
	if err != nil || !changed {
		return false, err
	}
	in.DefaultBranch = branch
	now := store.Now().UnixMicro()
	stmts := []struct {
		query string
		args  []any
	}{
		{`UPDATE environments SET parent = $1, updated_at = $2 WHERE integration_name = $3 AND deleted_at = 0
			AND kind IN ($4, $5) AND parent = $6 AND name <> $1`,
			[]any{branch, now, in.Name, string(lifecycle.KindBranch), string(lifecycle.KindTag), old}},
		{`UPDATE environments SET parent = '', tier = $1, updated_at = $2 WHERE integration_name = $3 AND kind = $4 AND name = $5`,
			[]any{lifecycle.Tier(lifecycle.KindBranch, branch, branch), now, in.Name, string(lifecycle.KindBranch), branch}},
		{`UPDATE environments SET parent = $1, tier = $2, updated_at = $3 WHERE integration_name = $4 AND kind = $5 AND name = $6`,
			[]any{branch, lifecycle.Tier(lifecycle.KindBranch, old, branch), now, in.Name, string(lifecycle.KindBranch), old}},
	}
	if old == "" {
		stmts = stmts[1:2] // nothing hung on an unknown default branch
	}
	for _, s := range stmts {
		if _, err := tx.ExecContext(ctx, s.query, s.args...); err != nil {
			return false, fmt.Errorf("move environments to the new default branch %s: %w", branch, err)
		}
	}
	return true, nil
}
