package gitlabapi

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// Prefix is where GitLab's REST v4 API lives.
const Prefix = "/api/v4/"

// Router matches requests to endpoints the way Grape does. Routes are kept
// in declaration order and the first whose path and method match wins, so
// literal segments (stop_stale, review_apps) must be declared before the
// parameter they would otherwise match. A segment starting with ':'
// captures one escaped path segment, so an encoded project path
// (group%2Fapp) or branch name stays a single parameter, as with GitLab's
// route requirements. E is whatever the caller runs for an endpoint.
type Router[E any] struct {
	routes []route[E]
}

type route[E any] struct {
	method   string
	segs     []string
	endpoint E
}

// Handle declares the endpoint for method and pattern, a path below
// /api/v4/ such as "projects/:id/environments/:environment_id".
func (rt *Router[E]) Handle(method, pattern string, e E) {
	rt.routes = append(rt.routes, route[E]{method: method, segs: strings.Split(pattern, "/"), endpoint: e})
}

// Match finds the endpoint for method and a path below /api/v4/, split at
// '/' and still escaped; vars holds the unescaped parameters. HEAD matches
// GET. When the path exists only under other methods, allowed lists those
// (for OPTIONS).
func (rt *Router[E]) Match(method string, segs []string) (e E, vars map[string]string, allowed []string, ok bool) {
	if method == http.MethodHead {
		method = http.MethodGet
	}
	for i := range rt.routes {
		r := &rt.routes[i]
		vars, matched := matchSegs(r.segs, segs)
		if !matched {
			continue
		}
		if r.method == method {
			return r.endpoint, vars, nil, true
		}
		allowed = append(allowed, r.method)
	}
	return e, nil, allowed, false
}

// Find matches r by its escaped path, as Grape routes GitLab's API:
//   - every route takes an optional ".json" suffix (one format declared,
//     lib/api/api.rb; grape lib/grape/path.rb appends "(.json)"): a path
//     ending in ".json" is matched without it;
//   - OPTIONS on a path that exists answers 204 with Allow (grape
//     lib/grape/api/instance.rb adds those routes);
//   - anything else that no route takes falls to GitLab's catch-all
//     `route :any, '*path'`, 404 Not Found (lib/api/api.rb), never 405.
//
// When nothing matches Find answers itself and ok is false.
func (rt *Router[E]) Find(w http.ResponseWriter, r *http.Request) (e E, vars map[string]string, ok bool) {
	rest, under := strings.CutPrefix(r.URL.EscapedPath(), Prefix)
	if !under {
		RouteNotFound(w)
		return e, nil, false
	}
	if base, json := strings.CutSuffix(rest, ".json"); json {
		rest = base
	}
	e, vars, allowed, ok := rt.Match(r.Method, strings.Split(rest, "/"))
	switch {
	case ok:
		return e, vars, true
	case r.Method == http.MethodOptions && len(allowed) > 0:
		methods := []string{http.MethodOptions}
		for _, m := range allowed { // a method once, though two routes take it
			if !slices.Contains(methods, m) {
				methods = append(methods, m)
			}
		}
		if slices.Contains(allowed, http.MethodGet) {
			methods = append(methods, http.MethodHead)
		}
		w.Header().Set("Allow", strings.Join(methods, ", "))
		w.WriteHeader(http.StatusNoContent)
	default:
		RouteNotFound(w)
	}
	return e, nil, false
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
