// Package web is glenv's dashboard: server-rendered pages (html/template,
// assets embedded in the binary) for environments, activities,
// integrations and administration, live updates over Server-Sent Events,
// and opening an environment from a GitLab URL.
//
// It holds no permission logic of its own: reads are checked with the same
// auth.Service calls /api/v1 makes, and every change (environment actions,
// tokens, integrations) is sent through the /api/v1 handler itself, so its
// guards, CSRF check, audit trail and messages apply unchanged. It never
// changes state directly.
package web

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/glenv/glenv/internal/auth"
	"github.com/glenv/glenv/internal/feedback"
	"github.com/glenv/glenv/internal/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets/*
var assetFS embed.FS

// Web serves the dashboard.
type Web struct {
	Store *store.Store
	Auth  *auth.Service
	// API is the /api/v1 handler every change goes through.
	API http.Handler
	// Hub is the change feed of environment states.
	Hub *Hub
	Log *slog.Logger
	// PublicURL is glenv's own URL; EnvURL where an environment is served.
	PublicURL string
	EnvURL    func(store.Environment) string
	// AppLog is the path of an environment's app output (nil: none kept).
	AppLog func(envID int64) string
	// Health is the integrations' last hook and token check (may be nil).
	Health *feedback.Health
	// Heartbeat is how often a quiet event stream sends a comment (default 15 s).
	Heartbeat time.Duration
	// LogPoll is how often a followed log is read again (default 250 ms).
	LogPoll time.Duration

	pages map[string]*template.Template
}

// Init parses the templates; Routes calls it.
func (w *Web) Init() error {
	if w.Log == nil {
		w.Log = slog.Default()
	}
	if w.Heartbeat == 0 {
		w.Heartbeat = 15 * time.Second
	}
	if w.LogPoll == 0 {
		w.LogPoll = 250 * time.Millisecond
	}
	base, err := template.New("base").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/parts.html")
	if err != nil {
		return err
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return err
	}
	w.pages = map[string]*template.Template{}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "layout" || name == "parts" {
			continue
		}
		t, err := template.Must(base.Clone()).ParseFS(templateFS, n)
		if err != nil {
			return fmt.Errorf("template %s: %w", n, err)
		}
		w.pages[name] = t
	}
	return nil
}

// Routes adds the dashboard's routes to mux. text answers / for clients
// that do not ask for HTML (curl, scripts), as / always has.
func (w *Web) Routes(mux *http.ServeMux, text http.HandlerFunc) error {
	if err := w.Init(); err != nil {
		return err
	}
	mux.Handle("GET /assets/", assets())
	mux.HandleFunc("GET /{$}", func(rw http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.Header.Get("Accept"), "text/html") && text != nil {
			text(rw, r)
			return
		}
		w.page(w.environments)(rw, r)
	})
	mux.HandleFunc("GET /signin", w.signIn)
	mux.HandleFunc("GET /environments/{integration}/{name...}", w.page(w.environment))
	mux.HandleFunc("POST /environments/{id}/actions/{op}", w.page(w.action))
	mux.HandleFunc("GET /activities", w.page(w.activities))
	mux.HandleFunc("GET /activities/{id}", w.page(w.activity))
	mux.HandleFunc("GET /integrations", w.page(w.integrations))
	mux.HandleFunc("GET /integrations/new", w.page(w.newIntegration))
	mux.HandleFunc("POST /integrations/new", w.page(w.addIntegration))
	mux.HandleFunc("GET /integrations/{name}", w.page(w.integration))
	mux.HandleFunc("GET /tokens", w.page(w.tokens))
	mux.HandleFunc("POST /tokens", w.page(w.createToken))
	mux.HandleFunc("POST /tokens/{id}/revoke", w.page(w.revokeToken))
	mux.HandleFunc("GET /admin/{what}", w.page(w.admin))
	mux.HandleFunc("GET /open", w.page(w.open))
	mux.HandleFunc("GET /events/environments", w.stream(w.environmentEvents))
	mux.HandleFunc("GET /events/activities/{id}", w.stream(w.activityLogEvents))
	mux.HandleFunc("GET /events/applog/{id}", w.stream(w.appLogEvents))
	return nil
}

// request is one page request: the caller and what the layout shows.
type request struct {
	r *http.Request
	p auth.Principal
	w *Web
}

func (q *request) ctx() context.Context { return q.r.Context() }

// csrf is the session's token forms carry ("" for API-token callers, who
// are not exposed to CSRF).
func (q *request) csrf() string {
	if q.p.Session != nil {
		return q.p.Session.CSRF
	}
	return ""
}

// pageView is what every page template receives.
type pageView struct {
	Title string
	Who   string
	CSRF  string
	Admin bool
	Path  string
	Data  any
}

type pageFunc func(rw http.ResponseWriter, q *request)

// page authenticates the caller: a browser without a session gets the
// sign-in page (and comes back here after signing in).
func (w *Web) page(h pageFunc) http.HandlerFunc {
	return func(rw http.ResponseWriter, r *http.Request) {
		p, err := w.Auth.Authenticate(r.Context(), r, false)
		if err != nil {
			if errors.Is(err, auth.ErrNoCredentials) || errors.Is(err, auth.ErrBadSession) || errors.Is(err, auth.ErrBadToken) || errors.Is(err, auth.ErrTokenExpired) {
				if r.Method != http.MethodGet {
					w.fail(rw, r, http.StatusUnauthorized, "Sign in first", err.Error())
					return
				}
				http.Redirect(rw, r, "/signin?return_to="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			w.Log.Error("dashboard: authenticate", "err", err)
			w.fail(rw, r, http.StatusInternalServerError, "Something went wrong", "glenv could not check who you are; the server log says why.")
			return
		}
		h(rw, &request{r: r.WithContext(auth.WithPrincipal(r.Context(), p)), p: p, w: w})
	}
}

// render answers a page.
func (w *Web) render(rw http.ResponseWriter, q *request, code int, name, title string, data any) {
	t, ok := w.pages[name]
	if !ok {
		panic("no template " + name)
	}
	v := pageView{Title: title, Data: data, Path: q.r.URL.Path, Who: q.p.Name, CSRF: q.csrf(), Admin: auth.Can(q.p, auth.ActAdmin, auth.Root)}
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, "layout", v); err != nil {
		w.Log.Error("dashboard: render", "page", name, "err", err)
		http.Error(rw, "render "+name+": "+err.Error(), http.StatusInternalServerError)
		return
	}
	rw.Header().Set("Content-Type", "text/html; charset=utf-8")
	rw.Header().Set("Cache-Control", "no-store")
	rw.Header().Set("X-Frame-Options", "DENY")
	rw.WriteHeader(code)
	_, _ = rw.Write([]byte(b.String()))
}

// message answers a page with a title and one paragraph.
func (w *Web) message(rw http.ResponseWriter, q *request, code int, title, msg string) {
	w.render(rw, q, code, "message", title, struct{ Message string }{msg})
}

// fail answers a message page before anyone is known.
func (w *Web) fail(rw http.ResponseWriter, r *http.Request, code int, title, msg string) {
	w.message(rw, &request{r: r, w: w}, code, title, msg)
}

// signIn shows one button per registered GitLab host.
func (w *Web) signIn(rw http.ResponseWriter, r *http.Request) {
	returnTo, err := auth.CleanReturnTo(r.URL.Query().Get("return_to"))
	if err != nil {
		returnTo = "/"
	}
	hosts, err := store.ListGitLabHosts(r.Context(), w.Store.Reader())
	if err != nil {
		w.Log.Error("dashboard: list hosts", "err", err)
	}
	type button struct{ Host, Href string }
	var out []button
	for _, h := range hosts {
		out = append(out, button{h.Host, "/auth/gitlab?host=" + url.QueryEscape(h.Host) + "&return_to=" + url.QueryEscape(returnTo)})
	}
	w.render(rw, &request{r: r, w: w}, http.StatusOK, "signin", "Sign in", out)
}

// integrationOf is the integration an environment or activity belongs to;
// a detached environment's former integration counts as root's, so only
// root's readers see it (as /api/v1 decides).
func (w *Web) integrationOf(ctx context.Context, name string) store.Integration {
	in, err := store.GetIntegration(ctx, w.Store.Reader(), name)
	if err != nil {
		return store.Integration{Name: name, Space: auth.Root}
	}
	return in
}

// can is /api/v1's decision for action on an integration's environments.
func (q *request) can(action auth.Action, in store.Integration) bool {
	ok, err := q.w.Auth.CanIntegration(q.ctx(), q.p, action, in)
	if err != nil {
		q.w.Log.Debug("dashboard: access check", "integration", in.Name, "err", err)
	}
	return ok
}
