package gitlabtest

import (
	"net/http"

	"github.com/glenv/glenv/internal/gitlabapi"
)

// route is what runs for one Grape endpoint: the token scopes it accepts
// and its handler.
type route struct {
	scope  scopeRule
	handle func(*request)
}

// routeTable lists the endpoints in Grape's declaration order: the first
// route whose path and method match wins, so literal segments
// (review_apps) come before the parameter they would otherwise match.
func (s *Server) routeTable() gitlabapi.Router[route] {
	const (
		get, post, put, del = http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete
	)
	var rt gitlabapi.Router[route]
	endpoint := func(method, pattern string, scope scopeRule, h func(*request)) {
		rt.Handle(method, pattern, route{scope: scope, handle: h})
	}
	endpoint(get, "user", scopeUser, s.getCurrentUser)
	endpoint(get, "personal_access_tokens/self", scopeAny, s.getTokenSelf)

	endpoint(get, "projects", scopeAPI, s.listProjects)
	endpoint(get, "projects/:id", scopeAPI, s.getProject)
	endpoint(get, "projects/:id/members/all/:user_id", scopeAPI, s.getMemberAll)

	endpoint(get, "projects/:id/hooks", scopeAPI, s.listHooks)
	endpoint(post, "projects/:id/hooks", scopeAPI, s.createHook)
	endpoint(get, "projects/:id/hooks/:hook_id", scopeAPI, s.getHook)
	endpoint(put, "projects/:id/hooks/:hook_id", scopeAPI, s.editHook)
	endpoint(del, "projects/:id/hooks/:hook_id", scopeAPI, s.deleteHook)
	endpoint(post, "projects/:id/hooks/:hook_id/test/:trigger", scopeAPI, s.testHook)

	endpoint(get, "projects/:id/repository/branches", scopeAPI, s.listBranches)
	endpoint(get, "projects/:id/repository/branches/:branch", scopeAPI, s.getBranch)
	endpoint(get, "projects/:id/repository/tags", scopeAPI, s.listTags)
	endpoint(get, "projects/:id/repository/commits/:sha", scopeAPI, s.getCommit)
	endpoint(get, "projects/:id/repository/commits/:sha/statuses", scopeAPI, s.listStatuses)
	endpoint(post, "projects/:id/statuses/:sha", scopeAPI, s.createStatus)

	endpoint(get, "projects/:id/merge_requests", scopeAPI, s.listMergeRequests)
	endpoint(get, "projects/:id/merge_requests/:merge_request_iid", scopeAPI, s.getMergeRequest)
	endpoint(get, "projects/:id/merge_requests/:merge_request_iid/notes", scopeAPI, s.listNotes)
	endpoint(post, "projects/:id/merge_requests/:merge_request_iid/notes", scopeAPI, s.createNote)
	endpoint(get, "projects/:id/merge_requests/:merge_request_iid/notes/:note_id", scopeAPI, s.getNote)
	endpoint(put, "projects/:id/merge_requests/:merge_request_iid/notes/:note_id", scopeAPI, s.updateNote)
	endpoint(del, "projects/:id/merge_requests/:merge_request_iid/notes/:note_id", scopeAPI, s.deleteNote)

	endpoint(get, "projects/:id/environments", scopeAPI, s.listEnvironments)
	endpoint(post, "projects/:id/environments", scopeAPI, s.createEnvironment)
	endpoint(post, "projects/:id/environments/stop_stale", scopeAPI, s.stopStaleEnvironments)
	endpoint(del, "projects/:id/environments/review_apps", scopeAPI, s.deleteReviewApps)
	endpoint(get, "projects/:id/environments/:environment_id", scopeAPI, s.getEnvironment)
	endpoint(put, "projects/:id/environments/:environment_id", scopeAPI, s.editEnvironment)
	endpoint(del, "projects/:id/environments/:environment_id", scopeAPI, s.deleteEnvironment)
	endpoint(post, "projects/:id/environments/:environment_id/stop", scopeAPI, s.stopEnvironment)

	endpoint(get, "projects/:id/deployments", scopeAPI, s.listDeployments)
	endpoint(post, "projects/:id/deployments", scopeAPI, s.createDeployment)
	endpoint(get, "projects/:id/deployments/:deployment_id", scopeAPI, s.getDeployment)
	endpoint(put, "projects/:id/deployments/:deployment_id", scopeAPI, s.updateDeployment)
	return rt
}
