package gitlabtest

import (
	"net/http"
	"slices"
	"strings"
	"time"
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
	g := rq.grape()
	if !rq.p.has("before") {
		g.fail("before", "is missing")
	}
	before, _ := g.optTime("before")
	if !g.ok(rq) {
		return
	}
	p, ok := rq.project(accessDeveloper)
	if !ok {
		return
	}
	now := s.now()
	if before.Before(now.AddDate(-10, 0, 0)) || before.After(now.Add(-week)) {
		rq.badRequest("Invalid Date")
		return
	}
	for _, e := range p.envs {
		if e.State != "available" || !e.UpdatedAt.Before(before) || p.deployedSince(e.ID, before) {
			continue
		}
		s.stop(e)
	}
	rq.message(http.StatusOK, "Successfully requested stop for all stale environments")
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
// scheduled. Unless dry_run, they are scheduled for deletion a week later.
// As in GitLab, finding nothing to delete is a 400.
func (s *Server) deleteReviewApps(rq *request) {
	g := rq.grape()
	before, hasBefore := g.optTime("before")
	limit, hasLimit := g.optInt("limit")
	if hasLimit && (limit < 1 || limit > 1000) {
		g.fail("limit", "does not have a valid value")
	}
	dryRun, hasDryRun := g.optBool("dry_run")
	if !g.ok(rq) {
		return
	}
	p, ok := rq.project(accessRead)
	if !ok {
		return
	}
	now := s.now()
	if !hasBefore {
		before = now.Add(-30 * day)
	}
	if !hasLimit {
		limit = 100
	}
	if !hasDryRun {
		dryRun = true
	}
	type result struct {
		Scheduled     []envBasicJSON `json:"scheduled_entries"`
		Unprocessable []envBasicJSON `json:"unprocessable_entries"`
		Message       string         `json:"message,omitempty"`
	}
	res := result{Scheduled: []envBasicJSON{}, Unprocessable: []envBasicJSON{}}
	if s.accessLevel(p, rq.user) < accessDeveloper {
		res.Message = "You do not have permission to destroy environments in this project"
		rq.message(http.StatusUnauthorized, res)
		return
	}

	var found []*Environment
	for _, e := range p.envs {
		if e.AutoDeleteAt == nil && e.State == "stopped" && inReviewFolder(e.Name) && e.CreatedAt.Before(before) {
			found = append(found, e)
		}
	}
	slices.SortStableFunc(found, func(a, b *Environment) int { return a.CreatedAt.Compare(b.CreatedAt) })
	found = found[:min(int64(len(found)), limit)]
	if len(found) == 0 {
		res.Message = "Failed to authorize deletions for some or all of the environments. " +
			"Ask someone with more permissions to delete the environments."
		rq.message(http.StatusBadRequest, res)
		return
	}
	at := now.Add(week)
	for _, e := range found {
		res.Scheduled = append(res.Scheduled, envBasic(e))
		if !dryRun {
			e.AutoDeleteAt = &at
		}
	}
	rq.json(http.StatusOK, res)
}

// deleteDeploymentsOf drops the deployments of a deleted environment.
func (p *project) deleteDeploymentsOf(envID int64) {
	p.deployments = slices.DeleteFunc(p.deployments, func(d *Deployment) bool { return d.EnvironmentID == envID })
}
