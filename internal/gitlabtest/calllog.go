package gitlabtest

import (
	"net/http"
	"slices"
	"time"
)

// Call is one request the double received, faulted and throttled ones
// included.
type Call struct {
	Method string
	Path   string // escaped, as received: /api/v4/projects/group%2Fapp
	Query  string // raw query string
	Status int
	Body   []byte
	At     time.Time
}

// Calls returns a copy of the call log in the order the answers were
// completed; At is when each request arrived.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.calls)
	for i := range out {
		out[i].Body = slices.Clone(out[i].Body)
	}
	return out
}

// ResetCalls empties the call log.
func (s *Server) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = nil
}

func (s *Server) logCall(r *http.Request, path string, body []byte, rec *recorder, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, Call{
		Method: r.Method, Path: path, Query: r.URL.RawQuery,
		Status: rec.status, Body: body, At: at,
	})
}

// recorder remembers the status written; a call cut short before any
// answer (a client gone during a delay) is logged with status 0.
type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}
