// Package envapi is glenv's GitLab-compatible Environments API: it answers
// /api/v4/projects/:id/environments… as GitLab does (PROTOCOL.md §2, §3.4),
// over glenv's own environments, so that tools written for GitLab (client-go,
// python-gitlab, glab, Terraform, curl in CI jobs) list, create, stop and
// clean up glenv environments unchanged. Status codes, error bodies, entity
// fields and pagination headers follow GitLab's code; where glenv cannot
// know a GitLab fact it leaves the field out rather than invent it.
//
// It reads and writes through the store and the job queue only: it must not
// call GitLab or run processes (stopping one is a job). Its one periodic job
// (cleanup.go) deletes the review apps DELETE …/review_apps scheduled, once
// due. The rules come from GitLab's source, named in the comments; the
// golden cases in testdata/golden hold glenv and the double to them.
package envapi

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/glenv/glenv/internal/auth"
	"github.com/glenv/glenv/internal/gitlabapi"
	"github.com/glenv/glenv/internal/jobs"
	"github.com/glenv/glenv/internal/store"
)

// maxBody bounds a request body: the largest field GitLab accepts here is a
// 10,000-character description (40 KB in UTF-8, 60 KB as JSON escapes).
// Decoding JSON costs a multiple of its size, so the bound stays small.
const maxBody = 256 << 10

type handler struct {
	store  *store.Store
	queue  *jobs.Queue
	log    *slog.Logger
	envURL func(store.Environment) string
	routes gitlabapi.Router[func(*request)]
	auth   *auth.Service
	// authReaders holds a place per body being read for an unknown caller.
	authReaders chan struct{}
}

// New returns the handler for /api/v4/. envURL gives the URL glenv serves an
// environment at; GitLab's answers no longer show it (external_url is the
// user's own value or null, issue 15), so it is kept only for callers.
func New(s *store.Store, q *jobs.Queue, log *slog.Logger, envURL func(store.Environment) string) http.Handler {
	return NewWithAuth(s, q, log, envURL, &auth.Service{Store: s, Log: log})
}

// NewWithAuth is New with the server's authentication (internal/auth):
// scopes, roles, GitLab-derived roles and CI job tokens.
func NewWithAuth(s *store.Store, q *jobs.Queue, log *slog.Logger, envURL func(store.Environment) string, a *auth.Service) http.Handler {
	if log == nil {
		log = slog.Default()
	}
	h := &handler{store: s, queue: q, log: log, envURL: envURL, auth: a, authReaders: make(chan struct{}, authBodyReaders)}
	h.routes = h.routeTable()
	return h
}

// request is one API call being answered.
type request struct {
	w    http.ResponseWriter
	r    *http.Request
	vars map[string]string
	p    *gitlabapi.Params
}

func (rq *request) pathInt(name string) (int64, bool) { return gitlabapi.PathInt(rq.w, rq.vars, name) }

// ServeHTTP answers GitLab's CORS (a preflight here) and routes like Grape:
// an unknown path or method is 404, before authentication; then the caller
// is found, the body parsed, and the endpoint runs. A caller with a token
// in a header or the query is known before any body is read (an
// unauthenticated client must not hold a connection open by sending its
// body slowly); the body is read first only when nothing else can carry
// the token, and then must arrive within authBodyWithin.
//
// GitLab's stack around Grape (headers, CORS, Rails' ETag) is
// gitlabapi.Around's.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	gitlabapi.Around(w, r, func(answer http.ResponseWriter) { h.serve(answer, w, r) })
}

// serve answers r through w; conn is the connection's own writer, which
// reads of the body and their deadlines need.
func (h *handler) serve(w, conn http.ResponseWriter, r *http.Request) {
	handle, vars, ok := h.routes.Find(w, r)
	if !ok {
		return
	}
	// What GitLab refuses before its API authenticates anyone, and glenv
	// can tell without reading the body: a malformed path or query
	// (HandleMalformedStrings) and a body of a type Grape does not parse
	// (its formatter).
	if !gitlabapi.RequestHeadOK(w, r) {
		return
	}
	in := &input{w: w, conn: conn, r: r, readers: h.authReaders}
	who, ok := h.auth.V4Authenticate(w, r, in.credentials)
	if !ok {
		return
	}
	r = r.WithContext(auth.WithPrincipal(r.Context(), who))
	p, ok := in.params()
	if !ok {
		return
	}
	handle(&request{w: w, r: r, vars: vars, p: p})
}

// authBodyWithin bounds the wait, before glenv knows the caller, for a
// body that may carry its token (a CI job's form or JSON with job_token):
// seconds are plenty for such a body, and a client that never sends it
// holds its connection no longer (the 30 s server.controlPlaneBodyWithin
// are for bodies of known callers).
const authBodyWithin = 3 * time.Second

// authBodyMax bounds what glenv reads before it knows the caller: a token
// and an environment's fields fit many times over. A larger body with no
// token in the headers or the query is refused (401) unread.
const authBodyMax = 64 << 10

// authBodyReaders bounds how many bodies of unknown callers are read at
// once (each within authBodyWithin); past it such a caller is refused, so
// anonymous clients cannot hold more than authBodyReaders × authBodyMax.
const authBodyReaders = 32

// input is a call's parameters; its body is read once, before or after
// authentication, and parsed once, after it.
type input struct {
	w        http.ResponseWriter // answers
	conn     http.ResponseWriter // the connection's writer: body limits and deadlines
	r        *http.Request
	readers  chan struct{} // the handler's authBodyReaders
	read     bool
	body     []byte
	readErr  error
	parsed   bool
	p        *gitlabapi.Params
	parseErr error
}

// load reads the body, up to maxBody, unless credentials read it already.
func (in *input) load() {
	if in.read {
		return
	}
	in.read = true
	in.body, in.readErr = io.ReadAll(http.MaxBytesReader(in.conn, in.r.Body, maxBody))
}

// params are the call's parameters for the endpoint; a body over maxBody
// (or cut off) is GitLab's 413; a malformed one or one of another type is
// refused as gitlabapi.ReadParams refuses it.
func (in *input) params() (*gitlabapi.Params, bool) {
	in.load()
	if in.readErr != nil {
		gitlabapi.RequestTooLarge(in.w)
		return nil, false
	}
	if !in.parsed {
		in.parsed = true
		in.p, in.parseErr = gitlabapi.ParseParams(in.r, in.body)
	}
	if in.parseErr != nil {
		gitlabapi.Refuse(in.w, in.parseErr)
		return nil, false
	}
	return in.p, true
}

// credentials are the parameters auth.V4Authenticate looks for a token in
// when the headers and the query have none: the token parameters of a form
// (URL-encoded or multipart) or JSON body, the bodies Rails parses into the
// params GitLab's auth finders read (ActionDispatch::Request#params). Such
// a body is read only up to authBodyMax, within authBodyWithin, by at most
// authBodyReaders callers at once, and only its token parameters are
// parsed (gitlabapi.TokenParams): an anonymous body must not cost glenv
// more than its own size. Otherwise there are none, and the caller is not
// authenticated.
func (in *input) credentials() *gitlabapi.Params {
	r := in.r
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 || r.ContentLength > authBodyMax || !gitlabapi.ParsesBody(r) {
		return nil
	}
	select {
	case in.readers <- struct{}{}:
		defer func() { <-in.readers }()
	default:
		return nil
	}
	rc := http.NewResponseController(in.conn)
	_ = rc.SetReadDeadline(time.Now().Add(authBodyWithin))
	body, err := io.ReadAll(io.LimitReader(r.Body, authBodyMax+1))
	if err != nil || len(body) > authBodyMax {
		return nil // the deadline stays: the connection closes after the 401
	}
	// Lifted once the body is read, as server.bodyDeadline does: the
	// connection's background read must not time out while the call runs.
	_ = rc.SetReadDeadline(time.Time{})
	in.read, in.body = true, body
	return gitlabapi.TokenParams(r, body)
}

// project is a GitLab project as glenv knows it: the integrations that
// connect it, oldest first.
type project struct {
	integrations []store.Integration
	ids          []int64
	entity       *gitlabapi.BasicProjectDetails // built once per request, shown in every environment
}

// project resolves :id (numeric id or URL-encoded path) to the integrations
// connecting it; none is GitLab's 404 Project Not Found. The caller must
// be allowed what the method asks (auth.V4Allow).
func (h *handler) project(rq *request) (*project, bool) { return h.projectFor(rq, h.auth.V4Allow) }

// projectToRead is project for a route that finds the environment before
// it checks the right to change it (then may), as GitLab's stop and
// delete do (lib/api/environments.rb:195-198, 220-224: authorize!
// :read_environment, find, then authorize! on the environment).
func (h *handler) projectToRead(rq *request) (*project, bool) {
	return h.projectFor(rq, func(w http.ResponseWriter, r *http.Request, ins []store.Integration) (*http.Request, bool) {
		return h.auth.V4AllowAction(w, r, ins, auth.ActRead)
	})
}

// may says whether the caller, allowed to read p, may also change its
// environments.
func (h *handler) may(rq *request, p *project) bool {
	return h.auth.V4May(rq.r, p.integrations, auth.ActWrite)
}

func (h *handler) projectFor(rq *request, allow func(http.ResponseWriter, *http.Request, []store.Integration) (*http.Request, bool)) (*project, bool) {
	id := rq.vars["id"]
	var ins []store.Integration
	var err error
	if n, perr := strconv.ParseInt(id, 10, 64); perr == nil {
		ins, err = store.IntegrationsForProject(rq.r.Context(), h.store.Reader(), n)
	} else {
		ins, err = store.IntegrationsForProjectPath(rq.r.Context(), h.store.Reader(), id)
	}
	if err != nil {
		h.fail(rq, "find project "+id, err)
		return nil, false
	}
	if len(ins) == 0 {
		gitlabapi.NotFound(rq.w, "Project")
		return nil, false
	}
	allowed, ok := allow(rq.w, rq.r, ins)
	if !ok {
		return nil, false
	}
	rq.r = allowed
	p := &project{integrations: ins}
	for _, in := range ins {
		p.ids = append(p.ids, in.ID)
	}
	return p, true
}

// environment finds a live environment of the project by id; GitLab answers
// an id of another project exactly like an unknown one.
func (h *handler) environment(rq *request, p *project, id int64) (store.Environment, bool) {
	e, err := store.GetEnvironmentByID(rq.r.Context(), h.store.Reader(), id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !p.owns(e)) {
		environmentNotFound(rq.w)
		return e, false
	}
	if err != nil {
		h.fail(rq, "find environment", err)
		return e, false
	}
	return e, true
}

// attrs returns the GitLab attributes glenv keeps for one environment.
func (h *handler) attrs(rq *request, e store.Environment) (store.EnvAPIAttrs, bool) {
	a, err := store.EnvAPIAttrsOf(rq.r.Context(), h.store.Reader(), e)
	if err != nil {
		h.fail(rq, "read environment attributes", err)
		return store.EnvAPIAttrs{}, false
	}
	return a, true
}

// environmentNotFound answers an unknown environment id, or one of another
// project, as GitLab's `user_project.environments.find` miss does:
// {"message":"404 Not found"} (lib/api/environments.rb:124, 195, 220, 278).
func environmentNotFound(w http.ResponseWriter) { gitlabapi.RecordNotFound(w) }

func (p *project) owns(e store.Environment) bool {
	for _, id := range p.ids {
		if e.IntegrationID == id {
			return true
		}
	}
	return false
}

// integration returns the project's integration that e belongs to.
func (p *project) integration(e store.Environment) store.Integration {
	for _, in := range p.integrations {
		if in.ID == e.IntegrationID {
			return in
		}
	}
	return p.integrations[0]
}

// fail logs an unexpected error and answers GitLab's 500.
func (h *handler) fail(rq *request, what string, err error) {
	h.log.Error("gitlab-compatible api", "what", what, "path", rq.r.URL.Path, "err", err)
	gitlabapi.InternalError(rq.w)
}
