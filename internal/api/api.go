// Package api is glenv's native JSON API under /api/v1, the one the CLI
// uses. Handlers check input, call the integration service, the store and the
// queue, and answer JSON; errors name the field and the rule. It holds no
// business rules of its own.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/glenv/glenv/internal/auth"
	"github.com/glenv/glenv/internal/integration"
	"github.com/glenv/glenv/internal/jobs"
	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/variables"
)

// API serves /api/v1.
type API struct {
	Store        *store.Store
	Auth         *auth.Service
	Integrations *integration.Service
	Queue        *jobs.Queue
	Log          *slog.Logger
	// EnvURL returns an environment's URL.
	EnvURL func(store.Environment) string
	// AppLog returns the path of an environment's app output (nil: none kept).
	AppLog func(envID int64) string
	// Variables manages variables (nil: their routes answer 503).
	Variables *variables.Service
	// AppLogStream reads an environment's app output where it is not a
	// file glenv writes (--runtime kubernetes: the pod's log); follow
	// keeps the stream open while the app runs. It returns ErrNoAppLog
	// when nothing runs yet.
	AppLogStream func(ctx context.Context, env store.Environment, follow bool) (io.ReadCloser, error)
}

// Error is the body of every error answer.
type Error struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

// Handler returns the routes under /api/v1.
func (a *API) Handler() http.Handler {
	if a.Auth == nil {
		// Tokens only (tests that build an API by hand): no sessions'
		// secrets, no GitLab-derived roles.
		a.Auth = &auth.Service{Store: a.Store, Log: a.Log}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/me", a.me)
	mux.HandleFunc("DELETE /api/v1/me/connections/{host}", a.disconnect)
	mux.HandleFunc("POST /api/v1/integrations", a.guardAddIntegration(a.addIntegration))
	mux.HandleFunc("GET /api/v1/integrations", a.listIntegrations)
	mux.HandleFunc("GET /api/v1/integrations/{name}", a.guardIntegration(auth.ActRead, a.getIntegration))
	mux.HandleFunc("PATCH /api/v1/integrations/{name}", a.guardIntegration(auth.ActAdmin, a.updateIntegration))
	mux.HandleFunc("DELETE /api/v1/integrations/{name}", a.guardIntegration(auth.ActAdmin, a.deleteIntegration))
	mux.HandleFunc("POST /api/v1/integrations/{name}/validate", a.guardIntegration(auth.ActAdmin, a.validateIntegration))
	mux.HandleFunc("POST /api/v1/integrations/{name}/reconcile", a.guardIntegration(auth.ActWrite, a.reconcileIntegration))
	mux.HandleFunc("GET /api/v1/environments", a.listEnvironments)
	mux.HandleFunc("GET /api/v1/environments/{id}", a.guardEnvironment(auth.ActRead, a.getEnvironment))
	mux.HandleFunc("POST /api/v1/environments/{id}/{op}", a.guardEnvironment(auth.ActWrite, a.environmentOp))
	mux.HandleFunc("GET /api/v1/environments/{id}/logs", a.guardEnvironment(auth.ActRead, a.appLog))
	mux.HandleFunc("DELETE /api/v1/environments/{id}", a.guardEnvironment(auth.ActWrite, a.deleteEnvironment))
	mux.HandleFunc("GET /api/v1/activities", a.listActivities)
	mux.HandleFunc("GET /api/v1/activities/{id}", a.guardActivity(a.getActivity))
	mux.HandleFunc("GET /api/v1/activities/{id}/log", a.guardActivity(a.activityLog))
	mux.HandleFunc("GET /api/v1/deliveries", a.listDeliveries)
	mux.HandleFunc("GET /api/v1/deliveries/{id}", a.guardDelivery(a.getDelivery))
	mux.HandleFunc("POST /api/v1/tokens", a.createToken)
	mux.HandleFunc("GET /api/v1/tokens", a.listTokens)
	mux.HandleFunc("DELETE /api/v1/tokens/{id}", a.revokeToken)
	a.peopleRoutes(mux)
	a.variableRoutes(mux)
	mux.HandleFunc("/api/v1/", func(w http.ResponseWriter, r *http.Request) {
		writeErr(w, http.StatusNotFound, Error{Error: fmt.Sprintf("no API route %s %s: see the README for /api/v1", r.Method, r.URL.Path)})
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := a.Auth.Authenticate(r.Context(), r, false)
		if err != nil {
			if errors.Is(err, auth.ErrNoCredentials) || errors.Is(err, auth.ErrBadToken) || errors.Is(err, auth.ErrTokenExpired) || errors.Is(err, auth.ErrBadSession) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="glenv"`)
				writeErr(w, http.StatusUnauthorized, Error{Error: "missing or invalid API token or session: " + err.Error()})
				return
			}
			a.fail(w, r, "authentication", err)
			return
		}
		if err := a.Auth.CheckCSRF(p, r); err != nil {
			writeErr(w, http.StatusForbidden, Error{Error: err.Error()})
			return
		}
		mux.ServeHTTP(w, r.WithContext(auth.WithPrincipal(r.Context(), p)))
	})
}

// adminOnly lets h run for admins of root only.
func (a *API) adminOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !isAdmin(r) {
			writeErr(w, http.StatusForbidden, Error{Error: "this needs an admin: an admin API token, or a user made admin with glenv user:update USER --admin"})
			return
		}
		h(w, r)
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeErr(w http.ResponseWriter, code int, e Error) { writeJSON(w, code, e) }

// fail maps an error onto a status and a body that says what to do.
func (a *API) fail(w http.ResponseWriter, r *http.Request, what string, err error) {
	var fe *integration.FieldError
	var afe *auth.FieldError
	switch {
	case errors.As(err, &fe):
		writeErr(w, http.StatusBadRequest, Error{Error: fe.Error(), Field: fe.Field})
	case errors.As(err, &afe):
		writeErr(w, http.StatusBadRequest, Error{Error: afe.Error(), Field: afe.Field})
	case errors.Is(err, auth.ErrGitLab):
		writeErr(w, http.StatusBadGateway, Error{Error: err.Error()})
	case errors.Is(err, store.ErrNotFound):
		writeErr(w, http.StatusNotFound, Error{Error: what + " not found"})
	case errors.Is(err, store.ErrConflict), errors.Is(err, store.ErrStale):
		writeErr(w, http.StatusConflict, Error{Error: err.Error()})
	case errors.Is(err, errBadRequest):
		writeErr(w, http.StatusBadRequest, Error{Error: err.Error()})
	default:
		status := http.StatusInternalServerError
		msg := err.Error()
		if isGitLabError(err) {
			status = http.StatusBadGateway
		} else {
			a.Log.Error("api", "path", r.URL.Path, "err", err)
		}
		writeErr(w, status, Error{Error: msg})
	}
}

var errBadRequest = errors.New("bad request")

// decode reads a JSON body strictly: unknown fields are errors that name them.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%w: body must be a JSON object", errBadRequest)
		}
		return fmt.Errorf("%w: body: %v", errBadRequest, err)
	}
	return nil
}

func pathID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("%w: id %q must be a positive number", errBadRequest, r.PathValue("id"))
	}
	return id, nil
}

func queryInt(r *http.Request, name string, def, max int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > max {
		return 0, fmt.Errorf("%w: %s must be a number from 1 to %d", errBadRequest, name, max)
	}
	return n, nil
}
