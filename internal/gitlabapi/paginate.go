package gitlabapi

import (
	"net/http"
	"net/url"
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

// ReadWindow declares page and per_page and reads them as Kaminari uses
// them: a page below 1 is 1, a per_page below 1 is 20 and above 100 is 100.
func ReadWindow(g *Grape) Window {
	page, hasPage := g.OptInt("page")
	perPage, hasPerPage := g.OptInt("per_page")
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
// (prev, next, first, last). Link repeats the request URL u under base
// (scheme://host) with page and per_page replaced.
func (p Page) SetHeaders(h http.Header, base string, u *url.URL) {
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
		links = append(links, "<"+pageURL(base, u, page, p.PerPage)+`>; rel="`+rel+`"`)
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

// pageURL is u under base with page and per_page replaced, as GitLab writes
// into Link.
func pageURL(base string, u *url.URL, page, perPage int64) string {
	q := u.Query()
	q.Set("page", strconv.FormatInt(page, 10))
	q.Set("per_page", strconv.FormatInt(perPage, 10))
	return base + u.EscapedPath() + "?" + q.Encode()
}
