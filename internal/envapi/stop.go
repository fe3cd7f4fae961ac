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
// glenv never stops on a client's request.
func isDefault(p *project, e store.Environment) bool {
	return lifecycle.IsDefaultBranch(lifecycle.EnvKind(e.Kind), e.Name, p.integration(e).DefaultBranch)
}

// stopDecision is what POST …/stop does to a glenv environment in its
// GitLab state (gitlabapi.Stop). An environment glenv runs has a stop
// action (its runtime is removed by a job), so auto_stop_setting never
// holds its stop back, and it is stopped at once rather than kept in
// stopping: GitLab too shows stopped at once when no stop job must run.
// One created through this API runs nothing, so it is GitLab's environment
// without stop actions: stopped only when its auto_stop_setting is
// "always" (environment.rb #stop_with_actions!); with "with_action" a
// stop without force changes nothing, GitLab's 400 (and stop_stale leaves
// it available).
func stopDecision(e store.Environment, a store.EnvAPIAttrs, force bool) bool {
	always := e.Kind != KindManual || a.AutoStopSetting == store.DefaultAutoStopSetting
	_, ok := gitlabapi.Stop(store.GitLabState(e.State), force, always, false)
	return ok
}

// notStoppable is the reason glenv refuses to stop the default branch's
// environment, in GitLab's forbidden! shape.
func notStoppable(e store.Environment) string {
	return "glenv never stops the default branch's environment (" + e.Name +
		"): it follows the branch for as long as the integration exists"
}

// stopNow stops the environment with id if, when the transaction starts,
// its state still allows it (stopDecision). changed is false when it did
// not; the environment is returned as it then is.
func (h *handler) stopNow(ctx context.Context, id int64, force bool, reason string) (out store.Environment, changed bool, err error) {
	err = h.store.Tx(ctx, func(tx *sql.Tx) error {
		e, err := store.GetEnvironmentByID(ctx, tx, id)
		out = e
		if err != nil {
			return err
		}
		a, err := store.EnvAPIAttrsOf(ctx, tx, e)
		if err != nil || !stopDecision(e, a, force) {
			return err
		}
		if err := h.queue.StopNowForce(ctx, tx, &e, force, reason); err != nil {
			return err
		}
		out, changed = e, true
		return nil
	})
	return out, changed, err
}

// stop is POST …/environments/:environment_id/stop (lib/api/environments.rb:
// 218-228). As in GitLab the environment is found first (404), then the
// caller's right to stop it is checked: glenv refuses the default branch's
// environment with 403 and says why. Environments::StopService then stops
// an available environment, or with force a stopping one; a stop that
// changes nothing (already stopped, or stopping without force) is its error
// "Attempted to stop the environment but failed to change the status",
// answered 400. A forced stop of a stopped environment is that 400 too,
// where GitLab's stop_complete! raises an uncaught InvalidTransition and
// answers 500: glenv does not imitate a server error. The runtime is
// removed afterwards by a job.
func (h *handler) stop(rq *request) {
	g := rq.p.Grape()
	id := g.PathInt(rq.vars, "environment_id")
	force, _ := g.OptBool("force")
	if !g.OK(rq.w) {
		return
	}
	p, ok := h.projectToRead(rq)
	if !ok {
		return
	}
	e, ok := h.environment(rq, p, id)
	if !ok {
		return
	}
	if !h.may(rq, p) {
		gitlabapi.Forbidden(rq.w)
		return
	}
	if isDefault(p, e) {
		gitlabapi.ForbiddenReason(rq.w, notStoppable(e))
		return
	}
	e, changed, err := h.stopNow(rq.r.Context(), e.ID, force, "stopped through the GitLab-compatible API")
	switch {
	case errors.Is(err, store.ErrNotFound):
		environmentNotFound(rq.w)
		return
	case err != nil:
		h.fail(rq, "stop environment", err)
		return
	case !changed:
		gitlabapi.BadRequest(rq.w, gitlabapi.StopFailed)
		return
	}
	h.log.Info("environment stopped", "integration", e.IntegrationName, "environment", e.Name, "via", "api/v4")
	a, ok := h.attrs(rq, e)
	if !ok {
		return
	}
	gitlabapi.WriteJSON(rq.w, http.StatusOK, h.entity(p, e, a))
}

// delete is DELETE …/environments/:environment_id (lib/api/environments.rb:
// 193-199): 403 unless the environment is stopped (EnvironmentPolicy:
// ~stopped prevents destroy_environment; a stopped environment may be
// deleted, the default branch's included), 412 when If-Unmodified-Since is
// older than its last change (destroy_conditionally!, lib/api/helpers.rb:
// 35-50), else 204. A tombstone stays so the name can be used again and
// late webhooks stay ordered.
func (h *handler) delete(rq *request) {
	id, ok := rq.pathInt("environment_id")
	if !ok {
		return
	}
	p, ok := h.projectToRead(rq)
	if !ok {
		return
	}
	e, ok := h.environment(rq, p, id)
	if !ok {
		return
	}
	if store.GitLabState(e.State) != gitlabapi.StateStopped || !h.may(rq, p) {
		gitlabapi.Forbidden(rq.w)
		return
	}
	ctx := rq.r.Context()
	var refused, modified bool
	err := h.store.Tx(ctx, func(tx *sql.Tx) error {
		cur, err := store.GetEnvironmentByID(ctx, tx, e.ID)
		if err != nil {
			return err
		}
		if refused = store.GitLabState(cur.State) != gitlabapi.StateStopped; refused {
			return nil
		}
		if modified = gitlabapi.ModifiedSince(rq.r.Header, cur.UpdatedAt); modified {
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
	case modified:
		gitlabapi.PreconditionFailed(rq.w)
	default:
		h.log.Info("environment deleted", "integration", e.IntegrationName, "environment", e.Name, "via", "api/v4")
		gitlabapi.NoContent(rq.w)
	}
}

// stopStale is POST …/environments/stop_stale: it stops every available
// environment untouched and undeployed since `before`, except the default
// branch's (GitLab spares protected environments). GitLab does this in a
// worker; glenv does it before answering. Only Maintainers may
// (lib/api/environments.rb: authorize! :stop_environment, user_project;
// spec "a developer rejects the request": 403).
func (h *handler) stopStale(rq *request) {
	g := rq.p.Grape()
	before := gitlabapi.ReadStaleBefore(g)
	if !g.OK(rq.w) {
		return
	}
	p, ok := h.projectFor(rq, h.auth.V4AllowMaintainer)
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
		if _, _, err := h.stopNow(ctx, e.ID, false, reason); err != nil && !errors.Is(err, store.ErrNotFound) {
			h.fail(rq, "stop stale environment", err)
			return
		}
	}
	gitlabapi.Message(rq.w, http.StatusOK, gitlabapi.StaleStopped)
}
