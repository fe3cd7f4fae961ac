package envapi

import (
	"database/sql"
	"net/http"
	"time"

	"github.com/glenv/glenv/internal/gitlabapi"
	"github.com/glenv/glenv/internal/store"
)

// deleteReviewApps is DELETE …/environments/review_apps
// (lib/api/environments.rb:145-177, ScheduleToDeleteReviewAppsService):
// stopped environments in the review folder created before `before`
// (default 30 days ago), oldest first, up to limit (default 100), not
// already scheduled. dry_run defaults to true: nothing changes. Otherwise
// each is scheduled for deletion a week later; it stays listed and
// stopped meanwhile, and the periodic job of cleanup.go deletes it when due
// (unless it was started again). Every stopped environment may be deleted,
// so none is unprocessable; finding none is GitLab's 400. A caller who may
// read the project but not change it gets GitLab's 401 with the service's
// result (gitlabapi.NoPermissionToDestroy).
func (h *handler) deleteReviewApps(rq *request) {
	g := rq.p.Grape()
	params := gitlabapi.ReadReviewApps(g)
	if !g.OK(rq.w) {
		return
	}
	p, ok := h.projectToRead(rq)
	if !ok {
		return
	}
	if !h.may(rq, p) {
		res := gitlabapi.NewReviewAppsResult()
		res.Message = gitlabapi.NoPermissionToDestroy
		gitlabapi.Message(rq.w, http.StatusUnauthorized, res)
		return
	}
	now := time.Now()
	params = params.Defaults(now)
	ctx := rq.r.Context()
	found, err := store.StoppedReviewApps(ctx, h.store.Reader(), p.ids, params.Before, int(params.Limit))
	if err != nil {
		h.fail(rq, "find review apps", err)
		return
	}
	res := gitlabapi.NewReviewAppsResult()
	if len(found) == 0 {
		res.Message = gitlabapi.NoneFound
		gitlabapi.Message(rq.w, http.StatusBadRequest, res)
		return
	}
	for _, e := range found {
		res.Scheduled = append(res.Scheduled, h.basic(e))
	}
	if !params.DryRun {
		at := now.Add(gitlabapi.ScheduledDeletionDelay)
		err := h.store.Tx(ctx, func(tx *sql.Tx) error {
			for _, e := range found {
				if err := store.ScheduleDeletion(ctx, tx, e, at); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			h.fail(rq, "schedule review apps for deletion", err)
			return
		}
		h.log.Info("review apps scheduled for deletion", "integration", p.integrations[0].Name, "count", len(found),
			"at", at.UTC().Format(time.RFC3339), "via", "api/v4")
	}
	gitlabapi.WriteJSON(rq.w, http.StatusOK, res)
}
