package replica

import (
	"context"
	"database/sql"

	"github.com/glenv/glenv/internal/store"
)

// Placement sends an environment's runtime jobs to the replica that runs
// it (jobs.Placement).
type Placement struct{ R *Registry }

// Queue is the queue of environment id's owner. An environment with no
// owner, or whose owner is not live, is given one as its deploy is queued
// (issue 16: "owner column, set when a replica deploys it"): the live
// replica running the fewest environments.
func (p Placement) Queue(ctx context.Context, tx *sql.Tx, id int64) (string, error) {
	owner, err := store.EnvironmentOwner(ctx, tx, id)
	if err != nil {
		return "", err
	}
	if owner != 0 {
		if _, ok := p.R.Live(owner); ok {
			return QueueName(owner), nil
		}
	}
	counts, err := store.OwnedCounts(ctx, tx)
	if err != nil {
		return "", err
	}
	if owner = Pick(counts, p.R.LiveIDs()); owner == 0 {
		owner = p.R.ID()
	}
	if err := store.SetEnvironmentOwner(ctx, tx, id, owner); err != nil {
		return "", err
	}
	return QueueName(owner), nil
}

// Claim reports whether this replica starts environment id again at start.
func (p Placement) Claim(ctx context.Context, id int64) (bool, error) {
	return store.ClaimEnvironment(ctx, p.R.st.DB, id, p.R.ID())
}
