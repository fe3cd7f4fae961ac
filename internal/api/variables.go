package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/glenv/glenv/internal/auth"
	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/variable"
	"github.com/glenv/glenv/internal/variables"
)

// variableRoutes: variables of an integration and of its environments.
// Reading needs read (names, levels and non-sensitive values; sensitive
// values are never answered); changing an integration's variables needs
// admin (they reach every environment, the default branch's included),
// changing one environment's needs write, the role that may redeploy it.
func (a *API) variableRoutes(mux *http.ServeMux) {
	for _, base := range []string{"/api/v1/integrations/{name}/variables", "/api/v1/integrations/{name}/environments/{env}/variables"} {
		mux.HandleFunc("GET "+base, a.guardVariables(a.listVariables))
		mux.HandleFunc("POST "+base, a.guardVariables(a.createVariable))
		mux.HandleFunc("GET "+base+"/{var}", a.guardVariables(a.getVariable))
		mux.HandleFunc("PATCH "+base+"/{var}", a.guardVariables(a.updateVariable))
		mux.HandleFunc("DELETE "+base+"/{var}", a.guardVariables(a.deleteVariable))
	}
}

type variableHandler func(w http.ResponseWriter, r *http.Request, lv variables.Level)

// guardVariables checks the caller's role for the level the path names
// and audits changes (never their values).
func (a *API) guardVariables(h variableHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if a.Variables == nil {
			writeErr(w, http.StatusServiceUnavailable, Error{Error: "variables are not available on this server"})
			return
		}
		lv := variables.Level{Integration: r.PathValue("name"), Environment: r.PathValue("env")}
		in, err := store.GetIntegration(r.Context(), a.Store.Reader(), lv.Integration)
		if err != nil {
			a.fail(w, r, "integration "+lv.Integration, err)
			return
		}
		action := auth.ActRead
		if r.Method != http.MethodGet {
			action = auth.ActAdmin
			if lv.Environment != "" {
				action = auth.ActWrite
			}
		}
		if !a.allowed(r, action, in) {
			what := "changing the variables of " + lv.String()
			if action == auth.ActRead {
				what = "reading the variables of " + lv.String()
			}
			refuse(w, r, action, what, in.Space)
			return
		}
		if action == auth.ActRead {
			h(w, r, lv)
			return
		}
		verb := map[string]string{http.MethodPost: "create", http.MethodPatch: "update", http.MethodDelete: "delete"}[r.Method]
		target := "variable:" + lv.Integration
		if lv.Environment != "" {
			target += "/" + lv.Environment
		}
		name := r.PathValue("var")
		if r.Method == http.MethodPost {
			var body struct {
				Name string `json:"name"`
			}
			_ = json.Unmarshal(peekBody(r), &body)
			name = body.Name
		}
		if len(name) > variable.MaxNameLength {
			name = name[:variable.MaxNameLength] + "…" // a refused name; the trail stays bounded
		}
		target += "/" + name
		a.audited(w, r, "variable:"+verb, target, func(w http.ResponseWriter, r *http.Request) { h(w, r, lv) })
	}
}

// variableFail answers a variables error: a name that names nothing is
// 404 with its field, the rest as every other error.
func (a *API) variableFail(w http.ResponseWriter, r *http.Request, err error) {
	var nf *variables.NotFoundError
	if errors.As(err, &nf) {
		writeErr(w, http.StatusNotFound, Error{Error: nf.Error(), Field: nf.Field})
		return
	}
	a.fail(w, r, "variable", err)
}

// maxVariableBody leaves room for a value of the largest size, JSON-escaped.
const maxVariableBody = 6*variable.MaxValueBytes + 4096

// decodeVariable reads a variable's JSON body strictly, saying which rule
// an over-long value breaks rather than failing to parse it.
func decodeVariable(r *http.Request, in *variables.Input) error {
	raw, err := io.ReadAll(io.LimitReader(r.Body, maxVariableBody+1))
	if err != nil {
		return fmt.Errorf("%w: body: %v", errBadRequest, err)
	}
	if len(raw) > maxVariableBody {
		return fmt.Errorf("%w: value: at most %d bytes (64 KiB)", errBadRequest, variable.MaxValueBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(in); err != nil {
		return fmt.Errorf("%w: body must be a JSON object with name, value, sensitive, inheritable, visible_build, visible_run: %v", errBadRequest, err)
	}
	return nil
}

func (a *API) listVariables(w http.ResponseWriter, r *http.Request, lv variables.Level) {
	out, err := a.Variables.List(r.Context(), lv)
	if err != nil {
		a.variableFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) getVariable(w http.ResponseWriter, r *http.Request, lv variables.Level) {
	v, err := a.Variables.Get(r.Context(), lv, r.PathValue("var"))
	if err != nil {
		a.variableFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (a *API) createVariable(w http.ResponseWriter, r *http.Request, lv variables.Level) {
	var in variables.Input
	if err := decodeVariable(r, &in); err != nil {
		a.variableFail(w, r, err)
		return
	}
	ch, err := a.Variables.Create(r.Context(), lv, in)
	if err != nil {
		a.variableFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, ch)
}

func (a *API) updateVariable(w http.ResponseWriter, r *http.Request, lv variables.Level) {
	var in variables.Input
	if err := decodeVariable(r, &in); err != nil {
		a.variableFail(w, r, err)
		return
	}
	ch, err := a.Variables.Update(r.Context(), lv, r.PathValue("var"), in)
	if err != nil {
		a.variableFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ch)
}

func (a *API) deleteVariable(w http.ResponseWriter, r *http.Request, lv variables.Level) {
	ch, err := a.Variables.Delete(r.Context(), lv, r.PathValue("var"))
	if err != nil {
		a.variableFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ch)
}
