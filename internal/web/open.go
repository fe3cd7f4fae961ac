package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/glenv/glenv/internal/auth"
	"github.com/glenv/glenv/internal/store"
)

// open sends the caller from a GitLab URL to its environment's page:
// merge request → mr-<iid>, branch or commit → that branch's environment,
// project → its default branch's. With prebuild=1 a project glenv does not
// know yet goes to the Add integration form.
func (w *Web) open(rw http.ResponseWriter, q *request) {
	raw := q.r.URL.Query().Get("url")
	prebuild := q.r.URL.Query().Get("prebuild") == "1"
	t, err := ParseGitLabURL(raw)
	if err != nil {
		w.message(rw, q, http.StatusBadRequest, "Cannot open that URL", err.Error())
		return
	}
	all, err := store.IntegrationsForProjectPath(q.ctx(), w.Store.Reader(), t.Project)
	if err != nil {
		w.internal(rw, q, "find the project's integration", err)
		return
	}
	var ins []store.Integration
	for _, in := range all {
		if (auth.HostOf(in.UserFacingURL) == t.Host || auth.HostOf(in.BaseURL) == t.Host) && q.can(auth.ActRead, in) {
			ins = append(ins, in)
		}
	}
	if len(ins) == 0 {
		add := "/integrations/new?url=" + url.QueryEscape(t.ProjectURL())
		if prebuild {
			http.Redirect(rw, q.r, add, http.StatusSeeOther)
			return
		}
		w.render(rw, q, http.StatusNotFound, "unknown", "No integration for "+t.Project, struct {
			Project, Host, Add, Base string
		}{t.Project, t.Host, add, t.Scheme + "://" + t.Host})
		return
	}
	for _, in := range ins {
		e, ok, err := w.resolve(q, in, t)
		if err != nil {
			w.internal(rw, q, "find the environment", err)
			return
		}
		if ok {
			http.Redirect(rw, q.r, envPage(e), http.StatusSeeOther)
			return
		}
	}
	what := map[string]string{"mr": fmt.Sprintf("merge request !%d", t.MRIID), "commit": "commit " + t.SHA,
		"branch": "branch " + strings.Join(t.Refs, " / "), "project": "the default branch"}[t.Kind()]
	w.message(rw, q, http.StatusNotFound, "No environment yet",
		fmt.Sprintf("Integration %s connects %s, but no environment exists for %s yet: a push or a merge request creates it (or run glenv integration:validate %s if events are missing).",
			ins[0].Name, t.Project, what, ins[0].Name))
}

// resolve finds the environment t means in integration in.
func (w *Web) resolve(q *request, in store.Integration, t Target) (store.Environment, bool, error) {
	live := func(name string) (store.Environment, bool, error) {
		e, err := store.GetEnvironment(q.ctx(), w.Store.Reader(), in.Name, name)
		if err == store.ErrNotFound || (err == nil && !e.DeletedAt.IsZero()) {
			return e, false, nil
		}
		return e, err == nil, err
	}
	switch t.Kind() {
	case "mr":
		return live(fmt.Sprintf("mr-%d", t.MRIID))
	case "branch":
		for _, ref := range t.Refs {
			if e, ok, err := live(ref); ok || err != nil {
				return e, ok, err
			}
		}
		return store.Environment{}, false, nil
	case "commit":
		envs, err := store.EnvironmentsOfIntegration(q.ctx(), w.Store.Reader(), in.Name, false)
		if err != nil {
			return store.Environment{}, false, err
		}
		// A branch's environment first: a commit URL means "this branch".
		for _, kind := range []string{"branch", "mr", "tag"} {
			for _, e := range envs {
				if e.Kind == kind && (strings.HasPrefix(e.HeadSHA, t.SHA) || strings.HasPrefix(e.DeployedSHA, t.SHA)) {
					return e, true, nil
				}
			}
		}
		return store.Environment{}, false, nil
	}
	return live(in.DefaultBranch)
}
