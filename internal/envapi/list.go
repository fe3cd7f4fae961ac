package envapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/glenv/glenv/internal/gitlabapi"
	"github.com/glenv/glenv/internal/store"
)

// present is Ruby's Object#present?: GitLab ignores blank filters.
func present(s string) bool { return strings.TrimSpace(s) != "" }

// list is GET …/environments. It pages in the database: one capped COUNT and
// one indexed LIMIT/OFFSET query (with the page's GitLab attributes joined),
// whatever the number of environments.
func (h *handler) list(rq *request) {
	g := rq.p.Grape()
	win := gitlabapi.ReadWindow(g)
	f := gitlabapi.ReadEnvironmentFilter(g)
	if !g.OK(rq.w) {
		return
	}
	p, ok := h.project(rq)
	if !ok {
		return
	}
	if present(f.Search) && utf8.RuneCountInString(f.Search) < gitlabapi.MinSearchLength {
		gitlabapi.BadRequest(rq.w, gitlabapi.SearchTooShort)
		return
	}
	var envs []store.Environment
	var attrs []store.EnvAPIAttrs
	var total int
	hasNext := false
	if !gitlabapi.CannotMatch(f) {
		q := store.ProjectEnvQuery{IntegrationIDs: p.ids, GitLabState: f.States}
		if present(f.Name) {
			q.Name = f.Name
		}
		if present(f.Search) {
			q.Prefix = f.Search
		}
		ctx, db := rq.r.Context(), h.store.Reader()
		var err error
		if total, err = store.CountProjectEnvironments(ctx, db, q, gitlabapi.MaxCount); err != nil {
			h.fail(rq, "count environments", err)
			return
		}
		// One row more than the page tells whether a next page exists when
		// the total is not counted.
		if envs, attrs, err = store.PageProjectEnvironmentsWithAttrs(ctx, db, q, int(win.PerPage)+1, int(win.Offset())); err != nil {
			h.fail(rq, "list environments", err)
			return
		}
		if hasNext = len(envs) > int(win.PerPage); hasNext {
			envs = envs[:win.PerPage]
		}
	}
	pg := gitlabapi.Page{Window: win, Total: int64(total), HasNext: hasNext}
	pg.SetHeaders(rq.w.Header(), baseURL(rq.r), rq.r.URL, rq.p.Values(rq.vars))
	out := make([]envJSON, 0, len(envs))
	for i, e := range envs {
		out = append(out, h.entity(p, e, attrs[i]))
	}
	gitlabapi.WriteJSON(rq.w, http.StatusOK, out)
}

// baseURL is scheme://host of the request, as Link repeats it; behind a
// proxy X-Forwarded-Proto gives the scheme.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p == "https" || p == "http" {
		scheme = p
	}
	return scheme + "://" + r.Host
}

// get is GET …/environments/:environment_id: without the project, with the
// last successful deploy (GitLab's last_deployment) or null.
func (h *handler) get(rq *request) {
	id, ok := rq.pathInt("environment_id")
	if !ok {
		return
	}
	p, ok := h.project(rq)
	if !ok {
		return
	}
	e, ok := h.environment(rq, p, id)
	if !ok {
		return
	}
	a, ok := h.attrs(rq, e)
	if !ok {
		return
	}
	var last []byte
	d, err := store.LastSuccessfulDeploy(rq.r.Context(), h.store.Reader(), e.ID)
	switch {
	case err == nil:
		last = mustJSON(deployment(e, d, serviceUser(baseURL(rq.r))))
	case !errors.Is(err, store.ErrNotFound):
		h.fail(rq, "last deployment", err)
		return
	}
	gitlabapi.WriteJSON(rq.w, http.StatusOK, h.entity(p, e, a).Detail(last))
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only plain structs are marshalled here
	}
	return b
}
