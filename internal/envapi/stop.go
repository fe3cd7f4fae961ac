package envapi

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"time"

	"github.com/glenv/glenv/internal/gitlabapi"
	"github.com/glenv/glenv/internal/lifecycle"
	"github.com/glenv/glenv/internal/store"
)

// isDefault reports whether e is the default branch's environment, which
// glenv never stops or deletes on a client's request; GitLab treats an
// environment the caller may not stop the same way (see stop).
func isDefault(p *project, e store.Environment) bool {
	return lifecycle.IsDefaultBranch(lifecycle.EnvKind(e.Kind), e.Name, p.integration(e).DefaultBranch)
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
	g := rq.p.Grape()
	g.OptBool("force")
	if !g.OK(rq.w) {
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
	gitlabapi.WriteJSON(rq.w, http.StatusOK, h.entity(p, e))
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
		gitlabapi.Forbidden(rq.w)
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
		gitlabapi.Forbidden(rq.w)
	default:
		h.log.Info("environment deleted", "integration", e.IntegrationName, "environment", e.Name, "via", "api/v4")
		gitlabapi.NoContent(rq.w)
	}
}

// stopStale is POST …/environments/stop_stale: it stops every available
// environment untouched and undeployed since `before`, except the default
// branch's (GitLab spares protected environments). GitLab does this in a
// worker; glenv does it before answering.
func (h *handler) stopStale(rq *request) {
	g := rq.p.Grape()
	before := gitlabapi.ReadStaleBefore(g)
	if !g.OK(rq.w) {
		return
	}
	p, ok := h.project(rq)
	if !ok {
		return
	}
	if !gitlabapi.CheckStaleBefore(rq.w, before, time.Now()) {
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
		reason := "stale since " + gitlabapi.FormatTime(before) + ": stopped through the GitLab-compatible API"
		if _, err := h.stopNow(ctx, e.ID, reason); err != nil &&
			!errors.Is(err, store.ErrNotFound) {
			h.fail(rq, "stop stale environment", err)
			return
		}
	}
	gitlabapi.Message(rq.w, http.StatusOK, gitlabapi.StaleStopped)
}

// deleteReviewApps is DELETE …/environments/review_apps
// (ScheduleToDeleteReviewAppsService): stopped environments in the review
// folder created before `before` (default 30 days ago), oldest first, up to
// limit (default 100). dry_run defaults to true: nothing is deleted. GitLab
// deletes the scheduled ones a week later; glenv deletes them at once. The
// default branch's environment is unprocessable, which fails the request as
// a protected environment does in GitLab.
func (h *handler) deleteReviewApps(rq *request) {
	g := rq.p.Grape()
	params := gitlabapi.ReadReviewApps(g)
	if !g.OK(rq.w) {
		return
	}
	p, ok := h.project(rq)
	if !ok {
		return
	}
	params = params.Defaults(time.Now())
	ctx := rq.r.Context()
	found, err := store.StoppedReviewApps(ctx, h.store.Reader(), p.ids, params.Before, int(params.Limit))
	if err != nil {
		h.fail(rq, "find review apps", err)
		return
	}
	res := gitlabapi.NewReviewAppsResult()
	var deletable []store.Environment
	for _, e := range found {
		if isDefault(p, e) {
			res.Unprocessable = append(res.Unprocessable, h.basic(e))
			continue
		}
		deletable = append(deletable, e)
	}
	if len(deletable) == 0 || len(res.Unprocessable) > 0 {
		res.Message = gitlabapi.NothingToDelete
		gitlabapi.Message(rq.w, http.StatusBadRequest, res)
		return
	}
	for _, e := range deletable {
		res.Scheduled = append(res.Scheduled, h.basic(e))
		if params.DryRun {
			continue
		}
		if err := h.deleteStopped(ctx, e.ID); err != nil {
			h.fail(rq, "delete review app", err)
			return
		}
	}
	gitlabapi.WriteJSON(rq.w, http.StatusOK, res)
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
