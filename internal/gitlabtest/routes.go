package gitlabtest

import (
	"net/http"
	"net/url"
	"strings"
)

// route is one Grape endpoint. Segments starting with ':' capture one
// escaped path segment, so an encoded project path (group%2Fapp) or branch
// name stays a single parameter, as with GitLab's route requirements.
type route struct {
	method string
	segs   []string
	scope  scopeRule
	handle func(*request)
}

func endpoint(method, pattern string, scope scopeRule, h func(*request)) route {
	return route{method: method, segs: strings.Split(pattern, "/"), scope: scope, handle: h}
}

// routeTable lists the endpoints in Grape's declaration order: the first
// route whose path and method match wins, so literal segments
// (review_apps) come before the parameter they would otherwise match.
func (s *Server) routeTable() []route {
	const (
		get, post, put, del = http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete
	)
	return []route{
		endpoint(get, "user", scopeUser, s.getCurrentUser),
		endpoint(get, "personal_access_tokens/self", scopeAny, s.getTokenSelf),

		endpoint(get, "projects/:id", scopeAPI, s.getProject),
		endpoint(get, "projects/:id/members/all/:user_id", scopeAPI, s.getMemberAll),

		endpoint(get, "projects/:id/hooks", scopeAPI, s.listHooks),
		endpoint(post, "projects/:id/hooks", scopeAPI, s.createHook),
		endpoint(get, "projects/:id/hooks/:hook_id", scopeAPI, s.getHook),
		endpoint(put, "projects/:id/hooks/:hook_id", scopeAPI, s.editHook),
		endpoint(del, "projects/:id/hooks/:hook_id", scopeAPI, s.deleteHook),
		endpoint(post, "projects/:id/hooks/:hook_id/test/:trigger", scopeAPI, s.testHook),

		endpoint(get, "projects/:id/repository/branches", scopeAPI, s.listBranches),
		endpoint(get, "projects/:id/repository/branches/:branch", scopeAPI, s.getBranch),
		endpoint(get, "projects/:id/repository/tags", scopeAPI, s.listTags),
		endpoint(get, "projects/:id/repository/commits/:sha", scopeAPI, s.getCommit),
		endpoint(get, "projects/:id/repository/commits/:sha/statuses", scopeAPI, s.listStatuses),
		endpoint(post, "projects/:id/statuses/:sha", scopeAPI, s.createStatus),

		endpoint(get, "projects/:id/merge_requests", scopeAPI, s.listMergeRequests),
		endpoint(get, "projects/:id/merge_requests/:merge_request_iid", scopeAPI, s.getMergeRequest),
		endpoint(get, "projects/:id/merge_requests/:merge_request_iid/notes", scopeAPI, s.listNotes),
		endpoint(post, "projects/:id/merge_requests/:merge_request_iid/notes", scopeAPI, s.createNote),
		endpoint(get, "projects/:id/merge_requests/:merge_request_iid/notes/:note_id", scopeAPI, s.getNote),
		endpoint(put, "projects/:id/merge_requests/:merge_request_iid/notes/:note_id", scopeAPI, s.updateNote),
		endpoint(del, "projects/:id/merge_requests/:merge_request_iid/notes/:note_id", scopeAPI, s.deleteNote),

		endpoint(get, "projects/:id/environments", scopeAPI, s.listEnvironments),
		endpoint(post, "projects/:id/environments", scopeAPI, s.createEnvironment),
		endpoint(post, "projects/:id/environments/stop_stale", scopeAPI, s.stopStaleEnvironments),
		endpoint(del, "projects/:id/environments/review_apps", scopeAPI, s.deleteReviewApps),
		endpoint(get, "projects/:id/environments/:environment_id", scopeAPI, s.getEnvironment),
		endpoint(put, "projects/:id/environments/:environment_id", scopeAPI, s.editEnvironment),
		endpoint(del, "projects/:id/environments/:environment_id", scopeAPI, s.deleteEnvironment),
		endpoint(post, "projects/:id/environments/:environment_id/stop", scopeAPI, s.stopEnvironment),

		endpoint(get, "projects/:id/deployments", scopeAPI, s.listDeployments),
		endpoint(post, "projects/:id/deployments", scopeAPI, s.createDeployment),
		endpoint(get, "projects/:id/deployments/:deployment_id", scopeAPI, s.getDeployment),
		endpoint(put, "projects/:id/deployments/:deployment_id", scopeAPI, s.updateDeployment),
	}
}

// match finds the route for method and path segments. When the path exists
// only under other methods it returns those, for a 405.
func (s *Server) match(method string, segs []string) (*route, map[string]string, []string) {
	if method == http.MethodHead {
		method = http.MethodGet
	}
	var allowed []string
	for i := range s.routes {
		rt := &s.routes[i]
		vars, ok := matchSegs(rt.segs, segs)
		if !ok {
			continue
		}
		if rt.method == method {
			return rt, vars, nil
		}
		allowed = append(allowed, rt.method)
	}
	return nil, nil, allowed
}

func matchSegs(pattern, segs []string) (map[string]string, bool) {
	if len(pattern) != len(segs) {
		return nil, false
	}
	vars := map[string]string{}
	for i, p := range pattern {
		if name, ok := strings.CutPrefix(p, ":"); ok {
			if segs[i] == "" {
				return nil, false
			}
			v, err := url.PathUnescape(segs[i])
			if err != nil {
				return nil, false
			}
			vars[name] = v
			continue
		}
		if p != segs[i] {
			return nil, false
		}
	}
	return vars, true
}
