package gitlabapi

import (
	"net/http"
	"net/url"
	"testing"
)

func TestReadWindow(t *testing.T) {
	tests := []struct {
		query  string
		want   Window
		failed string
	}{
		{"", Window{1, 20}, ""},
		{"page=3&per_page=50", Window{3, 50}, ""},
		{"page=0", Window{1, 20}, ""},
		{"per_page=0", Window{1, 20}, "per_page has a value not allowed"},
		{"page=-4&per_page=-1", Window{1, 20}, ""},
		{"per_page=101", Window{1, 100}, ""},
		{"page=x&per_page=y", Window{1, 20}, "page is invalid, per_page is invalid"},
		// Grape coerces an empty Integer to nil, and the default applies.
		{"page=&per_page=", Window{1, 20}, ""},
	}
	for _, tt := range tests {
		g := queryParams(t, tt.query).Grape()
		if got := ReadWindow(g); got != tt.want || g.Failed() != tt.failed {
			t.Errorf("%q: %+v %q, want %+v %q", tt.query, got, g.Failed(), tt.want, tt.failed)
		}
	}
}

func TestPageOf(t *testing.T) {
	items := []int{1, 2, 3, 4, 5}
	tests := []struct {
		w       Window
		want    []int
		hasNext bool
	}{
		{Window{1, 2}, []int{1, 2}, true},
		{Window{2, 2}, []int{3, 4}, true},
		{Window{3, 2}, []int{5}, false},
		{Window{4, 2}, []int{}, false},
		{Window{1, 5}, []int{1, 2, 3, 4, 5}, false},
	}
	for _, tt := range tests {
		got, pg := PageOf(items, tt.w)
		if len(got) != len(tt.want) || pg.HasNext != tt.hasNext || pg.Total != 5 || !pg.CountAll || pg.Window != tt.w {
			t.Errorf("%+v: %v %+v", tt.w, got, pg)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("%+v: %v, want %v", tt.w, got, tt.want)
			}
		}
	}
	if got, pg := PageOf([]int(nil), Window{1, 20}); got == nil || len(got) != 0 || pg.HasNext || pg.TotalPages() != 1 {
		t.Errorf("empty list: %#v %+v", got, pg)
	}
}

func TestPageHeaders(t *testing.T) {
	const base = "https://glenv.example.com"
	u, _ := url.Parse("/api/v4/projects/group%2Fapp/environments?states=available&page=2")
	// GitLab's Link repeats every Grape param, the route's :id included.
	params := url.Values{"id": {"group/app"}, "states": {"available"}, "page": {"2"}}
	link := func(page, rel string) string {
		return "<" + base + "/api/v4/projects/group%2Fapp/environments?id=group%2Fapp&page=" + page + "&per_page=20&states=available>; rel=\"" + rel + "\""
	}
	tests := []struct {
		name string
		page Page
		want map[string]string // absent: "-"
	}{
		{"first of three", Page{Window: Window{1, 20}, Total: 45, HasNext: true}, map[string]string{
			"X-Page": "1", "X-Per-Page": "20", "X-Next-Page": "2", "X-Prev-Page": "", "X-Total": "45", "X-Total-Pages": "3",
			"Link": link("2", "next") + ", " + link("1", "first") + ", " + link("3", "last")}},
		{"middle", Page{Window: Window{2, 20}, Total: 45, HasNext: true}, map[string]string{
			"X-Next-Page": "3", "X-Prev-Page": "1", "X-Total": "45", "X-Total-Pages": "3",
			"Link": link("1", "prev") + ", " + link("3", "next") + ", " + link("1", "first") + ", " + link("3", "last")}},
		{"last", Page{Window: Window{3, 20}, Total: 45}, map[string]string{
			"X-Next-Page": "", "X-Prev-Page": "2",
			"Link": link("2", "prev") + ", " + link("1", "first") + ", " + link("3", "last")}},
		{"beyond the last: no prev", Page{Window: Window{9, 20}, Total: 45}, map[string]string{
			"X-Page": "9", "X-Next-Page": "", "X-Prev-Page": "", "Link": link("1", "first") + ", " + link("3", "last")}},
		{"empty list has one page", Page{Window: Window{1, 20}}, map[string]string{
			"X-Total": "0", "X-Total-Pages": "1", "Link": link("1", "first") + ", " + link("1", "last")}},
		{"exactly MaxCount is counted", Page{Window: Window{1, 20}, Total: MaxCount, HasNext: true}, map[string]string{
			"X-Total": "10000", "X-Total-Pages": "500"}},
		{"beyond MaxCount the totals are left out", Page{Window: Window{600, 20}, Total: MaxCount + 1, HasNext: true}, map[string]string{
			"X-Page": "600", "X-Next-Page": "601", "X-Prev-Page": "599", "X-Total": "-", "X-Total-Pages": "-",
			"Link": link("599", "prev") + ", " + link("601", "next") + ", " + link("1", "first")}},
		{"CountAll counts beyond MaxCount", Page{Window: Window{1, 20}, Total: 20001, HasNext: true, CountAll: true}, map[string]string{
			"X-Total": "20001", "X-Total-Pages": "1001"}},
	}
	for _, tt := range tests {
		h := http.Header{}
		tt.page.SetHeaders(h, base, u, params)
		for k, want := range tt.want {
			got, present := h[k]
			switch {
			case want == "-" && present:
				t.Errorf("%s: %s = %q, want it left out", tt.name, k, got)
			case want != "-" && (!present || len(got) != 1 || got[0] != want):
				t.Errorf("%s: %s = %q, want %q", tt.name, k, got, want)
			}
		}
	}
}

func TestLinkQueryIsRubysToQuery(t *testing.T) {
	tests := []struct {
		name   string
		params url.Values
		want   string
	}{
		{"page and per_page replace what was sent", url.Values{"page": {"7"}, "per_page": {"1000"}}, "page=2&per_page=100"},
		{"pairs are sorted as strings, so a-b comes before a", url.Values{"a": {"1"}, "a-b": {"2"}}, "a-b=2&a=1&page=2&per_page=100"},
		{"CGI.escape: space is + and / is %2F", url.Values{"id": {"group/app"}, "search": {"a b~c"}}, "id=group%2Fapp&page=2&per_page=100&search=a+b~c"},
		{"tokens are never repeated", url.Values{"private_token": {"glpat-x"}, "access_token": {"y"}, "job_token": {"z"}}, "page=2&per_page=100"},
		{"nor the job token's other name, nor a bearer_token", url.Values{"token": {"glcbt-x"}, "bearer_token": {"y"}}, "page=2&per_page=100"},
	}
	for _, tt := range tests {
		if got := LinkQuery(tt.params, 2, 100); got != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, got, tt.want)
		}
	}
}
