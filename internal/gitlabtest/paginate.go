package gitlabtest

import "github.com/glenv/glenv/internal/gitlabapi"

// paginate cuts one page out of items and sets GitLab's offset-pagination
// headers. The double counts its lists in full, however long. page and
// per_page are declared on their own, after the endpoint's other
// parameters and the project lookup. It returns false when it already
// answered a parameter error.
func paginate[T any](rq *request, items []T) ([]T, bool) {
	g := rq.p.Grape()
	win := gitlabapi.ReadWindow(g)
	if !g.OK(rq.w) {
		return nil, false
	}
	return pageOf(rq, items, win), true
}

// pageOf cuts the window win, already declared, out of items and sets the
// headers, their Link carrying the request's Grape params.
func pageOf[T any](rq *request, items []T, win gitlabapi.Window) []T {
	page, pg := gitlabapi.PageOf(items, win)
	pg.SetHeaders(rq.w.Header(), rq.s.URL, rq.r.URL, rq.p.Values(rq.vars))
	return page
}
