package gitlabtest

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/glenv/glenv/internal/gitlabapi"
)

const (
	day  = 24 * time.Hour
	week = 7 * day
)

// stopStaleEnvironments is POST …/environments/stop_stale: it stops every
// available environment updated before `before` that has no deployment
// updated since. GitLab does this in a worker; the double does it at once.
// Protected environments (EE) are not modelled, so none is spared.
func (s *Server) stopStaleEnvironments(rq *request) {
	g := rq.p.Grape()
	before := gitlabapi.ReadStaleBefore(g)
	if !g.OK(rq.w) {
		return
	}
	// authorize! :stop_environment, user_project: Maintainers only (spec
	// "a developer rejects the request": 403).
	p, ok := rq.project(accessMaintainer)
	if !ok {
		return
	}
	if !gitlabapi.CheckStaleBefore(rq.w, before, s.now()) {
		return
	}
	for _, e := range p.envs {
		if e.State != "available" || !e.UpdatedAt.Before(before) || p.deployedSince(e.ID, before) {
			continue
		}
		s.stop(e, false)
	}
	gitlabapi.Message(rq.w, http.StatusOK, gitlabapi.StaleStopped)
}

func (p *project) deployedSince(envID int64, t time.Time) bool {
	for _, d := range p.deployments {
		if d.EnvironmentID == envID && !d.UpdatedAt.Before(t) {
			return true
		}
	}
	return false
}

// inReviewFolder is environment_type == "review": a name of two or more
// '/'-separated segments whose first is "review".
func inReviewFolder(name string) bool {
	first, _, found := strings.Cut(name, "/")
	return found && first == "review"
}

// deleteReviewApps is DELETE …/environments/review_apps
// (ScheduleToDeleteReviewAppsService): stopped environments in the review
// folder created before `before`, oldest first, up to limit, not already
// scheduled. Unless dry_run, they are scheduled for deletion a week later
// (auto_delete_at); they stay listed, stopped, until then. As in GitLab,
// finding nothing to delete is a 400 (gitlabapi.NoneFound).
func (s *Server) deleteReviewApps(rq *request) {
	g := rq.p.Grape()
	params := gitlabapi.ReadReviewApps(g)
	if !g.OK(rq.w) {
		return
	}
	p, ok := rq.project(accessReporter)
	if !ok {
		return
	}
	now := s.now()
	params = params.Defaults(now)
	res := gitlabapi.NewReviewAppsResult()
	if s.accessLevel(p, rq.user) < accessDeveloper {
		res.Message = gitlabapi.NoPermissionToDestroy
		gitlabapi.Message(rq.w, http.StatusUnauthorized, res)
		return
	}

	var found []*Environment
	for _, e := range p.envs {
		if e.AutoDeleteAt == nil && e.State == "stopped" && inReviewFolder(e.Name) && e.CreatedAt.Before(params.Before) {
			found = append(found, e)
		}
	}
	slices.SortStableFunc(found, func(a, b *Environment) int { return a.CreatedAt.Compare(b.CreatedAt) })
	found = found[:min(int64(len(found)), params.Limit)]
	if len(found) == 0 {
		res.Message = gitlabapi.NoneFound
		gitlabapi.Message(rq.w, http.StatusBadRequest, res)
		return
	}
	at := now.Add(gitlabapi.ScheduledDeletionDelay)
	for _, e := range found {
		res.Scheduled = append(res.Scheduled, envBasic(e))
		if !params.DryRun {
			e.AutoDeleteAt = &at
		}
	}
	gitlabapi.WriteJSON(rq.w, http.StatusOK, res)
}

// deleteDeploymentsOf drops the deployments of a deleted environment.
func (p *project) deleteDeploymentsOf(envID int64) {
	p.deployments = slices.DeleteFunc(p.deployments, func(d *Deployment) bool { return d.EnvironmentID == envID })
}
