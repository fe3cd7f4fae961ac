package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	gl "gitlab.com/gitlab-org/api/client-go/v2"

	"github.com/glenv/glenv/internal/api/view"
	"github.com/glenv/glenv/internal/auth"
	"github.com/glenv/glenv/internal/feedback"
	"github.com/glenv/glenv/internal/integration"
	"github.com/glenv/glenv/internal/store"
)

type integrationRow struct {
	integration.Result
	Health  *feedback.IntegrationHealth
	Project string
}

// integrations lists what /api/v1/integrations shows the caller (readers
// without connection details), with hook and token health.
func (w *Web) integrations(rw http.ResponseWriter, q *request) {
	ans := q.callAPI(http.MethodGet, "/api/v1/integrations", nil, "")
	var res []integration.Result
	if !ans.OK() || ans.Decode(&res) != nil {
		w.message(rw, q, ans.Status, "Cannot list integrations", ans.Message())
		return
	}
	rows := make([]integrationRow, 0, len(res))
	for _, r := range res {
		rows = append(rows, w.integrationRow(r))
	}
	w.render(rw, q, http.StatusOK, "integrations", "Integrations", rows)
}

func (w *Web) integrationRow(r integration.Result) integrationRow {
	row := integrationRow{Result: r, Project: projectURL(r.Integration)}
	if w.Health != nil {
		if h, ok := w.Health.Get(r.Integration.Name); ok {
			row.Health = &h
		}
	}
	return row
}

type integrationData struct {
	integrationRow
	Deliveries []view.Delivery
	Secret     string
	CanAdmin   bool
}

// integration is one integration: settings, health, recent deliveries
// (like GitLab's "Recent events"); ?show_secret=true reveals the webhook
// secret to admins (/api/v1 refuses everyone else).
func (w *Web) integration(rw http.ResponseWriter, q *request) {
	name := q.r.PathValue("name")
	path := "/api/v1/integrations/" + url.PathEscape(name)
	if q.r.URL.Query().Get("show_secret") == "true" {
		path += "?show_secret=true"
	}
	ans := q.callAPI(http.MethodGet, path, nil, "")
	var res integration.Result
	if !ans.OK() || ans.Decode(&res) != nil {
		w.message(rw, q, ans.Status, "Integration "+name, ans.Message())
		return
	}
	d := integrationData{integrationRow: w.integrationRow(res), Secret: res.WebhookSecret,
		CanAdmin: auth.Can(q.p, auth.ActAdmin, res.Integration.Space)}
	dans := q.callAPI(http.MethodGet, "/api/v1/deliveries?limit=20&integration="+url.QueryEscape(name), nil, "")
	if dans.OK() {
		_ = dans.Decode(&d.Deliveries)
	}
	w.render(rw, q, http.StatusOK, "integration", "Integration "+name, d)
}

// project is one of the caller's GitLab projects they may connect.
type project struct {
	Host, Path, WebURL, BaseURL string
}

type newIntegrationData struct {
	Projects []project
	Selected string
	Problems []string
	Error    string
	Field    string
	Name     string
	Result   *integration.Result
}

// newIntegration lists the caller's GitLab projects where they are
// Maintainer or above, read with their own OAuth token.
func (w *Web) newIntegration(rw http.ResponseWriter, q *request) {
	d := w.projectsOf(q)
	d.Selected = q.r.URL.Query().Get("url")
	w.render(rw, q, http.StatusOK, "newintegration", "Add integration", d)
}

// projectsOf reads the caller's projects on each GitLab they connected:
// GET /projects?min_access_level=40 (Maintainer), with their OAuth token.
func (w *Web) projectsOf(q *request) newIntegrationData {
	var d newIntegrationData
	if q.p.UserID == 0 {
		d.Problems = append(d.Problems, "Sign in with GitLab to see your projects; an API token has none.")
		return d
	}
	ids, err := store.IdentitiesOf(q.ctx(), w.Store.Reader(), q.p.UserID)
	if err != nil {
		d.Problems = append(d.Problems, "Could not read your GitLab accounts: "+err.Error())
		return d
	}
	for _, id := range ids {
		h, err := store.GetGitLabHost(q.ctx(), w.Store.Reader(), id.Host)
		if err != nil {
			continue
		}
		access, err := w.Auth.AccessToken(q.ctx(), id.ID, "")
		if err != nil {
			d.Problems = append(d.Problems, fmt.Sprintf("%s: %v", id.Host, err))
			continue
		}
		c, err := gl.NewOAuthClient(access, gl.WithBaseURL(h.URL), gl.WithoutRetries())
		if err != nil {
			d.Problems = append(d.Problems, fmt.Sprintf("%s: %v", id.Host, err))
			continue
		}
		ps, _, err := c.Projects.ListProjects(&gl.ListProjectsOptions{MinAccessLevel: gl.Ptr(gl.MaintainerPermissions),
			Membership: gl.Ptr(true), OrderBy: gl.Ptr("last_activity_at"), ListOptions: gl.ListOptions{PerPage: 100}}, gl.WithContext(q.ctx()))
		if err != nil {
			d.Problems = append(d.Problems, fmt.Sprintf("listing your projects on %s failed: %v (reconnect at /auth/gitlab?host=%s if your token was revoked)", id.Host, err, id.Host))
			continue
		}
		for _, p := range ps {
			d.Projects = append(d.Projects, project{Host: id.Host, Path: p.PathWithNamespace, WebURL: p.WebURL, BaseURL: h.URL})
		}
	}
	return d
}

// addIntegration connects a project through /api/v1/integrations: the
// checks and messages are integration:add's.
func (w *Web) addIntegration(rw http.ResponseWriter, q *request) {
	if err := q.r.ParseForm(); err != nil {
		w.message(rw, q, http.StatusBadRequest, "Bad request", "the form could not be read: "+err.Error())
		return
	}
	f := q.r.PostForm
	d := w.projectsOf(q)
	d.Selected, d.Name = f.Get("project"), f.Get("name")
	base, path, ok := strings.Cut(f.Get("project"), "|")
	if !ok || path == "" {
		d.Error, d.Field = "project: pick one of your projects", "project"
		w.render(rw, q, http.StatusBadRequest, "newintegration", "Add integration", d)
		return
	}
	in := integration.Input{Type: "gitlab", Token: strings.TrimSpace(f.Get("token")), BaseURL: base, GitLabProject: path, Name: strings.TrimSpace(f.Get("name"))}
	ans := q.callAPI(http.MethodPost, "/api/v1/integrations", in, f.Get("csrf_token"))
	if !ans.OK() {
		var e struct {
			Error string `json:"error"`
			Field string `json:"field"`
		}
		_ = ans.Decode(&e)
		d.Error, d.Field = ans.Message(), e.Field
		w.render(rw, q, ans.Status, "newintegration", "Add integration", d)
		return
	}
	var res integration.Result
	_ = ans.Decode(&res)
	d.Result = &res
	w.render(rw, q, http.StatusCreated, "newintegration", "Integration "+res.Integration.Name+" added", d)
}
