package auth

import (
	"net/http/httptest"
	"strings"
	"testing"
)

func TestStripRemovesEveryGlenvCookieAndTheTicket(t *testing.T) {
	cases := []struct {
		name, query  string
		cookies      []string
		wantCookie   string
		wantRawQuery string
	}{
		{"glenv's cookies go, the app's stay", "", []string{"glenv_env=a; mine=1; glenv_session=b"}, "mine=1", ""},
		{"cookies split over several headers (HTTP/2) are all checked", "", []string{"mine=1", "glenv_env=a"}, "mine=1", ""},
		{"the ticket goes, other parameters stay", "x=1&glenv_ticket=t", nil, "", "x=1"},
		{"a request without glenv's things is passed as is", "x=1", []string{"mine=1"}, "mine=1", "x=1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/p?"+c.query, nil)
			for _, v := range c.cookies {
				r.Header.Add("Cookie", v)
			}
			out := strip(r)
			if got := strings.Join(out.Header.Values("Cookie"), "; "); got != c.wantCookie || out.URL.RawQuery != c.wantRawQuery {
				t.Fatalf("cookie %q query %q; want %q %q", got, out.URL.RawQuery, c.wantCookie, c.wantRawQuery)
			}
		})
	}
}
