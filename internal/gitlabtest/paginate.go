package gitlabtest

import (
	"net/url"
	"strconv"
	"strings"
)

const (
	defaultPerPage = 20
	maxPerPage     = 100
)

// paginate cuts one page out of items and sets GitLab's offset-pagination
// headers: X-Page, X-Per-Page, X-Next-Page, X-Prev-Page, X-Total,
// X-Total-Pages and Link (prev, next, first, last). per_page above 100 is
// clamped to 100 and per_page ≤ 0 falls back to 20, as Kaminari does. It
// returns false when it already answered a parameter error.
func paginate[T any](rq *request, items []T) ([]T, bool) {
	g := rq.grape()
	page, hasPage := g.optInt("page")
	perPage, hasPerPage := g.optInt("per_page")
	if !g.ok(rq) {
		return nil, false
	}
	if !hasPage || page < 1 {
		page = 1
	}
	if !hasPerPage || perPage < 1 {
		perPage = defaultPerPage
	}
	perPage = min(perPage, maxPerPage)

	total := int64(len(items))
	totalPages := max((total+perPage-1)/perPage, 1)

	h := rq.w.Header()
	h.Set("X-Page", strconv.FormatInt(page, 10))
	h.Set("X-Per-Page", strconv.FormatInt(perPage, 10))
	h.Set("X-Total", strconv.FormatInt(total, 10))
	h.Set("X-Total-Pages", strconv.FormatInt(totalPages, 10))
	next, prev := "", ""
	if page < totalPages {
		next = strconv.FormatInt(page+1, 10)
	}
	if page > 1 && page <= totalPages {
		prev = strconv.FormatInt(page-1, 10)
	}
	h.Set("X-Next-Page", next)
	h.Set("X-Prev-Page", prev)

	var links []string
	link := func(p int64, rel string) {
		links = append(links, "<"+rq.pageURL(p, perPage)+`>; rel="`+rel+`"`)
	}
	if prev != "" {
		link(page-1, "prev")
	}
	if next != "" {
		link(page+1, "next")
	}
	link(1, "first")
	link(totalPages, "last")
	h.Set("Link", strings.Join(links, ", "))

	start := (page - 1) * perPage
	if start >= total {
		return []T{}, true
	}
	return items[start:min(start+perPage, total)], true
}

// pageURL is the request URL with page and per_page replaced, as GitLab
// writes into Link.
func (rq *request) pageURL(page, perPage int64) string {
	q := url.Values{}
	for k, v := range rq.r.URL.Query() {
		q[k] = v
	}
	q.Set("page", strconv.FormatInt(page, 10))
	q.Set("per_page", strconv.FormatInt(perPage, 10))
	return rq.s.URL + rq.r.URL.EscapedPath() + "?" + q.Encode()
}
