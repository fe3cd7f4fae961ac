package web

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
)

// adminPages are the admin pages and the /api/v1 list each one shows.
var adminPages = map[string]struct{ Title, API string }{
	"spaces": {"Spaces", "/api/v1/spaces"},
	"users":  {"Users", "/api/v1/users"},
	"tokens": {"API tokens", "/api/v1/tokens"},
	"hosts":  {"GitLab hosts", "/api/v1/gitlab-hosts"},
	"audit":  {"Audit", "/api/v1/audit"},
}

type adminData struct {
	What  string
	Rows  []map[string]any
	Cols  []string
	Pages []string
}

// adminColumns are the fields each admin table shows, in order.
var adminColumns = map[string][]string{
	"spaces": {"name", "parent", "inherit", "description"},
	"users":  {"id", "username", "name", "is_admin", "roles", "connections", "last_seen_at"},
	"tokens": {"id", "name", "prefix", "scope", "role", "user_id", "expires_at", "last_used_at", "revoked_at"},
	"hosts":  {"host", "url", "client_id", "created_at"},
	"audit":  {"at", "actor", "action", "target", "detail", "remote_addr"},
}

// admin shows one admin list; /api/v1 decides who may read it.
func (w *Web) admin(rw http.ResponseWriter, q *request) {
	what := q.r.PathValue("what")
	pg, ok := adminPages[what]
	if !ok {
		w.message(rw, q, http.StatusNotFound, "Not found", "admin pages: spaces, users, tokens, hosts, audit")
		return
	}
	ans := q.callAPI(http.MethodGet, pg.API, nil, "")
	if !ans.OK() {
		w.message(rw, q, ans.Status, pg.Title, ans.Message())
		return
	}
	var rows []map[string]any
	if err := json.Unmarshal(ans.Body, &rows); err != nil {
		// Some lists come wrapped in an object: take its first array.
		var obj map[string]json.RawMessage
		if json.Unmarshal(ans.Body, &obj) == nil {
			for _, v := range obj {
				if json.Unmarshal(v, &rows) == nil {
					break
				}
			}
		}
	}
	w.render(rw, q, http.StatusOK, "admin", pg.Title, adminData{What: what, Rows: rows, Cols: adminColumns[what],
		Pages: []string{"spaces", "users", "tokens", "hosts", "audit"}})
}

type tokensData struct {
	Tokens  []map[string]any
	Created string
	Error   string
}

// tokens is "my tokens": what /api/v1/tokens lists for the caller, a form
// to create one (token:create's rules) and revoke buttons.
func (w *Web) tokens(rw http.ResponseWriter, q *request) {
	w.showTokens(rw, q, http.StatusOK, tokensData{})
}

func (w *Web) showTokens(rw http.ResponseWriter, q *request, code int, d tokensData) {
	ans := q.callAPI(http.MethodGet, "/api/v1/tokens", nil, "")
	if ans.OK() {
		_ = ans.Decode(&d.Tokens)
	} else if d.Error == "" {
		d.Error = ans.Message()
	}
	w.render(rw, q, code, "tokens", "My tokens", d)
}

func (w *Web) createToken(rw http.ResponseWriter, q *request) {
	if err := q.r.ParseForm(); err != nil {
		w.showTokens(rw, q, http.StatusBadRequest, tokensData{Error: "the form could not be read: " + err.Error()})
		return
	}
	f := q.r.PostForm
	body := map[string]string{"name": f.Get("name"), "scope": f.Get("scope"), "expires_at": f.Get("expires_at")}
	ans := q.callAPI(http.MethodPost, "/api/v1/tokens", body, f.Get("csrf_token"))
	if !ans.OK() {
		w.showTokens(rw, q, ans.Status, tokensData{Error: ans.Message()})
		return
	}
	var t struct {
		Token string `json:"token"`
	}
	_ = ans.Decode(&t)
	// The value is shown once, on this page only (never in a URL or a log).
	w.showTokens(rw, q, http.StatusCreated, tokensData{Created: t.Token})
}

func (w *Web) revokeToken(rw http.ResponseWriter, q *request) {
	if err := q.r.ParseForm(); err != nil {
		w.showTokens(rw, q, http.StatusBadRequest, tokensData{Error: "the form could not be read: " + err.Error()})
		return
	}
	id := q.r.PathValue("id")
	if strings.Trim(id, "0123456789") != "" || id == "" {
		w.showTokens(rw, q, http.StatusBadRequest, tokensData{Error: "id: must be a positive number"})
		return
	}
	ans := q.callAPI(http.MethodDelete, "/api/v1/tokens/"+url.PathEscape(id), nil, q.r.PostForm.Get("csrf_token"))
	if !ans.OK() {
		w.showTokens(rw, q, ans.Status, tokensData{Error: ans.Message()})
		return
	}
	http.Redirect(rw, q.r, "/tokens", http.StatusSeeOther)
}
