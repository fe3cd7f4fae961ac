package api

import (
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/glenv/glenv/internal/auth"
	"github.com/glenv/glenv/internal/store"
)

// peopleRoutes: who am I, GitLab hosts, spaces, users and grants, audit.
func (a *API) peopleRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/gitlab-hosts", a.adminOnly(a.listHosts))
	mux.HandleFunc("POST /api/v1/gitlab-hosts", a.adminOnly(a.addHost))
	mux.HandleFunc("DELETE /api/v1/gitlab-hosts/{host}", a.adminOnly(a.removeHost))
	mux.HandleFunc("GET /api/v1/spaces", a.listSpaces)
	mux.HandleFunc("POST /api/v1/spaces", a.addSpace)
	mux.HandleFunc("GET /api/v1/spaces/{name}", a.getSpace)
	mux.HandleFunc("DELETE /api/v1/spaces/{name}", a.deleteSpace)
	mux.HandleFunc("GET /api/v1/users", a.adminOnly(a.listUsers))
	mux.HandleFunc("GET /api/v1/users/{user}", a.getUser)
	mux.HandleFunc("PATCH /api/v1/users/{user}", a.adminOnly(a.updateUser))
	mux.HandleFunc("DELETE /api/v1/users/{user}", a.adminOnly(a.removeUser))
	mux.HandleFunc("PUT /api/v1/users/{user}/grants/{space}", a.grant)
	mux.HandleFunc("DELETE /api/v1/users/{user}/grants/{space}", a.revokeGrant)
	mux.HandleFunc("GET /api/v1/audit", a.adminOnly(a.listAudit))
}

type meView struct {
	Kind        string            `json:"kind"`
	Name        string            `json:"name"`
	User        *store.User       `json:"user"`
	Admin       bool              `json:"admin"`
	Scope       string            `json:"scope"`
	Roles       []store.Grant     `json:"roles"`
	Connections []auth.Connection `json:"connections"`
	CSRFToken   string            `json:"csrf_token,omitempty"`
	TokenID     int64             `json:"token_id,omitempty"`
}

func (a *API) me(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	v := meView{Kind: p.Kind, Name: p.Name, Admin: p.Admin, Scope: p.Scope, Roles: p.Grants, Connections: []auth.Connection{}, TokenID: p.TokenID}
	if v.Roles == nil {
		v.Roles = []store.Grant{}
	}
	if p.Session != nil {
		v.CSRFToken = p.Session.CSRF
	}
	if p.UserID != 0 {
		u, err := store.GetUser(r.Context(), a.Store.Reader(), p.UserID)
		if err != nil {
			a.fail(w, r, "user", err)
			return
		}
		v.User = &u
		if v.Connections, err = a.Auth.Connections(r.Context(), p.UserID, r.URL.Query().Get("verify") == "true"); err != nil {
			a.fail(w, r, "connections", err)
			return
		}
	}
	writeJSON(w, http.StatusOK, v)
}

func (a *API) disconnect(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	if p.UserID == 0 {
		writeErr(w, http.StatusBadRequest, Error{Error: "only a signed-in user has GitLab connections"})
		return
	}
	host := r.PathValue("host")
	note, err := a.Auth.Disconnect(r.Context(), p.UserID, host)
	if err != nil {
		a.fail(w, r, "connection to "+host, err)
		return
	}
	a.Auth.Audit(r.Context(), r, p, "disconnect", "connection:"+host, "")
	writeJSON(w, http.StatusOK, map[string]string{"disconnected": host, "note": note})
}

type hostView struct {
	store.GitLabHost
	RedirectURL string   `json:"redirect_url"`
	Scopes      []string `json:"scopes"`
	SignInURL   string   `json:"sign_in_url"`
}

func (a *API) hostView(h store.GitLabHost) hostView {
	return hostView{GitLabHost: h, RedirectURL: a.Auth.RedirectURL(), Scopes: auth.Scopes,
		SignInURL: strings.TrimRight(a.Auth.PublicURL, "/") + "/auth/gitlab?host=" + h.Host}
}

func (a *API) listHosts(w http.ResponseWriter, r *http.Request) {
	hs, err := store.ListGitLabHosts(r.Context(), a.Store.Reader())
	if err != nil {
		a.fail(w, r, "GitLab hosts", err)
		return
	}
	out := []hostView{}
	for _, h := range hs {
		out = append(out, a.hostView(h))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) addHost(w http.ResponseWriter, r *http.Request) {
	var in auth.AddHostInput
	if err := decode(r, &in); err != nil {
		a.fail(w, r, "GitLab host", err)
		return
	}
	h, err := a.Auth.AddHost(r.Context(), in)
	if err != nil {
		a.fail(w, r, "GitLab host", err)
		return
	}
	a.Auth.Audit(r.Context(), r, principal(r), "gitlab-host:add", "gitlab-host:"+h.Host, h.URL)
	writeJSON(w, http.StatusCreated, a.hostView(h))
}

func (a *API) removeHost(w http.ResponseWriter, r *http.Request) {
	host := r.PathValue("host")
	if err := a.Auth.RemoveHost(r.Context(), host); err != nil {
		a.fail(w, r, "GitLab host "+host, err)
		return
	}
	a.Auth.Audit(r.Context(), r, principal(r), "gitlab-host:remove", "gitlab-host:"+host, "")
	writeJSON(w, http.StatusOK, map[string]string{"removed": host})
}

var spaceNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,34}[a-z0-9])?$`)

type spaceRequest struct {
	Name        string `json:"name"`
	Parent      string `json:"parent"`
	Inherit     *bool  `json:"inherit"`
	Description string `json:"description"`
}

func (a *API) addSpace(w http.ResponseWriter, r *http.Request) {
	var req spaceRequest
	if err := decode(r, &req); err != nil {
		a.fail(w, r, "space", err)
		return
	}
	if !spaceNameRE.MatchString(req.Name) {
		writeErr(w, http.StatusBadRequest, Error{Error: fmt.Sprintf("name: %q must be 1–36 characters of a-z, 0-9 and '-', e.g. team-web", req.Name), Field: "name"})
		return
	}
	if req.Parent == "" {
		req.Parent = auth.Root
	}
	if _, err := store.GetSpace(r.Context(), a.Store.Reader(), req.Parent); errors.Is(err, store.ErrNotFound) {
		writeErr(w, http.StatusBadRequest, Error{Error: fmt.Sprintf("parent: space %q does not exist; see glenv space:list", req.Parent), Field: "parent"})
		return
	}
	if !auth.Can(principal(r), auth.ActAdmin, req.Parent) {
		refuse(w, r, auth.ActAdmin, "adding a space", req.Parent)
		return
	}
	sp := store.Space{Name: req.Name, Parent: req.Parent, Inherit: req.Inherit == nil || *req.Inherit, Description: req.Description}
	sp, err := store.CreateSpace(r.Context(), a.Store.DB, sp)
	if errors.Is(err, store.ErrConflict) {
		writeErr(w, http.StatusConflict, Error{Error: fmt.Sprintf("name: space %q exists already", req.Name), Field: "name"})
		return
	}
	if err != nil {
		a.fail(w, r, "space", err)
		return
	}
	a.Auth.Audit(r.Context(), r, principal(r), "space:add", "space:"+sp.Name, "parent "+sp.Parent)
	writeJSON(w, http.StatusCreated, sp)
}

type spaceView struct {
	store.Space
	Role string `json:"role"` // the caller's
}

func (a *API) listSpaces(w http.ResponseWriter, r *http.Request) {
	spaces, err := store.ListSpaces(r.Context(), a.Store.Reader())
	if err != nil {
		a.fail(w, r, "spaces", err)
		return
	}
	p := principal(r)
	out := []spaceView{}
	for _, s := range spaces {
		if role := p.Role(s.Name); role > auth.None {
			out = append(out, spaceView{s, role.String()})
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) getSpace(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	s, err := store.GetSpace(r.Context(), a.Store.Reader(), name)
	if err != nil {
		a.fail(w, r, "space "+name, err)
		return
	}
	role := principal(r).Role(name)
	if role == auth.None {
		refuse(w, r, auth.ActRead, "space "+name, name)
		return
	}
	writeJSON(w, http.StatusOK, spaceView{s, role.String()})
}

func (a *API) deleteSpace(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if name == auth.Root {
		writeErr(w, http.StatusBadRequest, Error{Error: "space root is where every space hangs: it cannot be deleted"})
		return
	}
	s, err := store.GetSpace(r.Context(), a.Store.Reader(), name)
	if err != nil {
		a.fail(w, r, "space "+name, err)
		return
	}
	if !auth.Can(principal(r), auth.ActAdmin, s.Parent) {
		refuse(w, r, auth.ActAdmin, "deleting space "+name, s.Parent)
		return
	}
	var children, integrations, grants int
	err = a.Store.Tx(r.Context(), func(tx *sql.Tx) error {
		if children, integrations, grants, err = store.SpaceUsage(r.Context(), tx, name); err != nil {
			return err
		}
		if children+integrations+grants > 0 {
			return errSpaceInUse
		}
		return store.DeleteSpace(r.Context(), tx, name)
	})
	if errors.Is(err, errSpaceInUse) {
		writeErr(w, http.StatusConflict, Error{Error: fmt.Sprintf("space %s is not empty (%d spaces, %d integrations, %d grants): move or delete them first", name, children, integrations, grants)})
		return
	}
	if err != nil {
		a.fail(w, r, "space "+name, err)
		return
	}
	a.Auth.Audit(r.Context(), r, principal(r), "space:delete", "space:"+name, "")
	writeJSON(w, http.StatusOK, map[string]string{"deleted": name})
}

var errSpaceInUse = errors.New("space in use")

type userView struct {
	store.User
	Roles       []store.Grant     `json:"roles"`
	Connections []auth.Connection `json:"connections"`
}

func (a *API) userView(r *http.Request, u store.User) (userView, error) {
	v := userView{User: u}
	var err error
	if v.Roles, err = store.GrantsOf(r.Context(), a.Store.Reader(), u.ID); err != nil {
		return v, err
	}
	v.Connections, err = a.Auth.Connections(r.Context(), u.ID, false)
	return v, err
}

func (a *API) listUsers(w http.ResponseWriter, r *http.Request) {
	us, err := store.ListUsers(r.Context(), a.Store.Reader())
	if err != nil {
		a.fail(w, r, "users", err)
		return
	}
	out := []userView{}
	for _, u := range us {
		v, err := a.userView(r, u)
		if err != nil {
			a.fail(w, r, "users", err)
			return
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, out)
}

// findUser resolves {user}: an id or host/username (URL-escaped).
func (a *API) findUser(w http.ResponseWriter, r *http.Request) (store.User, bool) {
	ref := r.PathValue("user")
	u, err := store.FindUser(r.Context(), a.Store.Reader(), ref)
	if errors.Is(err, store.ErrNotFound) {
		writeErr(w, http.StatusNotFound, Error{Error: fmt.Sprintf("user %q not found: name a user by id or host/username (see glenv user:list); people appear after their first sign-in", ref)})
		return u, false
	}
	if err != nil {
		a.fail(w, r, "user", err)
		return u, false
	}
	return u, true
}

func (a *API) getUser(w http.ResponseWriter, r *http.Request) {
	u, ok := a.findUser(w, r)
	if !ok {
		return
	}
	if p := principal(r); p.UserID != u.ID && !isAdmin(r) {
		writeErr(w, http.StatusForbidden, Error{Error: "only admins see other users"})
		return
	}
	v, err := a.userView(r, u)
	if err != nil {
		a.fail(w, r, "user", err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (a *API) updateUser(w http.ResponseWriter, r *http.Request) {
	u, ok := a.findUser(w, r)
	if !ok {
		return
	}
	var req struct {
		Admin *bool `json:"admin"`
	}
	if err := decode(r, &req); err != nil {
		a.fail(w, r, "user", err)
		return
	}
	if req.Admin == nil {
		writeErr(w, http.StatusBadRequest, Error{Error: "admin: give true or false (user:update USER --admin / --admin=false)", Field: "admin"})
		return
	}
	if err := store.SetUserAdmin(r.Context(), a.Store.DB, u.ID, *req.Admin); err != nil {
		a.fail(w, r, "user", err)
		return
	}
	a.Auth.Audit(r.Context(), r, principal(r), "user:update", fmt.Sprintf("user:%d", u.ID), "admin="+strconv.FormatBool(*req.Admin))
	u.IsAdmin = *req.Admin
	writeJSON(w, http.StatusOK, u)
}

func (a *API) removeUser(w http.ResponseWriter, r *http.Request) {
	u, ok := a.findUser(w, r)
	if !ok {
		return
	}
	err := a.Store.Tx(r.Context(), func(tx *sql.Tx) error { return store.DeleteUser(r.Context(), tx, u.ID) })
	if err != nil {
		a.fail(w, r, "user", err)
		return
	}
	a.Auth.Audit(r.Context(), r, principal(r), "user:remove", fmt.Sprintf("user:%d", u.ID), u.Username)
	writeJSON(w, http.StatusOK, map[string]any{"removed": u.ID})
}

// grant gives a role in a space; admins of the space manage its members.
func (a *API) grant(w http.ResponseWriter, r *http.Request) {
	u, ok := a.findUser(w, r)
	if !ok {
		return
	}
	space := r.PathValue("space")
	var req struct {
		Role string `json:"role"`
	}
	if err := decode(r, &req); err != nil {
		a.fail(w, r, "grant", err)
		return
	}
	if _, err := auth.ParseRole(req.Role); err != nil {
		writeErr(w, http.StatusBadRequest, Error{Error: err.Error(), Field: "role"})
		return
	}
	if _, err := store.GetSpace(r.Context(), a.Store.Reader(), space); errors.Is(err, store.ErrNotFound) {
		writeErr(w, http.StatusBadRequest, Error{Error: fmt.Sprintf("space: %q does not exist; see glenv space:list", space), Field: "space"})
		return
	}
	if !auth.Can(principal(r), auth.ActAdmin, space) {
		refuse(w, r, auth.ActAdmin, "granting roles", space)
		return
	}
	if err := store.PutGrant(r.Context(), a.Store.DB, store.Grant{UserID: u.ID, Space: space, Role: req.Role}); err != nil {
		a.fail(w, r, "grant", err)
		return
	}
	a.Auth.Audit(r.Context(), r, principal(r), "user:grant", fmt.Sprintf("user:%d", u.ID), req.Role+" in "+space)
	writeJSON(w, http.StatusOK, store.Grant{UserID: u.ID, Space: space, Role: req.Role})
}

func (a *API) revokeGrant(w http.ResponseWriter, r *http.Request) {
	u, ok := a.findUser(w, r)
	if !ok {
		return
	}
	space := r.PathValue("space")
	if !auth.Can(principal(r), auth.ActAdmin, space) {
		refuse(w, r, auth.ActAdmin, "revoking roles", space)
		return
	}
	if err := store.DeleteGrant(r.Context(), a.Store.DB, u.ID, space); err != nil {
		a.fail(w, r, fmt.Sprintf("role of user %d in space %s", u.ID, space), err)
		return
	}
	a.Auth.Audit(r.Context(), r, principal(r), "user:revoke", fmt.Sprintf("user:%d", u.ID), "space "+space)
	writeJSON(w, http.StatusOK, map[string]any{"revoked": space, "user": u.ID})
}

func (a *API) listAudit(w http.ResponseWriter, r *http.Request) {
	limit, err := queryInt(r, "limit", 100, 1000)
	if err != nil {
		a.fail(w, r, "audit", err)
		return
	}
	var before int64
	if v := r.URL.Query().Get("before"); v != "" {
		if before, err = strconv.ParseInt(v, 10, 64); err != nil {
			a.fail(w, r, "audit", fmt.Errorf("%w: before must be an event id", errBadRequest))
			return
		}
	}
	evs, err := store.ListAuditEvents(r.Context(), a.Store.Reader(), before, limit)
	if err != nil {
		a.fail(w, r, "audit", err)
		return
	}
	writeJSON(w, http.StatusOK, evs)
}
