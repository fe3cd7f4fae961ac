package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
)

// apiAnswer is what /api/v1 answered a call made for a page.
type apiAnswer struct {
	Status int
	Body   []byte
}

// OK reports a 2xx answer.
func (a apiAnswer) OK() bool { return a.Status >= 200 && a.Status < 300 }

// Message is the error /api/v1 gave (its "error" field), or the status.
func (a apiAnswer) Message() string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(a.Body, &e) == nil && e.Error != "" {
		return e.Error
	}
	return fmt.Sprintf("glenv answered %d %s", a.Status, http.StatusText(a.Status))
}

// Decode reads a 2xx answer's JSON.
func (a apiAnswer) Decode(v any) error { return json.Unmarshal(a.Body, v) }

// callAPI sends a call to the /api/v1 handler as the page's caller: same
// cookies or token, same address, and the form's CSRF token as the header
// /api/v1 checks. The form's own Origin is not passed on, so a form
// without the session's token is refused whatever page posted it.
func (q *request) callAPI(method, path string, body any, csrf string) apiAnswer {
	var rd io.Reader = http.NoBody
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return apiAnswer{Status: http.StatusInternalServerError, Body: []byte(`{"error":"encode request"}`)}
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(q.ctx(), method, path, rd)
	if err != nil {
		return apiAnswer{Status: http.StatusInternalServerError}
	}
	req.RemoteAddr = q.r.RemoteAddr
	for _, h := range []string{"Cookie", "Authorization", "PRIVATE-TOKEN", "User-Agent", "X-Forwarded-For"} {
		if v := q.r.Header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if csrf != "" {
		req.Header.Set("X-CSRF-Token", csrf)
	}
	rec := httptest.NewRecorder()
	q.w.API.ServeHTTP(rec, req)
	return apiAnswer{Status: rec.Code, Body: rec.Body.Bytes()}
}
