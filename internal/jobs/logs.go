package jobs

import (
	"context"

	"github.com/glenv/glenv/internal/store"
)

// activityLog returns the per-line writer a runtime logs an activity's
// output with, and the close that must run before the activity is marked
// finished. With Deps.Logs (glenv serve) lines are batched into chunks off
// the caller's path, so a deploy is never slowed by its own logging;
// without it (tests that build the queue bare) each line is appended at
// once.
func (q *Environments) activityLog(ctx context.Context, activityID int64) (func(string), func()) {
	if q.deps.Logs == nil {
		return func(line string) {
			lctx, cancel := bookkeeping(ctx)
			defer cancel()
			_ = store.AppendActivityLog(lctx, q.store.DB, activityID, line)
		}, func() {}
	}
	w := q.deps.Logs.Writer(activityID)
	return w.Line, func() {
		cctx, cancel := bookkeeping(ctx)
		defer cancel()
		_ = w.Close(cctx)
	}
}
