package gitlabapi

import (
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

const (
	// DefaultPerPage is Kaminari's page size when per_page is missing or below 1.
	DefaultPerPage = 20
	// MaxPerPage is the largest per_page GitLab serves; more is clamped.
	MaxPerPage = 100
	// MaxCount is where GitLab stops counting (OffsetPagination's
	// MAX_COUNT_LIMIT): past it X-Total, X-Total-Pages and rel="last" are
	// left out.
	MaxCount = 10000
)

// Window is the page a list request asks for.
type Window struct {
	Page, PerPage int64
}

// ReadWindow declares page and per_page as `use :pagination` does
// (lib/api/pagination_params.rb:19-23) and reads them as Kaminari uses them:
// per_page 0 is refused by `except_values: [0]` ("per_page has a value not
// allowed"); otherwise a page below 1 is 1, a per_page below 1 is 20 and
// above 100 is 100 (the only_positive_pagination_values flag that refuses
// negatives is off by default; spec/requests/api/commits_spec.rb "when FF
// is off").
func ReadWindow(g *Grape) Window {
	page, hasPage := g.OptInt("page")
	perPage, hasPerPage := g.OptInt("per_page")
	if hasPerPage && perPage == 0 {
		g.Fail("per_page", "has a value not allowed")
	}
	if !hasPage || page < 1 {
		page = 1
	}
	if !hasPerPage || perPage < 1 {
		perPage = DefaultPerPage
	}
	return Window{Page: page, PerPage: min(perPage, MaxPerPage)}
}

// Offset is how many items come before the window.
func (w Window) Offset() int64 { return (w.Page - 1) * w.PerPage }

// Page is the page a list answers, as its headers describe it.
type Page struct {
	Window
	// Total is the number of items in the whole list. Above MaxCount it
	// need not be exact: it is not shown.
	Total int64
	// HasNext reports that items follow this page.
	HasNext bool
	// CountAll shows the totals however large Total is, where GitLab
	// leaves them out above MaxCount.
	CountAll bool
}

// PageOf cuts w out of an in-memory list and describes the page. Such a
// list is counted in full (CountAll).
func PageOf[T any](items []T, w Window) ([]T, Page) {
	total := int64(len(items))
	pg := Page{Window: w, Total: total, CountAll: true}
	pg.HasNext = w.Page < pg.TotalPages()
	start := w.Offset()
	if start >= total {
		return []T{}, pg
	}
	return items[start:min(start+w.PerPage, total)], pg
}

// counted reports whether the totals are shown.
func (p Page) counted() bool { return p.CountAll || p.Total <= MaxCount }

// TotalPages is the number of pages, at least 1.
func (p Page) TotalPages() int64 { return max((p.Total+p.PerPage-1)/p.PerPage, 1) }

// SetHeaders writes GitLab's offset-pagination headers: X-Page,
// X-Per-Page, X-Next-Page, X-Prev-Page, X-Total, X-Total-Pages and Link
// (prev, next, first, last), as Gitlab::Pagination::OffsetHeaderBuilder
// does (lib/gitlab/pagination/offset_header_builder.rb:21-44). Link is the
// request path u under base (scheme://host) with the query GitLab builds
// (see LinkQuery) from params, the endpoint's Grape params.
func (p Page) SetHeaders(h http.Header, base string, u *url.URL, params url.Values) {
	counted, totalPages := p.counted(), p.TotalPages()
	next, prev := "", ""
	if p.HasNext {
		next = strconv.FormatInt(p.Page+1, 10)
	}
	if p.Page > 1 && (!counted || p.Page <= totalPages) {
		prev = strconv.FormatInt(p.Page-1, 10)
	}
	h.Set("X-Page", strconv.FormatInt(p.Page, 10))
	h.Set("X-Per-Page", strconv.FormatInt(p.PerPage, 10))
	h.Set("X-Next-Page", next)
	h.Set("X-Prev-Page", prev)
	var links []string
	link := func(page int64, rel string) {
		links = append(links, "<"+base+u.EscapedPath()+"?"+LinkQuery(params, page, p.PerPage)+`>; rel="`+rel+`"`)
	}
	if prev != "" {
		link(p.Page-1, "prev")
	}
	if next != "" {
		link(p.Page+1, "next")
	}
	link(1, "first")
	if counted {
		link(totalPages, "last")
		h.Set("X-Total", strconv.FormatInt(p.Total, 10))
		h.Set("X-Total-Pages", strconv.FormatInt(totalPages, 10))
	}
	h.Set("Link", strings.Join(links, ", "))
}

// LinkQuery is OffsetHeaderBuilder#page_href's query
// (offset_header_builder.rb:59-67): every Grape param of the request (the
// route's :id and the endpoint's parameters as sent, whether from the
// query or the body) merged with page and per_page, rendered by Ruby's
// Hash#to_query: CGI-escaped pairs sorted as strings. Tokens sent as
// parameters are left out: glenv never repeats a secret, and GitLab's own
// clients send them as headers.
func LinkQuery(params url.Values, page, perPage int64) string {
	merged := url.Values{}
	for k, vs := range params {
		if len(vs) > 0 && !secretParam[k] {
			merged.Set(k, vs[0])
		}
	}
	merged.Set("page", strconv.FormatInt(page, 10))
	merged.Set("per_page", strconv.FormatInt(perPage, 10))
	pairs := make([]string, 0, len(merged))
	for k, vs := range merged {
		pairs = append(pairs, url.QueryEscape(k)+"="+url.QueryEscape(vs[0]))
	}
	sort.Strings(pairs)
	return strings.Join(pairs, "&")
}

// SecretParams are the parameters that carry a token (lib/gitlab/auth/auth_finders.rb
// PARAM_TOKEN_KEYS, where :token is a job token too; Doorkeeper's
// access_token and bearer_token, config/initializers/doorkeeper.rb).
var SecretParams = []string{"private_token", "access_token", "bearer_token", "job_token", "token"}

var secretParam = func() map[string]bool {
	m := map[string]bool{}
	for _, k := range SecretParams {
		m[k] = true
	}
	return m
}()
