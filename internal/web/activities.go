package web

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"

	"github.com/glenv/glenv/internal/activitylog"
	"github.com/glenv/glenv/internal/auth"
	"github.com/glenv/glenv/internal/store"
)

// finished reports an activity state after which its log grows no more.
func finished(state string) bool {
	switch state {
	case store.ActivityComplete, store.ActivityFailed, store.ActivityCancelled:
		return true
	}
	return false
}

// readActivityLog reads what an activity's log holds now (its first page).
func readActivityLog(q *request, a store.Activity) (string, int64, bool, error) {
	part, err := activitylog.Read(q.ctx(), q.w.Store.Reader(), a.ID, 0)
	if err != nil {
		return "", 0, false, err
	}
	return part.Text, part.Next, finished(a.State), nil
}

type activitiesData struct {
	Rows        []store.Activity
	Integration string
}

// activities lists the newest activities the caller may read.
func (w *Web) activities(rw http.ResponseWriter, q *request) {
	f := store.ActivityFilter{Integration: q.r.URL.Query().Get("integration"), Limit: 100}
	acts, err := store.ListActivities(q.ctx(), w.Store.Reader(), f)
	if err != nil {
		w.internal(rw, q, "list activities", err)
		return
	}
	seen := map[string]bool{}
	acts = slices.DeleteFunc(acts, func(a store.Activity) bool {
		ok, done := seen[a.IntegrationName]
		if !done {
			ok = q.can(auth.ActRead, w.integrationOf(q.ctx(), a.IntegrationName))
			seen[a.IntegrationName] = ok
		}
		return !ok
	})
	w.render(rw, q, http.StatusOK, "activities", "Activity", activitiesData{Rows: acts, Integration: f.Integration})
}

type activityData struct {
	A        store.Activity
	Env      *store.Environment
	EnvPage  string
	Delivery *store.Delivery
	LogText  string
	LogNext  int64
	LogDone  bool
}

// activity is one activity: its result and timings, the delivery that
// caused it, and its log following live while it runs.
func (w *Web) activity(rw http.ResponseWriter, q *request) {
	a, ok := w.readableActivity(rw, q)
	if !ok {
		return
	}
	d := activityData{A: a}
	if a.EnvironmentID != 0 {
		if e, err := store.GetEnvironmentAny(q.ctx(), w.Store.Reader(), a.EnvironmentID); err == nil {
			d.Env, d.EnvPage = &e, envPage(e)
		}
	}
	if a.DeliveryID != 0 {
		if del, err := store.GetDeliveryWithoutBody(q.ctx(), w.Store.Reader(), a.DeliveryID); err == nil {
			d.Delivery = &del
		}
	}
	var err error
	if d.LogText, d.LogNext, d.LogDone, err = readActivityLog(q, a); err != nil {
		w.internal(rw, q, "read the activity log", err)
		return
	}
	w.render(rw, q, http.StatusOK, "activity", fmt.Sprintf("Activity %d", a.ID), d)
}

// readableActivity loads the activity of the path, if the caller may read it.
func (w *Web) readableActivity(rw http.ResponseWriter, q *request) (store.Activity, bool) {
	id, err := strconv.ParseInt(q.r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		w.message(rw, q, http.StatusBadRequest, "Bad request", "id: must be a positive number")
		return store.Activity{}, false
	}
	a, err := store.GetActivity(q.ctx(), w.Store.Reader(), id)
	if err != nil {
		w.notFoundOr(rw, q, fmt.Sprintf("activity %d", id), err)
		return a, false
	}
	in := w.integrationOf(q.ctx(), a.IntegrationName)
	if !q.can(auth.ActRead, in) {
		w.message(rw, q, http.StatusForbidden, "Not allowed",
			fmt.Sprintf("Activity %d needs the read role in space %q (or Reporter on the GitLab project).", id, in.Space))
		return a, false
	}
	return a, true
}

// readFrom reads up to limit bytes of a file from offset; nothing when the
// file does not exist (no app has run yet) or ends before offset.
func readFrom(path string, offset int64, limit int64) []byte {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return nil
	}
	page, _ := io.ReadAll(io.LimitReader(f, limit))
	return page
}

// activityState reads an activity's state (for the log stream's end).
func activityState(ctx context.Context, st *store.Store, id int64) (string, error) {
	a, err := store.GetActivity(ctx, st.Reader(), id)
	return a.State, err
}
