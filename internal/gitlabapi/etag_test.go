package gitlabapi

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"
)

var weakETag = regexp.MustCompile(`^W/"[0-9a-f]{32}"$`)

func TestRevalidated(t *testing.T) {
	ok := func(w http.ResponseWriter) { WriteJSON(w, 200, []int{1}) }
	tests := []struct {
		name, method, ifNoneMatch string // ifNoneMatch "etag": the answer's own
		answer                    func(http.ResponseWriter)
		status                    int
		etag                      bool
		cacheControl, body        string
	}{
		{"a 200 gets an ETag", "GET", "", ok, 200, true, cacheControlETag, "[1]"},
		{"a 201 too", "POST", "", func(w http.ResponseWriter) { WriteJSON(w, 201, map[string]int{"id": 1}) }, 201, true, cacheControlETag, `{"id":1}`},
		{"an error gets no-cache", "GET", "", func(w http.ResponseWriter) { RecordNotFound(w) }, 404, false, cacheControlNone, `{"message":"404 Not found"}`},
		{"no body, no ETag", "DELETE", "", NoContent, 204, false, cacheControlNone, ""},
		{"a matching If-None-Match is 304", "GET", "etag", ok, 304, true, cacheControlETag, ""},
		{"another ETag is not", "GET", `W/"0123"`, ok, 200, true, cacheControlETag, "[1]"},
		{"not for a POST", "POST", "etag", ok, 200, true, cacheControlETag, "[1]"},
		{"the handler's no-cache stands", "GET", "", func(w http.ResponseWriter) {
			w.Header().Set("Cache-Control", "no-cache")
			ok(w)
		}, 200, false, "no-cache", "[1]"},
		{"a malformed request bypasses Rails", "GET", "", Malformed, 400, false, "", "Bad Request"},
	}
	for _, tt := range tests {
		// The ETag of [1], for If-None-Match: "etag".
		first := httptest.NewRecorder()
		w, finish := Revalidated(first, httptest.NewRequest("GET", "/", nil))
		ok(w)
		finish()
		r := httptest.NewRequest(tt.method, "/", nil)
		switch tt.ifNoneMatch {
		case "etag":
			r.Header.Set("If-None-Match", first.Header().Get("ETag"))
		case "":
		default:
			r.Header.Set("If-None-Match", tt.ifNoneMatch)
		}
		rec := httptest.NewRecorder()
		w, finish = Revalidated(rec, r)
		tt.answer(w)
		finish()
		etag := rec.Header().Get("ETag")
		if rec.Code != tt.status || weakETag.MatchString(etag) != tt.etag || rec.Header().Get("Cache-Control") != tt.cacheControl ||
			rec.Body.String() != tt.body {
			t.Errorf("%s: %d ETag %q Cache-Control %q body %q", tt.name, rec.Code, etag, rec.Header().Get("Cache-Control"), rec.Body)
		}
		if tt.status == 304 && (rec.Header().Get("Content-Type") != "" || etag != first.Header().Get("ETag")) {
			t.Errorf("%s: 304 with Content-Type %q, ETag %q", tt.name, rec.Header().Get("Content-Type"), etag)
		}
	}
	// The same body, the same ETag; another body, another.
	a, b := httptest.NewRecorder(), httptest.NewRecorder()
	for _, rec := range []*httptest.ResponseRecorder{a, b} {
		w, finish := Revalidated(rec, httptest.NewRequest("GET", "/", nil))
		ok(w)
		finish()
	}
	c := httptest.NewRecorder()
	w, finish := Revalidated(c, httptest.NewRequest("GET", "/", nil))
	WriteJSON(w, 200, []int{2})
	finish()
	if a.Header().Get("ETag") != b.Header().Get("ETag") || a.Header().Get("ETag") == c.Header().Get("ETag") {
		t.Errorf("ETags %q %q %q", a.Header().Get("ETag"), b.Header().Get("ETag"), c.Header().Get("ETag"))
	}
}
