// Package gitlabtest is an in-memory double of the GitLab REST v4 API for
// tests and benchmarks.
//
// Production code talks to it through client-go exactly as it talks to
// GitLab: the double answers with GitLab's JSON shapes, status codes,
// validation errors, pagination headers and rate-limit responses, as the
// team's protocol notes (PROTOCOL.md) and GitLab's own source describe them.
// Tests seed users, tokens, projects, branches and merge requests with the
// exported methods, inject faults, and inspect what the code under test did
// through snapshots and the call log.
//
// It must not grow behaviour GitLab does not have: a rule that is not
// modelled is left out rather than guessed. It never makes network calls of
// its own (hook tests are not delivered).
//
// GitLab's REST conventions (parameters, error bodies, pagination headers,
// routing, the Environment model's field rules) come from
// internal/gitlabapi, which glenv's GitLab-compatible API shares, and the
// environment slug from internal/slug; the double's own tests and the
// table tests in those packages hold them to GitLab's source.
package gitlabtest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/glenv/glenv/internal/gitlabapi"
)

// Server is a running GitLab double. All methods are safe for concurrent use.
type Server struct {
	// URL is the base URL without a trailing slash; pass it to
	// gitlab.WithBaseURL.
	URL string

	ts        *httptest.Server
	closeOnce sync.Once
	done      chan struct{}
	routes    gitlabapi.Router[route]

	mu        sync.Mutex
	clock     func() time.Time
	users     map[int64]*userRecord
	tokens    map[string]*tokenRecord
	projects  map[int64]*project
	ids       idSeq
	faults    []*faultState
	rate      rateLimit
	calls     []Call
	hookTests map[[2]int64][]time.Time
	oauthSt   *oauthState     // oauth.go
	jobs      map[string]*Job // jobs.go, by CI_JOB_TOKEN
}

// idSeq hands out the global ids GitLab assigns from database sequences.
type idSeq struct {
	user, token, project, hook, mr, note, env, deployment, status, pipeline int64
}

// New starts a double and stops it when the test ends.
func New(t testing.TB) *Server {
	t.Helper()
	s := NewServer()
	t.Cleanup(s.Close)
	return s
}

// NewServer starts a double for programs that are not tests; the caller
// must call Close.
func NewServer() *Server {
	s := &Server{
		done:      make(chan struct{}),
		clock:     time.Now,
		users:     map[int64]*userRecord{},
		tokens:    map[string]*tokenRecord{},
		projects:  map[int64]*project{},
		hookTests: map[[2]int64][]time.Time{},
		// Global ids start apart from per-project iids so that code mixing
		// them up fails its tests.
		ids: idSeq{mr: 1000, deployment: 500},
	}
	s.routes = s.routeTable()
	s.ts = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	s.URL = s.ts.URL
	return s
}

// Close stops the server; delayed faults still sleeping are cut short.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.done)
		s.ts.Close()
		s.RemoveRepos()
	})
}

// SetClock replaces the clock used for the timestamps of created objects,
// token expiry and the date rules of the environments API (stop_stale,
// review_apps, scheduled deletion). Rate limiting and fault reset times
// always use the wall clock, because clients sleep on them.
func (s *Server) SetClock(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clock = now
}

// now is the clock at GitLab's millisecond precision, so that a timestamp
// read back from JSON equals the stored one.
func (s *Server) now() time.Time {
	return s.clock().UTC().Truncate(time.Millisecond)
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	body, _ := io.ReadAll(r.Body)
	rec := &recorder{ResponseWriter: w}
	path := r.URL.EscapedPath()
	defer s.logCall(r, path, body, rec, at)

	if s.applyFault(rec, r, path) {
		return
	}
	if s.throttle(rec) {
		return
	}
	if s.serveOAuth(rec, r, path, body) || s.serveJob(rec, r, path) {
		return
	}
	if s.ServeGit(rec, r, path, body) {
		return
	}
	s.dispatch(rec, r, body)
}

func (s *Server) dispatch(w http.ResponseWriter, r *http.Request, body []byte) {
	gitlabapi.Around(w, r, func(answer http.ResponseWriter) { s.serveAPI(answer, r, body) })
}

// serveAPI answers a call of the REST API through w.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request, body []byte) {
	rt, vars, ok := s.routes.Find(w, r)
	if !ok {
		return
	}
	p, ok := gitlabapi.ReadParams(w, r, body)
	if !ok {
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	rq := &request{s: s, w: w, r: r, vars: vars, p: p}
	if !s.authenticate(rq, rt.scope) {
		return
	}
	rt.handle(rq)
}
