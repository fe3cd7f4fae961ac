package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"strconv"

	"github.com/glenv/glenv/internal/auth"
	"github.com/glenv/glenv/internal/store"
)

// principal is the caller of r (set by Handler).
func principal(r *http.Request) auth.Principal {
	p, _ := auth.From(r.Context())
	return p
}

// isAdmin: an admin of root, i.e. of everything.
func isAdmin(r *http.Request) bool { return auth.Can(principal(r), auth.ActAdmin, auth.Root) }

// integrationSpace is the space an integration (or a detached environment's
// former integration) belongs to: only root's admins see the detached.
func (a *API) integrationOf(r *http.Request, name string) store.Integration {
	in, err := store.GetIntegration(r.Context(), a.Store.Reader(), name)
	if err != nil {
		return store.Integration{Name: name, Space: auth.Root}
	}
	return in
}

// allowed decides action on an integration's environments (glenv's roles,
// then the caller's GitLab membership).
func (a *API) allowed(r *http.Request, action auth.Action, in store.Integration) bool {
	ok, err := a.Auth.CanIntegration(r.Context(), principal(r), action, in)
	if err != nil {
		a.Log.Debug("access check", "integration", in.Name, "err", err)
	}
	return ok
}

// refuse answers 403 saying which role is needed where.
func refuse(w http.ResponseWriter, r *http.Request, action auth.Action, what, space string) {
	p := principal(r)
	msg := fmt.Sprintf("%s needs the %s role in space %q (or the matching GitLab role on the project); ask an admin of that space (glenv user:grant)", what, action, space)
	if action != auth.ActRead && p.Scope == store.ScopeReadAPI {
		msg = what + " needs a token with the api scope; this one has read_api"
	}
	writeErr(w, http.StatusForbidden, Error{Error: msg})
}

// guardIntegration lets h run only when the caller may do action on the
// integration named by the path.
func (a *API) guardIntegration(action auth.Action, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		in, err := store.GetIntegration(r.Context(), a.Store.Reader(), name)
		if err != nil {
			a.fail(w, r, "integration "+name, err)
			return
		}
		if !a.allowed(r, action, in) {
			refuse(w, r, action, "integration "+name, in.Space)
			return
		}
		if action == auth.ActAdmin && !a.spaceInBody(w, r, "integration "+name) {
			return
		}
		if action == auth.ActAdmin {
			r = allowChange(r, name)
		}
		if r.Method == http.MethodGet {
			h(w, r)
			return
		}
		a.audited(w, r, "integration:"+integrationVerb(r), "integration:"+name, h)
	}
}

// integrationVerb names a change of an integration for the audit trail.
func integrationVerb(r *http.Request) string {
	switch {
	case r.Method == http.MethodPatch:
		return "update"
	case r.Method == http.MethodDelete:
		return "delete"
	case r.Method == http.MethodPost && r.PathValue("name") == "":
		return "add"
	}
	return path.Base(r.URL.Path)
}

// audited runs h and records the change with the status it answered.
func (a *API) audited(w http.ResponseWriter, r *http.Request, action, target string, h http.HandlerFunc) {
	rec := &statusRecorder{ResponseWriter: w}
	h(rec, r)
	a.Auth.Audit(r.Context(), r, principal(r), action, target, http.StatusText(rec.status))
}

// guardAddIntegration: adding needs admin in the space the body names
// (default root), which must exist.
func (a *API) guardAddIntegration(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if a.spaceInBody(w, r, "adding an integration") {
			var body struct {
				Name          string `json:"name"`
				GitLabProject string `json:"gitlab_project"`
			}
			_ = json.Unmarshal(peekBody(r), &body)
			a.audited(w, allowChange(r, ""), "integration:add", "integration:"+body.Name, h)
		}
	}
}

// spaceInBody checks the space a JSON body names (if any, else root on
// add): it must exist and the caller must administer it. The body is put
// back for the handler.
func (a *API) spaceInBody(w http.ResponseWriter, r *http.Request, what string) bool {
	raw := peekBody(r)
	var body struct {
		Space *string `json:"space"`
	}
	_ = json.Unmarshal(raw, &body)
	space := auth.Root
	if body.Space == nil && r.Method != http.MethodPost {
		return true
	}
	if body.Space != nil {
		space = *body.Space
	}
	if _, err := store.GetSpace(r.Context(), a.Store.Reader(), space); errors.Is(err, store.ErrNotFound) {
		writeErr(w, http.StatusBadRequest, Error{Error: fmt.Sprintf("space: %q does not exist; create it with glenv space:add %s --parent root", space, space), Field: "space"})
		return false
	}
	if !auth.Can(principal(r), auth.ActAdmin, space) {
		refuse(w, r, auth.ActAdmin, what, space)
		return false
	}
	return true
}

// guardEnvironment lets h run only when the caller may do action on the
// environment named by the path.
func (a *API) guardEnvironment(action auth.Action, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r)
		if err != nil {
			a.fail(w, r, "environment", err)
			return
		}
		e, err := store.GetEnvironmentByID(r.Context(), a.Store.Reader(), id)
		if err != nil {
			a.fail(w, r, fmt.Sprintf("environment %d", id), err)
			return
		}
		in := a.integrationOf(r, e.IntegrationName)
		if !a.allowed(r, action, in) {
			refuse(w, r, action, fmt.Sprintf("environment %s of integration %s", e.Name, in.Name), in.Space)
			return
		}
		if action == auth.ActRead {
			h(w, r)
			return
		}
		a.audited(w, r, "environment:"+opName(r), fmt.Sprintf("environment:%s/%s", e.IntegrationName, e.Name), h)
	}
}

func opName(r *http.Request) string {
	if r.Method == http.MethodDelete {
		return "delete"
	}
	return r.PathValue("op")
}

// guardActivity and guardDelivery: reading needs read on the integration.
func (a *API) guardActivity(h http.HandlerFunc) http.HandlerFunc {
	return a.guardByIntegrationName("activity", func(r *http.Request, id int64) (string, error) {
		act, err := store.GetActivity(r.Context(), a.Store.Reader(), id)
		return act.IntegrationName, err
	}, h)
}

func (a *API) guardDelivery(h http.HandlerFunc) http.HandlerFunc {
	return a.guardByIntegrationName("delivery", func(r *http.Request, id int64) (string, error) {
		d, err := store.GetDelivery(r.Context(), a.Store.Reader(), id)
		return d.IntegrationName, err
	}, h)
}

func (a *API) guardByIntegrationName(what string, find func(*http.Request, int64) (string, error), h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r)
		if err != nil {
			a.fail(w, r, what, err)
			return
		}
		name, err := find(r, id)
		if err != nil {
			a.fail(w, r, what+" "+strconv.FormatInt(id, 10), err)
			return
		}
		in := a.integrationOf(r, name)
		if !a.allowed(r, auth.ActRead, in) {
			refuse(w, r, auth.ActRead, fmt.Sprintf("%s %d", what, id), in.Space)
			return
		}
		h(w, r)
	}
}

// readable filters names of integrations down to those the caller may read.
func (a *API) readable(r *http.Request) func(integration string) bool {
	seen := map[string]bool{}
	return func(name string) bool {
		ok, done := seen[name]
		if !done {
			ok = a.allowed(r, auth.ActRead, a.integrationOf(r, name))
			seen[name] = ok
		}
		return ok
	}
}

// statusRecorder remembers the status a handler answered, for the audit trail.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// peekBody reads up to 1 MiB of the body and puts it back for the handler.
func peekBody(r *http.Request) []byte {
	raw, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	r.Body = io.NopCloser(bytes.NewReader(raw))
	return raw
}

type changeKey struct{}

// allowChange records that the caller administers integration name's space
// ("" for a new integration in the space its body names).
func allowChange(r *http.Request, name string) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), changeKey{}, name))
}

// changeAllowed reports whether a guard allowed changing integration name.
func changeAllowed(r *http.Request, name string) bool {
	v, ok := r.Context().Value(changeKey{}).(string)
	return ok && v == name
}
