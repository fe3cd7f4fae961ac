package runtime

import (
	"context"
	"errors"

	"github.com/glenv/glenv/internal/store"
)

// ErrRollingOut is what Deploy returns when it applied the environment and
// the platform rolls it out on its own (Kubernetes): the deploy's end comes
// later, through the RolloutEnd handler the runtime was given, not by
// holding a worker while the cluster works.
var ErrRollingOut = errors.New("applied; the rollout's end is reported when the platform finishes it")

// RolloutEnd is a rollout that finished: Failure empty means the
// environment serves SHA.
type RolloutEnd struct {
	EnvironmentID int64
	ActivityID    int64
	SHA           string
	Failure       string
}

// Rollouts is a runtime whose deploys finish after Deploy returns
// ErrRollingOut (internal/kube).
type Rollouts interface {
	// WatchRollouts starts reporting each rollout's end to ended, from
	// then on and for rollouts started before (a restarted glenv), and
	// makes Deploy return ErrRollingOut instead of waiting. ended must be
	// safe to call more than once for the same rollout; an error makes
	// the runtime report it again later.
	WatchRollouts(ended func(context.Context, RolloutEnd) error)
	// RolloutState reads where env's current rollout stands now: done,
	// failed (why), or neither. The deploy's deadline asks it last.
	RolloutState(ctx context.Context, env store.Environment) (done bool, failure string, err error)
}
