package api

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/glenv/glenv/internal/integration"
	"github.com/glenv/glenv/internal/store"
)

type tokenRequest struct {
	Name string `json:"name"`
	Role string `json:"role"`
}

func (a *API) createToken(w http.ResponseWriter, r *http.Request) {
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
	value := store.NewTokenValue()
	t, err := store.CreateAPIToken(r.Context(), a.Store.DB, req.Name, req.Role, value)
	if err != nil {
		a.fail(w, r, "token", err)
		return
	}
	writeJSON(w, http.StatusCreated, struct {
		store.APIToken
		Token string `json:"token"`
	}{t, value})
}

func (a *API) listTokens(w http.ResponseWriter, r *http.Request) {
	ts, err := store.ListAPITokens(r.Context(), a.Store.Reader())
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
	if err := store.RevokeAPIToken(r.Context(), a.Store.DB, id); err != nil {
		a.fail(w, r, fmt.Sprintf("token %d", id), err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"revoked": id})
}
