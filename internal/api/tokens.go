package api

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/glenv/glenv/internal/auth"
	"github.com/glenv/glenv/internal/integration"
	"github.com/glenv/glenv/internal/store"
)

type tokenRequest struct {
	Name string `json:"name"`
	// Role is admin or member; admin only for admins.
	Role string `json:"role"`
	// Scope is api (default) or read_api.
	Scope string `json:"scope"`
	// ExpiresAt is a date, YYYY-MM-DD (GitLab's format): the token stops
	// working at the start of that day, UTC.
	ExpiresAt string `json:"expires_at"`
}

// createToken creates a token of the caller: a signed-in user's token has at
// most that user's roles (it is resolved from them on every use); only
// admins create admin tokens; glenv's own admin tokens create tokens of
// glenv itself, as before users existed.
func (a *API) createToken(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	var req tokenRequest
	if err := decode(r, &req); err != nil {
		a.fail(w, r, "token", err)
		return
	}
	req.Name = strings.TrimSpace(req.Name)
	if req.Name == "" || len(req.Name) > 100 {
		writeErr(w, http.StatusBadRequest, Error{Error: "name: must be 1–100 characters, e.g. ci-bot", Field: "name"})
		return
	}
	if !integration.Printable(req.Name) {
		writeErr(w, http.StatusBadRequest, Error{Error: "name: must be printable: no newlines, tabs, escape sequences or other control characters, e.g. ci-bot", Field: "name"})
		return
	}
	if req.Role == "" {
		req.Role = store.RoleMember
	}
	if req.Role != store.RoleAdmin && req.Role != store.RoleMember {
		writeErr(w, http.StatusBadRequest, Error{Error: fmt.Sprintf("role: %q must be admin or member", req.Role), Field: "role"})
		return
	}
	if req.Scope == "" {
		req.Scope = store.ScopeAPI
	}
	if req.Scope != store.ScopeAPI && req.Scope != store.ScopeReadAPI {
		writeErr(w, http.StatusBadRequest, Error{Error: fmt.Sprintf("scope: %q must be api or read_api", req.Scope), Field: "scope"})
		return
	}
	var expires time.Time
	if req.ExpiresAt != "" {
		d, err := time.Parse(time.DateOnly, req.ExpiresAt)
		if err != nil || !d.After(store.Now()) {
			writeErr(w, http.StatusBadRequest, Error{Error: fmt.Sprintf("expires_at: %q must be a future date, YYYY-MM-DD", req.ExpiresAt), Field: "expires_at"})
			return
		}
		expires = d
	}
	if req.Role == store.RoleAdmin && !isAdmin(r) {
		writeErr(w, http.StatusForbidden, Error{Error: "role: only admins create admin tokens; leave --role out for a token with your own roles", Field: "role"})
		return
	}
	// A read_api token cannot mint an api one, nor a token with another owner.
	if p.Scope == store.ScopeReadAPI && req.Scope == store.ScopeAPI {
		writeErr(w, http.StatusForbidden, Error{Error: "scope: a read_api token can only create read_api tokens", Field: "scope"})
		return
	}
	if p.Kind == auth.KindJob || (p.UserID == 0 && !p.Admin) {
		writeErr(w, http.StatusForbidden, Error{Error: "only signed-in users and admins create tokens"})
		return
	}
	value := store.NewTokenValue()
	t, err := store.CreateUserToken(r.Context(), a.Store.DB, store.APIToken{Name: req.Name, Role: req.Role, UserID: p.UserID, Scope: req.Scope, ExpiresAt: expires}, value)
	if err != nil {
		a.fail(w, r, "token", err)
		return
	}
	a.Auth.Audit(r.Context(), r, p, "token:create", fmt.Sprintf("token:%d", t.ID), fmt.Sprintf("%s scope=%s role=%s", t.Name, t.Scope, t.Role))
	writeJSON(w, http.StatusCreated, struct {
		store.APIToken
		Token string `json:"token"`
	}{t, value})
}

// listTokens: admins see every token, users their own.
func (a *API) listTokens(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	var ts []store.APIToken
	var err error
	switch {
	case isAdmin(r):
		ts, err = store.ListAPITokens(r.Context(), a.Store.Reader())
	case p.UserID != 0:
		ts, err = store.TokensOf(r.Context(), a.Store.Reader(), p.UserID)
	default:
		writeErr(w, http.StatusForbidden, Error{Error: "listing tokens needs an admin, or a signed-in user (who sees their own)"})
		return
	}
	if err != nil {
		a.fail(w, r, "tokens", err)
		return
	}
	writeJSON(w, http.StatusOK, ts)
}

func (a *API) revokeToken(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		a.fail(w, r, "token", err)
		return
	}
	p := principal(r)
	t, err := store.GetAPIToken(r.Context(), a.Store.Reader(), id)
	if err != nil {
		a.fail(w, r, fmt.Sprintf("token %d", id), err)
		return
	}
	if !isAdmin(r) && (p.UserID == 0 || t.UserID != p.UserID || p.Scope == store.ScopeReadAPI) {
		writeErr(w, http.StatusForbidden, Error{Error: "revoking this token needs an admin (users revoke their own tokens)"})
		return
	}
	if err := store.RevokeAPIToken(r.Context(), a.Store.DB, id); err != nil {
		a.fail(w, r, fmt.Sprintf("token %d", id), err)
		return
	}
	a.Auth.Audit(r.Context(), r, p, "token:revoke", fmt.Sprintf("token:%d", id), t.Name)
	writeJSON(w, http.StatusOK, map[string]any{"revoked": id})
}
