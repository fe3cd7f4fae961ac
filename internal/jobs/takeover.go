package jobs

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/glenv/glenv/internal/lifecycle"
	"github.com/glenv/glenv/internal/store"
)

// TakeOver gives the environments of a dead replica to the live ones, in
// turn, inside tx (the transaction that removed the dead replica, so only
// one replica ever takes a dead one over). The jobs still waiting on the
// dead replica's queue are cancelled, since nobody works that queue any
// more, and each environment goes through the owner-lost trigger, which
// deploys again what ran there on its new owner. The shared jobs it was
// working (a batch of deliveries, a feedback sync) are made retryable now
// rather than after --job-rescue-after: they are idempotent, and nobody
// will finish them. It returns how many environments changed owner.
func (q *Environments) TakeOver(ctx context.Context, tx *sql.Tx, dead int64, deadQueue, deadClient string, owners []int64) (int, error) {
	if len(owners) == 0 {
		return 0, fmt.Errorf("take over replica %d: no live replica to take its environments", dead)
	}
	ids, err := store.EnvironmentsOwnedBy(ctx, tx, dead)
	if err != nil {
		return 0, err
	}
	if deadQueue != "" && q.store.Dialect == store.Postgres {
		// River's own columns: a cancelled job is finalized. (SQLite never
		// has a second replica.)
		if _, err := tx.ExecContext(ctx, `UPDATE river_job SET state = 'cancelled', finalized_at = now()
			WHERE queue = $1 AND state IN ('available', 'scheduled', 'running', 'retryable', 'pending')`, deadQueue); err != nil {
			return 0, fmt.Errorf("cancel the jobs of replica %d: %w", dead, err)
		}
	}
	if deadClient != "" && q.store.Dialect == store.Postgres {
		// What River's rescuer does after --job-rescue-after, done now.
		if _, err := tx.ExecContext(ctx, `UPDATE river_job SET state = 'retryable', scheduled_at = now()
			WHERE state = 'running' AND attempted_by[array_length(attempted_by, 1)] = $1`, deadClient); err != nil {
			return 0, fmt.Errorf("retry the jobs replica %d was working: %w", dead, err)
		}
	}
	for i, id := range ids {
		if err := q.lock(ctx, tx, id); err != nil {
			return i, err
		}
		if err := store.SetEnvironmentOwner(ctx, tx, id, owners[i%len(owners)]); err != nil {
			return i, err
		}
		env, err := store.GetEnvironmentOrTombstone(ctx, tx, id)
		if err != nil {
			return i, err
		}
		def, err := defaultBranchOf(ctx, tx, env)
		if err != nil {
			return i, err
		}
		keep := false
		if env.PendingActivityID != 0 {
			act, err := store.GetActivity(ctx, tx, env.PendingActivityID)
			if err == nil {
				keep = act.Kind == store.ActivityStop
			}
		}
		if _, err := q.transition(ctx, tx, &env, def, lifecycle.Input{Trigger: lifecycle.TriggerOwnerLost, Keep: keep},
			record{Description: fmt.Sprintf("replica %d stopped answering: taken over by replica %d", dead, owners[i%len(owners)])}); err != nil {
			return i, fmt.Errorf("take over environment %d: %w", id, err)
		}
	}
	return len(ids), nil
}
