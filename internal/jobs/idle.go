package jobs

import (
	"context"
	"time"

	"github.com/glenv/glenv/internal/lifecycle"
)

// PauseIdle pauses an active environment that served no request for
// idleFor (the idle job's decision, issue 17) through the state machine;
// it reports whether a pause started. An environment that changed
// meanwhile (no longer active) is left as it is.
func (q *Environments) PauseIdle(ctx context.Context, id int64, idleFor time.Duration) (bool, error) {
	_, o, err := q.Trigger(ctx, id, lifecycle.Input{Trigger: lifecycle.TriggerPause},
		record{Description: "paused after " + idleFor.Round(time.Second).String() + " without a request (--pause-after); the next visit wakes it"})
	if err != nil {
		return false, err
	}
	return o.Starts != "", nil
}
