package envapi

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"time"

	"github.com/glenv/glenv/internal/lifecycle"
	"github.com/glenv/glenv/internal/store"
)

const (
	day  = 24 * time.Hour
	week = 7 * day
	// reviewFolderLimit is the largest limit review_apps accepts (values: 1..1000).
	reviewFolderLimit = 1000
)

// isDefault reports whether e is the default branch's environment, which
// glenv never stops or deletes on a client's request; GitLab treats an
// environment the caller may not stop the same way (see stop).
func isDefault(p *project, e store.Environment) bool {
	return e.Kind == string(lifecycle.KindBranch) && e.Name == p.integration(e).DefaultBranch
}

func available(e store.Environment) bool { return store.GitLabState(e.State) == "available" }

// stopNow stops the environment with id if it is still available when the
// transaction starts, and returns it as it then is.
func (h *handler) stopNow(ctx context.Context, id int64, reason string) (store.Environment, error) {
	var out store.Environment
	err := h.store.Tx(ctx, func(tx *sql.Tx) error {
		e, err := store.GetEnvironmentByID(ctx, tx, id)
		if err != nil || !available(e) {
			out = e
			return err
		}
		if err := h.queue.StopNow(ctx, tx, &e, reason); err != nil {
			return err
		}
		out = e
		return nil
	})
	return out, err
}

// stop is POST …/environments/:environment_id/stop. glenv environments have
// no on_stop jobs, so, as in GitLab, an available one is stopped at once
// (its runtime is removed by a job). `force` changes nothing: in glenv a
// "stopping" environment is already being stopped or deleted, and GitLab's
// forced stop_complete! would cancel that. The default branch's environment
// is answered unchanged with 200, as GitLab answers a stop the caller is not
// allowed (Environments::StopService's error is not shown by the API).
func (h *handler) stop(rq *request) {
	id, ok := rq.pathInt("environment_id")
	if !ok {
		return
	}
	g := rq.grape()
	g.optBool("force")
	if !rq.grapeOK(g) {
		return
	}
	p, ok := h.project(rq)
	if !ok {
		return
	}
	e, ok := h.environment(rq, p, id)
	if !ok {
		return
	}
	if available(e) && !isDefault(p, e) {
		var err error
		if e, err = h.stopNow(rq.r.Context(), e.ID, "stopped through the GitLab-compatible API"); errors.Is(err, store.ErrNotFound) {
			environmentNotFound(rq.w)
			return
		} else if err != nil {
			h.fail(rq, "stop environment", err)
			return
		}
		h.log.Info("environment stopped", "integration", e.IntegrationName, "environment", e.Name, "via", "api/v4")
	}
	writeJSON(rq.w, http.StatusOK, h.entity(p, e))
}

// delete is DELETE …/environments/:environment_id: 204 once stopped, else
// 403 (EnvironmentPolicy: ~stopped prevents destroy_environment). A
// tombstone stays so the name can be used again and late webhooks stay
// ordered.
func (h *handler) delete(rq *request) {
	id, ok := rq.pathInt("environment_id")
	if !ok {
		return
	}
	p, ok := h.project(rq)
	if !ok {
		return
	}
	e, ok := h.environment(rq, p, id)
	if !ok {
		return
	}
	if store.GitLabState(e.State) != "stopped" || isDefault(p, e) {
		forbidden(rq.w)
		return
	}
	ctx := rq.r.Context()
	var refused bool
	err := h.store.Tx(ctx, func(tx *sql.Tx) error {
		cur, err := store.GetEnvironmentByID(ctx, tx, e.ID)
		if err != nil {
			return err
		}
		if refused = store.GitLabState(cur.State) != "stopped"; refused {
			return nil
		}
		return h.queue.DeleteNow(ctx, tx, &cur, "deleted through the GitLab-compatible API")
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		environmentNotFound(rq.w)
	case err != nil:
		h.fail(rq, "delete environment", err)
	case refused:
		forbidden(rq.w)
	default:
		h.log.Info("environment deleted", "integration", e.IntegrationName, "environment", e.Name, "via", "api/v4")
		rq.w.WriteHeader(http.StatusNoContent)
	}
}

// stopStale is POST …/environments/stop_stale: it stops every available
// environment untouched and undeployed since `before`, except the default
// branch's (GitLab spares protected environments). GitLab does this in a
// worker; glenv does it before answering.
func (h *handler) stopStale(rq *request) {
	g := rq.grape()
	if _, sent := rq.p.lookup("before"); !sent {
		g.fail("before", "is missing")
	}
	before, _ := g.optTime("before")
	if !rq.grapeOK(g) {
		return
	}
	p, ok := h.project(rq)
	if !ok {
		return
	}
	now := time.Now()
	if before.Before(now.AddDate(-10, 0, 0)) || before.After(now.Add(-week)) {
		badRequest(rq.w, "Invalid Date")
		return
	}
	ctx := rq.r.Context()
	stale, err := store.StaleEnvironments(ctx, h.store.Reader(), p.ids, before)
	if err != nil {
		h.fail(rq, "find stale environments", err)
		return
	}
	for _, e := range stale {
		if isDefault(p, e) {
			continue
		}
		if _, err := h.stopNow(ctx, e.ID, "stale since "+apiTime(before)+": stopped through the GitLab-compatible API"); err != nil &&
			!errors.Is(err, store.ErrNotFound) {
			h.fail(rq, "stop stale environment", err)
			return
		}
	}
	message(rq.w, http.StatusOK, "Successfully requested stop for all stale environments")
}

// deleteReviewApps is DELETE …/environments/review_apps
// (ScheduleToDeleteReviewAppsService): stopped environments in the review
// folder created before `before` (default 30 days ago), oldest first, up to
// limit (default 100). dry_run defaults to true: nothing is deleted. GitLab
// deletes the scheduled ones a week later; glenv deletes them at once. The
// default branch's environment is unprocessable, which fails the request as
// a protected environment does in GitLab.
func (h *handler) deleteReviewApps(rq *request) {
	g := rq.grape()
	before, hasBefore := g.optTime("before")
	limit, hasLimit := g.optInt("limit")
	if hasLimit && (limit < 1 || limit > reviewFolderLimit) {
		g.fail("limit", "does not have a valid value")
	}
	dryRun, hasDryRun := g.optBool("dry_run")
	if !rq.grapeOK(g) {
		return
	}
	p, ok := h.project(rq)
	if !ok {
		return
	}
	if !hasBefore {
		before = time.Now().Add(-30 * day)
	}
	if !hasLimit {
		limit = 100
	}
	if !hasDryRun {
		dryRun = true
	}
	ctx := rq.r.Context()
	found, err := store.StoppedReviewApps(ctx, h.store.Reader(), p.ids, before, int(limit))
	if err != nil {
		h.fail(rq, "find review apps", err)
		return
	}
	type result struct {
		Scheduled     []envBasicJSON `json:"scheduled_entries"`
		Unprocessable []envBasicJSON `json:"unprocessable_entries"`
		Message       string         `json:"message,omitempty"`
	}
	res := result{Scheduled: []envBasicJSON{}, Unprocessable: []envBasicJSON{}}
	var deletable []store.Environment
	for _, e := range found {
		if isDefault(p, e) {
			res.Unprocessable = append(res.Unprocessable, h.basic(e))
			continue
		}
		deletable = append(deletable, e)
	}
	if len(deletable) == 0 || len(res.Unprocessable) > 0 {
		res.Message = "Failed to authorize deletions for some or all of the environments. " +
			"Ask someone with more permissions to delete the environments."
		message(rq.w, http.StatusBadRequest, res)
		return
	}
	for _, e := range deletable {
		res.Scheduled = append(res.Scheduled, h.basic(e))
		if dryRun {
			continue
		}
		if err := h.deleteStopped(ctx, e.ID); err != nil {
			h.fail(rq, "delete review app", err)
			return
		}
	}
	writeJSON(rq.w, http.StatusOK, res)
}

// deleteStopped deletes the environment with id if it is still stopped.
func (h *handler) deleteStopped(ctx context.Context, id int64) error {
	return h.store.Tx(ctx, func(tx *sql.Tx) error {
		e, err := store.GetEnvironmentByID(ctx, tx, id)
		if errors.Is(err, store.ErrNotFound) || (err == nil && store.GitLabState(e.State) != "stopped") {
			return nil
		}
		if err != nil {
			return err
		}
		return h.queue.DeleteNow(ctx, tx, &e, "review app deleted through the GitLab-compatible API")
	})
}
