package gitlabapi

import (
	"errors"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
)

func TestParseParams(t *testing.T) {
	const multipartBody = "--B\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nfrom-multipart\r\n--B--\r\n"
	tests := []struct {
		name        string
		query       string
		ctype, body string
		key         string
		want        string // "" with sent false: not sent
		sent        bool
		wantErr     error
	}{
		{name: "query only", query: "name=q", key: "name", want: "q", sent: true},
		{name: "form wins over query", query: "name=q", ctype: "application/x-www-form-urlencoded", body: "name=f", key: "name", want: "f", sent: true},
		{name: "JSON wins over query", query: "name=q", ctype: "application/json", body: `{"name":"j"}`, key: "name", want: "j", sent: true},
		{name: "JSON with a charset", ctype: "application/json; charset=utf-8", body: `{"name":"j"}`, key: "name", want: "j", sent: true},
		{name: "JSON null is not sent, query shows", query: "name=q", ctype: "application/json", body: `{"name":null}`, key: "name", want: "q", sent: true},
		{name: "JSON null alone is not sent", ctype: "application/json", body: `{"name":null}`, key: "name"},
		{name: "blank body is no body", query: "name=q", ctype: "application/json", body: " \n", key: "name", want: "q", sent: true},
		{name: "blank body needs no type", query: "name=q", body: " ", key: "name", want: "q", sent: true},
		// Rack's parse_nested_query keeps the last of a repeated key.
		{name: "last of repeated values", query: "name=a&name=b", key: "name", want: "b", sent: true},
		{name: "last of a repeated form key", ctype: "application/x-www-form-urlencoded", body: "name=a&name=b", key: "name", want: "b", sent: true},
		{name: "empty value is sent", query: "name=", key: "name", want: "", sent: true},
		{name: "multipart", ctype: "multipart/form-data; boundary=B", body: multipartBody, key: "name", want: "from-multipart", sent: true},
		// A JSON array or scalar body parses but gives no parameters.
		{name: "JSON that is not an object", query: "name=q", ctype: "application/json", body: `[1]`, key: "name", want: "q", sent: true},
		{name: "broken multipart", ctype: "multipart/form-data; boundary=X", body: multipartBody, wantErr: ErrMalformed},
		{name: "broken JSON", ctype: "application/json", body: `{"name":`, wantErr: ErrMalformed},
		{name: "JSON with more after it", ctype: "application/json", body: `{"name":"a"} x`, wantErr: ErrMalformed},
		{name: "JSON then white space", query: "", ctype: "application/json", body: "{\"name\":\"a\"}\n", key: "name", want: "a", sent: true},
		{name: "JSON with a NUL", ctype: "application/json", body: `{"name":"a\u0000b"}`, wantErr: ErrMalformed},
		{name: "JSON with a NUL in a nested key", ctype: "application/json", body: `{"o":[{"a\u0000":1}]}`, wantErr: ErrMalformed},
		{name: "JSON with invalid UTF-8", ctype: "application/json", body: "{\"name\":\"a\xc0b\"}", wantErr: ErrMalformed},
		{name: "broken form", ctype: "application/x-www-form-urlencoded", body: "name=%zz", wantErr: ErrMalformed},
		{name: "form with a NUL", ctype: "application/x-www-form-urlencoded", body: "name=a%00b", wantErr: ErrMalformed},
		{name: "broken query", query: "search=%zz", wantErr: ErrMalformed},
		{name: "query with invalid UTF-8", query: "search=%C0abc", wantErr: ErrMalformed},
		{name: "query with a NUL in a key", query: "a%00=b", wantErr: ErrMalformed},
		{name: "another body type", query: "name=q", ctype: "text/plain", body: "name=x", wantErr: &UnsupportedTypeError{}},
		{name: "a body of no type", body: `{"name":"j"}`, wantErr: &UnsupportedTypeError{}},
		{name: "JSON-like vendor type", ctype: "application/vnd.api+json", body: `{"name":"j"}`, wantErr: &UnsupportedTypeError{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/api/v4/x?"+tt.query, strings.NewReader(tt.body))
			r.Header.Set("Content-Type", tt.ctype)
			p, err := ParseParams(r, []byte(tt.body))
			var unsupported *UnsupportedTypeError
			switch {
			case tt.wantErr == ErrMalformed && !errors.Is(err, ErrMalformed),
				tt.wantErr != nil && tt.wantErr != ErrMalformed && !errors.As(err, &unsupported):
				t.Fatalf("error %v, want %T %v", err, tt.wantErr, tt.wantErr)
			case tt.wantErr != nil:
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, sent := p.Str(tt.key)
			if got != tt.want || sent != tt.sent || p.Has(tt.key) != tt.sent {
				t.Errorf("Str(%q) = %q, %v; want %q, %v", tt.key, got, sent, tt.want, tt.sent)
			}
		})
	}
}

// ReadParams answers what GitLab answers before its API runs: a malformed
// request 400 text/plain "Bad Request", a body of a type the API does not
// parse Grape's 415 naming it.
func TestReadParamsAnswersRefusals(t *testing.T) {
	for _, tt := range []struct {
		ctype, body, query string
		status             int
		answer, answerType string
	}{
		{"application/json", `{`, "", 400, "Bad Request", "text/plain"},
		{"", "", "search=%zz", 400, "Bad Request", "text/plain"},
		{"text/plain", "tier=production", "", 415, `{"error":"The provided content-type 'text/plain' is not supported."}`, "application/json"},
		{"", `{"name":"x"}`, "", 415, `{"error":"The provided content-type '' is not supported."}`, "application/json"},
	} {
		r := httptest.NewRequest("PUT", "/api/v4/x?"+tt.query, nil)
		if tt.ctype != "" {
			r.Header.Set("Content-Type", tt.ctype)
		}
		w := httptest.NewRecorder()
		if _, ok := ReadParams(w, r, []byte(tt.body)); ok {
			t.Fatalf("%q %q: ok", tt.ctype, tt.body)
		}
		if w.Code != tt.status || w.Body.String() != tt.answer || w.Header().Get("Content-Type") != tt.answerType {
			t.Errorf("%q %q: answer %d %s (%s)", tt.ctype, tt.body, w.Code, w.Body, w.Header().Get("Content-Type"))
		}
	}
}

// Str coerces JSON scalars as Grape coerces them to String.
func TestStrCoercion(t *testing.T) {
	r := httptest.NewRequest("POST", "/", nil)
	r.Header.Set("Content-Type", "application/json")
	p, err := ParseParams(r, []byte(`{"n":12.50,"big":12345678901234567890,"t":true,"f":false,"s":"x","o":{"a":1},"l":[1,"b"]}`))
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{
		"n": "12.50", "big": "12345678901234567890", "t": "true", "f": "false", "s": "x",
	} {
		if got, _ := p.Str(key); got != want || p.Compound(key) {
			t.Errorf("Str(%q) = %q, want %q", key, got, want)
		}
	}
	// An Array or a Hash is no String: Grape says "is invalid".
	g := p.Grape()
	g.OptString("o")
	g.OptString("l")
	g.OptInt("s")
	if got := g.Failed(); got != "o is invalid, l is invalid, s is invalid" {
		t.Errorf("compound values: %q", got)
	}
	// Rack reads states[]=a as an Array, a[b]=c as a Hash.
	q := queryParams(t, "states[]=available&a[b]=c&name=x")
	g = q.Grape()
	g.OptString("states")
	g.OptString("a")
	g.OptString("name")
	if got := g.Failed(); got != "states is invalid, a is invalid" {
		t.Errorf("bracketed keys: %q", got)
	}
}

// Before glenv knows the caller it reads only a body's token parameters:
// the rest of a JSON body stays raw bytes, so a hostile body costs about
// its own size, where decoding it whole costs tens of times that.
func TestTokenParamsCostAboutTheBodysSize(t *testing.T) {
	junk := strings.Repeat(`{"":0},`, 9000)
	body := []byte(`{"a":[` + junk + `{"":0}],"job_token":"glcbt-1","token":["glcbt-2"],"private_token":{"a":"b"}}`)
	r := httptest.NewRequest("POST", "/", nil)
	r.Header.Set("Content-Type", "application/json")
	p := TokenParams(r, body)
	if v, _ := p.Str("job_token"); v != "glcbt-1" || p.Has("token") || p.Has("private_token") || p.Has("a") {
		t.Fatalf("token params: %+v", p.body)
	}
	allocated := func(f func()) uint64 {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		f()
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	tokens := allocated(func() { TokenParams(r, body) })
	whole := allocated(func() { ParseParams(r, body) })
	if tokens > 4*uint64(len(body)) || whole < 4*tokens {
		t.Fatalf("a %d-byte body: TokenParams allocated %d bytes, ParseParams %d", len(body), tokens, whole)
	}
	// Forms too give their token parameters only, the last of repeated ones.
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	p = TokenParams(r, []byte("name=x&job_token=a&job_token=b"))
	if v, _ := p.Str("job_token"); v != "b" || p.Has("name") {
		t.Fatalf("form token params: %+v", p.body)
	}
}

// What the path, query and headers show is refused before the body is read
// or anyone authenticated, as GitLab's middleware and Grape's formatter do.
func TestRequestHeadOK(t *testing.T) {
	for _, tt := range []struct {
		target, ctype, body string
		status              int // 0: ok
	}{
		{"/api/v4/x?a=1", "", "", 0},
		{"/api/v4/x", "application/json", "{}", 0},
		{"/api/v4/x", "multipart/form-data; boundary=B", "--B--", 0},
		{"/api/v4/x?search=%zz", "", "", 400},
		{"/api/v4/x", "text/plain", "x", 415},
		{"/api/v4/x", "", "{}", 415},
		{"/api/v4/x?search=%zz", "text/plain", "x", 400}, // the middleware first
	} {
		r := httptest.NewRequest("POST", tt.target, strings.NewReader(tt.body))
		if tt.ctype != "" {
			r.Header.Set("Content-Type", tt.ctype)
		}
		w := httptest.NewRecorder()
		if ok := RequestHeadOK(w, r); ok != (tt.status == 0) || (!ok && w.Code != tt.status) {
			t.Errorf("%s %q: ok %v, %d %s", tt.target, tt.ctype, ok, w.Code, w.Body)
		}
	}
}
