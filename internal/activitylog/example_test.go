package activitylog_test

import (
	"context"
	"time"

	"github.com/glenv/glenv/internal/activitylog"
	"github.com/glenv/glenv/internal/store"
)

// How a worker writes an activity's log: one Writer per activity, its Line
// as the func(string) the runtime calls per line, closed before the
// activity is marked finished.
func ExampleLogs_Writer() {
	var st *store.Store // the server's store
	logs := activitylog.New(st, activitylog.Options{MaxSize: 8 << 20})
	var activityID int64

	w := logs.Writer(activityID)
	defer w.Close(context.Background()) // idempotent: covers early returns
	deployLog := w.Line                 // e.g. DeployRequest.Log, the delete worker's logf
	deployLog("12:00:00.000 build step 1/2: make\n")

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	_ = w.Close(ctx) // then mark the activity complete / failed
}
