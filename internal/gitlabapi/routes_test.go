package gitlabapi

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func testRouter() *Router[string] {
	var rt Router[string]
	rt.Handle(http.MethodGet, "projects/:id/environments", "list")
	rt.Handle(http.MethodPost, "projects/:id/environments", "create")
	rt.Handle(http.MethodPost, "projects/:id/environments/stop_stale", "stop_stale")
	rt.Handle(http.MethodGet, "projects/:id/environments/:environment_id", "get")
	rt.Handle(http.MethodPut, "projects/:id/environments/:environment_id", "edit")
	rt.Handle(http.MethodPost, "projects/:id/environments/stop_stale", "never: declared after the first")
	return &rt
}

func TestMatch(t *testing.T) {
	rt := testRouter()
	tests := []struct {
		method, path string
		want         string
		vars         map[string]string
		allowed      string
	}{
		{"GET", "projects/42/environments", "list", map[string]string{"id": "42"}, ""},
		{"HEAD", "projects/42/environments", "list", map[string]string{"id": "42"}, ""},
		{"POST", "projects/group%2Fapp/environments", "create", map[string]string{"id": "group/app"}, ""},
		{"POST", "projects/42/environments/stop_stale", "stop_stale", map[string]string{"id": "42"}, ""},
		{"GET", "projects/42/environments/stop_stale", "get", map[string]string{"id": "42", "environment_id": "stop_stale"}, ""},
		{"GET", "projects/a%20b/environments/7", "get", map[string]string{"id": "a b", "environment_id": "7"}, ""},
		{"DELETE", "projects/42/environments/7", "", nil, "GET, PUT"},
		{"DELETE", "projects/42/environments", "", nil, "GET, POST"},
		{"GET", "projects//environments", "", nil, ""},
		{"GET", "projects/%zz/environments", "", nil, ""},
		{"GET", "projects/42/environments/", "", nil, ""},
		{"GET", "projects/42", "", nil, ""},
		{"GET", "Projects/42/environments", "", nil, ""},
	}
	for _, tt := range tests {
		e, vars, allowed, ok := rt.Match(tt.method, strings.Split(tt.path, "/"))
		if ok != (tt.want != "") || e != tt.want || strings.Join(allowed, ", ") != tt.allowed {
			t.Errorf("%s %s: %q %v allowed %v", tt.method, tt.path, e, ok, allowed)
			continue
		}
		if len(vars) != len(tt.vars) {
			t.Errorf("%s %s: vars %v, want %v", tt.method, tt.path, vars, tt.vars)
		}
		for k, v := range tt.vars {
			if vars[k] != v {
				t.Errorf("%s %s: vars %v, want %v", tt.method, tt.path, vars, tt.vars)
			}
		}
	}
}

func TestFind(t *testing.T) {
	rt := testRouter()
	tests := []struct {
		method, target string
		want           string
		status         int
		body, allow    string
	}{
		{"GET", "/api/v4/projects/group%2Fapp/environments?page=2", "list", 0, "", ""},
		{"GET", "/api/v3/projects/1/environments", "", 404, `{"error":"404 Not Found"}`, ""},
		{"GET", "/api/v4/nothing", "", 404, `{"error":"404 Not Found"}`, ""},
		// GitLab's catch-all route answers every method no route takes.
		{"PATCH", "/api/v4/projects/1/environments/2", "", 404, `{"error":"404 Not Found"}`, ""},
		{"OPTIONS", "/api/v4/projects/1/environments/2", "", 204, "", "OPTIONS, GET, PUT, HEAD"},
		{"OPTIONS", "/api/v4/nothing", "", 404, `{"error":"404 Not Found"}`, ""},
		// Two routes take POST on stop_stale (testRouter declares it twice), and
		// :environment_id's GET and PUT match it too: each method once.
		{"OPTIONS", "/api/v4/projects/1/environments/stop_stale", "", 204, "", "OPTIONS, POST, GET, PUT, HEAD"},
		// Every route takes Grape's optional .json.
		{"GET", "/api/v4/projects/group%2Fapp/environments.json?page=2", "list", 0, "", ""},
	}
	for _, tt := range tests {
		w := httptest.NewRecorder()
		e, vars, ok := rt.Find(w, httptest.NewRequest(tt.method, tt.target, nil))
		if e != tt.want || ok != (tt.want != "") {
			t.Errorf("%s %s: %q %v", tt.method, tt.target, e, ok)
		}
		if ok {
			if vars["id"] != "group/app" || w.Body.Len() != 0 {
				t.Errorf("%s %s: vars %v, wrote %s", tt.method, tt.target, vars, w.Body)
			}
			continue
		}
		if w.Code != tt.status || w.Body.String() != tt.body || w.Header().Get("Allow") != tt.allow {
			t.Errorf("%s %s: %d %s Allow %q", tt.method, tt.target, w.Code, w.Body, w.Header().Get("Allow"))
		}
	}
}
