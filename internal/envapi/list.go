package envapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/glenv/glenv/internal/store"
)

const (
	defaultPerPage = 20
	maxPerPage     = 100
	// maxCount is where GitLab stops counting (OffsetPagination's
	// MAX_COUNT_LIMIT): past it X-Total, X-Total-Pages and rel="last" are left out.
	maxCount = 10000
	// minSearch is API::Environments::MIN_SEARCH_LENGTH.
	minSearch = 3
)

// present is Ruby's Object#present?: GitLab ignores blank filters.
func present(s string) bool { return strings.TrimSpace(s) != "" }

// pagination reads page and per_page as Kaminari uses them: a page below 1
// is 1, a per_page below 1 is the default 20 and above 100 is 100.
func pagination(g *grape) (page, perPage int64) {
	page, hasPage := g.optInt("page")
	perPage, hasPerPage := g.optInt("per_page")
	if !hasPage || page < 1 {
		page = 1
	}
	if !hasPerPage || perPage < 1 {
		perPage = defaultPerPage
	}
	return page, min(perPage, maxPerPage)
}

// list is GET …/environments. It pages in the database: one capped COUNT and
// one indexed LIMIT/OFFSET query, whatever the number of environments.
func (h *handler) list(rq *request) {
	g := rq.grape()
	page, perPage := pagination(g)
	name, hasName := g.optString("name")
	search, hasSearch := g.optString("search")
	states, hasStates := g.optString("states")
	g.values("states", states, hasStates, "available", "stopping", "stopped")
	if hasName && hasSearch {
		g.fail("name, search", "cannot be used together")
	}
	if !rq.grapeOK(g) {
		return
	}
	p, ok := h.project(rq)
	if !ok {
		return
	}
	if present(search) && utf8.RuneCountInString(search) < minSearch {
		badRequest(rq.w, "Search query is less than 3 characters")
		return
	}
	q := store.ProjectEnvQuery{IntegrationIDs: p.ids, GitLabState: states}
	if present(name) {
		q.Name = name
	}
	if present(search) {
		q.Prefix = search
	}
	ctx, db := rq.r.Context(), h.store.Reader()
	total, err := store.CountProjectEnvironments(ctx, db, q, maxCount)
	if err != nil {
		h.fail(rq, "count environments", err)
		return
	}
	// One row more than the page tells whether a next page exists when the
	// total is not counted.
	envs, err := store.PageProjectEnvironments(ctx, db, q, int(perPage)+1, int((page-1)*perPage))
	if err != nil {
		h.fail(rq, "list environments", err)
		return
	}
	hasNext := len(envs) > int(perPage)
	if hasNext {
		envs = envs[:perPage]
	}
	setPageHeaders(rq, page, perPage, int64(total), hasNext)
	out := make([]envJSON, 0, len(envs))
	for _, e := range envs {
		out = append(out, h.entity(p, e))
	}
	writeJSON(rq.w, http.StatusOK, out)
}

// setPageHeaders writes GitLab's offset-pagination headers. A total above
// maxCount is not reported, as GitLab does on large sets.
func setPageHeaders(rq *request, page, perPage, total int64, hasNext bool) {
	counted := total <= maxCount
	totalPages := max((total+perPage-1)/perPage, 1)
	next, prev := "", ""
	if hasNext {
		next = strconv.FormatInt(page+1, 10)
	}
	if page > 1 && (!counted || page <= totalPages) {
		prev = strconv.FormatInt(page-1, 10)
	}
	hd := rq.w.Header()
	hd.Set("X-Page", strconv.FormatInt(page, 10))
	hd.Set("X-Per-Page", strconv.FormatInt(perPage, 10))
	hd.Set("X-Next-Page", next)
	hd.Set("X-Prev-Page", prev)
	var links []string
	link := func(p int64, rel string) {
		links = append(links, "<"+pageURL(rq.r, p, perPage)+`>; rel="`+rel+`"`)
	}
	if prev != "" {
		link(page-1, "prev")
	}
	if next != "" {
		link(page+1, "next")
	}
	link(1, "first")
	if counted {
		link(totalPages, "last")
		hd.Set("X-Total", strconv.FormatInt(total, 10))
		hd.Set("X-Total-Pages", strconv.FormatInt(totalPages, 10))
	}
	hd.Set("Link", strings.Join(links, ", "))
}

// pageURL is the request URL with page and per_page replaced, as GitLab
// writes into Link; behind a proxy X-Forwarded-Proto gives the scheme.
func pageURL(r *http.Request, page, perPage int64) string {
	q := url.Values{}
	for k, v := range r.URL.Query() {
		q[k] = v
	}
	q.Set("page", strconv.FormatInt(page, 10))
	q.Set("per_page", strconv.FormatInt(perPage, 10))
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p == "https" || p == "http" {
		scheme = p
	}
	return scheme + "://" + r.Host + r.URL.EscapedPath() + "?" + q.Encode()
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
	out := h.entity(p, e)
	out.Project = nil
	out.LastDeployment = []byte("null")
	a, err := store.LastSuccessfulDeploy(rq.r.Context(), h.store.Reader(), e.ID)
	switch {
	case err == nil:
		out.LastDeployment = mustJSON(deployment(e, a))
	case !errors.Is(err, store.ErrNotFound):
		h.fail(rq, "last deployment", err)
		return
	}
	writeJSON(rq.w, http.StatusOK, out)
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only plain structs are marshalled here
	}
	return b
}
