package gitlabtest

import (
	"net/http"
	"slices"

	"github.com/glenv/glenv/internal/gitlabapi"
)

// listProjects is GET /projects as the dashboard's Add integration form
// asks it: the caller's projects (membership=true), at least
// min_access_level (GitLab's lib/api/projects.rb and ProjectsFinder:
// min_access_level lists the user's authorized projects at that level or
// above, and implies membership), newest first. Other filters are not
// modelled: without membership or min_access_level the double lists the
// projects the caller is a member of all the same.
func (s *Server) listProjects(rq *request) {
	g := rq.p.Grape()
	_, _ = g.OptBool("membership")
	minLevel, _ := g.OptInt("min_access_level")
	orderBy, hasOrder := g.OptString("order_by")
	g.Values("order_by", orderBy, hasOrder, "id", "name", "path", "created_at", "updated_at", "last_activity_at", "similarity", "star_count")
	if !g.OK(rq.w) {
		return
	}
	var ps []*project
	for _, p := range s.projects {
		level, member := p.Members[rq.user.ID]
		if member && int64(level) >= minLevel {
			ps = append(ps, p)
		}
	}
	slices.SortFunc(ps, func(a, b *project) int { return int(b.ID - a.ID) })
	page, ok := paginate(rq, ps)
	if !ok {
		return
	}
	out := make([]basicProjectJSON, 0, len(page))
	for _, p := range page {
		out = append(out, s.basicProject(p))
	}
	gitlabapi.WriteJSON(rq.w, http.StatusOK, out)
}
