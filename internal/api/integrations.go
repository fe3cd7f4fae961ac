package api

import (
	"errors"
	"net/http"

	"github.com/glenv/glenv/internal/auth"
	"github.com/glenv/glenv/internal/gitlab"
	"github.com/glenv/glenv/internal/integration"
	"github.com/glenv/glenv/internal/store"
)

func isGitLabError(err error) bool {
	for _, e := range []error{gitlab.ErrUnreachable, gitlab.ErrUnauthorized, gitlab.ErrForbidden, gitlab.ErrNotFound, gitlab.ErrRateLimited} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// mayChangeIntegration is the one rule for who may add, update, validate or
// delete an integration: these hold its GitLab token and point glenv at a
// GitLab URL, so only admins of its space may (and of the space a change
// moves it to). The route's guard (access.go) decided it with auth.Can
// before the handler ran.
func mayChangeIntegration(r *http.Request, name string) bool { return changeAllowed(r, name) }

// refuseChange answers 403 unless the caller may change the integration
// called name ("" for a new one); it runs before the body is read.
func refuseChange(w http.ResponseWriter, r *http.Request, name string) bool {
	if mayChangeIntegration(r, name) {
		return false
	}
	writeErr(w, http.StatusForbidden, Error{Error: "changing integrations needs an admin API token: ask an admin, or create one with `glenv token:create --role admin`"})
	return true
}

func (a *API) addIntegration(w http.ResponseWriter, r *http.Request) {
	if refuseChange(w, r, "") {
		return
	}
	var in integration.Input
	if err := decode(r, &in); err != nil {
		a.fail(w, r, "integration", err)
		return
	}
	res, err := a.Integrations.Add(r.Context(), in)
	if errors.Is(err, integration.ErrConfirm) {
		writeJSON(w, http.StatusConflict, struct {
			Error string `json:"error"`
			integration.Result
		}{err.Error(), res})
		return
	}
	if err != nil {
		a.fail(w, r, "integration", err)
		return
	}
	code := http.StatusOK
	if res.Created {
		code = http.StatusCreated
	}
	writeJSON(w, code, res)
}

func (a *API) listIntegrations(w http.ResponseWriter, r *http.Request) {
	ins, err := store.ListIntegrations(r.Context(), a.Store.Reader())
	if err != nil {
		a.fail(w, r, "integrations", err)
		return
	}
	out := make([]integration.Result, 0, len(ins))
	readable := a.readable(r)
	for _, in := range ins {
		if !readable(in.Name) {
			continue
		}
		res := integration.Result{Integration: in, HookURL: a.Integrations.HookURL(in.Name), Warnings: []string{}, Environments: []string{}, WouldDelete: []string{}}
		out = append(out, forCaller(r, res))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) getIntegration(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	in, err := store.GetIntegration(r.Context(), a.Store.Reader(), name)
	if err != nil {
		a.fail(w, r, "integration "+name, err)
		return
	}
	res := integration.Result{Integration: in, HookURL: a.Integrations.HookURL(name), Warnings: []string{}, Environments: []string{}, WouldDelete: []string{}}
	if r.URL.Query().Get("show_secret") == "true" {
		if !auth.Can(principal(r), auth.ActAdmin, in.Space) {
			writeErr(w, http.StatusForbidden, Error{Error: "only admins of space " + in.Space + " can read the webhook secret"})
			return
		}
		if res.WebhookSecret, err = a.Integrations.RevealSecret(r.Context(), name); err != nil {
			a.fail(w, r, "integration "+name, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, forCaller(r, res))
}

// forCaller leaves out an integration's connection details (the API host,
// the hook and the token's expiry) for callers who are not admins of its
// space: readers see what it is and how it behaves, admins how it is
// wired to GitLab (Spacelift's split between read and admin).
func forCaller(r *http.Request, res integration.Result) integration.Result {
	if auth.Can(principal(r), auth.ActAdmin, res.Integration.Space) {
		return res
	}
	res.Integration.BaseURL, res.Integration.HookID, res.Integration.TokenExpiresAt = "", 0, ""
	res.HookURL = ""
	return res
}

func (a *API) updateIntegration(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if refuseChange(w, r, name) {
		return
	}
	var in integration.Input
	if err := decode(r, &in); err != nil {
		a.fail(w, r, "integration", err)
		return
	}
	res, err := a.Integrations.Update(r.Context(), name, in)
	if err != nil {
		a.fail(w, r, "integration "+name, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (a *API) deleteIntegration(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if refuseChange(w, r, name) {
		return
	}
	warnings, err := a.Integrations.Delete(r.Context(), name)
	if err != nil {
		a.fail(w, r, "integration "+name, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"deleted": name, "warnings": warnings})
}

func (a *API) validateIntegration(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if refuseChange(w, r, name) {
		return
	}
	checks, err := a.Integrations.Validate(r.Context(), name)
	if err != nil {
		a.fail(w, r, "integration "+name, err)
		return
	}
	writeJSON(w, http.StatusOK, checks)
}

func (a *API) reconcileIntegration(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if _, err := store.GetIntegration(r.Context(), a.Store.Reader(), name); err != nil {
		a.fail(w, r, "integration "+name, err)
		return
	}
	applied, err := a.Queue.ReconcileNow(r.Context(), name)
	if err != nil {
		a.fail(w, r, "integration "+name, err)
		return
	}
	writeJSON(w, http.StatusOK, applied)
}
