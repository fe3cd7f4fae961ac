package envapi

import (
	"net/http"
	"net/url"
	"strings"
)

// route is one Grape endpoint. Segments starting with ':' capture one
// escaped path segment, so an encoded project path (group%2Fapp) stays one
// parameter, as with GitLab's route requirements.
type route struct {
	method string
	segs   []string
	handle func(*request)
}

// routeTable lists the endpoints in Grape's declaration order: the first
// route whose path and method match wins, so the literal stop_stale and
// review_apps come before :environment_id.
func (h *handler) routeTable() []route {
	r := func(method, pattern string, fn func(*request)) route {
		return route{method: method, segs: strings.Split(pattern, "/"), handle: fn}
	}
	return []route{
		r(http.MethodGet, "projects/:id/environments", h.list),
		r(http.MethodPost, "projects/:id/environments", h.create),
		r(http.MethodPost, "projects/:id/environments/stop_stale", h.stopStale),
		r(http.MethodDelete, "projects/:id/environments/review_apps", h.deleteReviewApps),
		r(http.MethodGet, "projects/:id/environments/:environment_id", h.get),
		r(http.MethodPut, "projects/:id/environments/:environment_id", h.edit),
		r(http.MethodDelete, "projects/:id/environments/:environment_id", h.delete),
		r(http.MethodPost, "projects/:id/environments/:environment_id/stop", h.stop),
	}
}

// match finds the route for method and path segments; when the path exists
// only under other methods it returns those, for a 405.
func (h *handler) match(method string, segs []string) (*route, map[string]string, []string) {
	if method == http.MethodHead {
		method = http.MethodGet
	}
	var allowed []string
	for i := range h.routes {
		rt := &h.routes[i]
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
			v, err := url.PathUnescape(segs[i])
			if segs[i] == "" || err != nil {
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
