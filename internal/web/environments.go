package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/glenv/glenv/internal/auth"
	"github.com/glenv/glenv/internal/jobs"
	"github.com/glenv/glenv/internal/store"
)

const (
	// PageSize is how many environments one page lists.
	PageSize = 50
	// countCap bounds the count under the list: past it the page says
	// "more than", so a page costs the same with 10,000 environments.
	countCap = 1000
	// maxPage bounds ?page=, so OFFSET stays within what an index walk
	// answers quickly.
	maxPage = 200
)

// envFilter is the list's query string: shareable, so a filtered view can
// be sent to someone.
type envFilter struct {
	Integration, State, Kind, Q string
	Page                        int
}

var (
	states = []string{store.StateInactive, store.StateBuilding, store.StateDeploying, store.StateActive, store.StateFailed,
		store.StatePaused, store.StateStopping}
	kinds = []string{"branch", "mr", "tag"}
)

// parseFilter reads the list's query string; a bad value is an error that
// names the parameter and what it may be.
func parseFilter(v url.Values) (envFilter, error) {
	f := envFilter{Integration: v.Get("integration"), State: v.Get("state"), Kind: v.Get("kind"), Q: strings.TrimSpace(v.Get("q")), Page: 1}
	if f.State != "" && !contains(states, f.State) {
		return f, fmt.Errorf("state: %q must be one of %s", f.State, strings.Join(states, ", "))
	}
	if f.Kind != "" && !contains(kinds, f.Kind) {
		return f, fmt.Errorf("kind: %q must be branch, mr or tag", f.Kind)
	}
	if len(f.Q) > 200 {
		return f, fmt.Errorf("q: must be at most 200 characters")
	}
	if p := v.Get("page"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > maxPage {
			return f, fmt.Errorf("page: %q must be a number from 1 to %d; narrow the list with a filter instead", p, maxPage)
		}
		f.Page = n
	}
	return f, nil
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// query is f as a query string, with page replaced.
func (f envFilter) query(page int) string {
	v := url.Values{}
	for k, x := range map[string]string{"integration": f.Integration, "state": f.State, "kind": f.Kind, "q": f.Q} {
		if x != "" {
			v.Set(k, x)
		}
	}
	if page > 1 {
		v.Set("page", strconv.Itoa(page))
	}
	if len(v) == 0 {
		return "/"
	}
	return "/?" + v.Encode()
}

// readable is the integrations q may read: nil for root's readers (every
// integration, detached environments included), else those the caller's
// glenv roles or GitLab membership let them read, as /api/v1 decides.
func (q *request) readable() ([]string, []store.Integration, error) {
	ins, err := store.ListIntegrations(q.ctx(), q.w.Store.Reader())
	if err != nil {
		return nil, nil, err
	}
	if auth.Can(q.p, auth.ActRead, auth.Root) {
		return nil, ins, nil
	}
	names := []string{}
	var visible []store.Integration
	for _, in := range ins {
		if q.can(auth.ActRead, in) {
			names = append(names, in.Name)
			visible = append(visible, in)
		}
	}
	return names, visible, nil
}

// envRow is one environment as the list and the change feed show it.
type envRow struct {
	E        store.Environment
	URL      string
	Page     string // the dashboard page
	RefURL   string // the branch, MR or tag in GitLab
	RefLabel string // !iid for a merge request, else the ref
	SHAURL   string
	Last     *store.Activity
	Now      time.Time
	Detached bool
}

func (w *Web) row(e store.Environment, in store.Integration, last *store.Activity) envRow {
	r := envRow{E: e, URL: w.EnvURL(e), Page: envPage(e), Last: last, Now: time.Now(), RefLabel: e.Ref}
	if e.Kind == "mr" {
		r.RefLabel = fmt.Sprintf("!%d", e.MRIID)
	}
	if base := projectURL(in); base != "" {
		r.RefURL = refURL(base, e)
		if e.DeployedSHA != "" {
			r.SHAURL = base + "/-/commit/" + e.DeployedSHA
		}
	}
	return r
}

// envPage is an environment's dashboard page.
func envPage(e store.Environment) string {
	return "/environments/" + url.PathEscape(e.IntegrationName) + "/" + pathEscapeKeepSlash(e.Name)
}

// EnvironmentPath is an environment's dashboard page under publicURL (for
// links from GitLab).
func EnvironmentPath(publicURL string, e store.Environment) string {
	return strings.TrimSuffix(publicURL, "/") + envPage(e)
}

func pathEscapeKeepSlash(s string) string {
	parts := strings.Split(s, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}

// projectURL is the project's page in GitLab, as people reach it.
func projectURL(in store.Integration) string {
	base := in.UserFacingURL
	if base == "" {
		base = in.BaseURL
	}
	if base == "" || in.ProjectPath == "" {
		return ""
	}
	return strings.TrimSuffix(base, "/") + "/" + in.ProjectPath
}

// refURL links an environment's branch, merge request or tag in GitLab
// (GitLab's routes: config/routes/repository.rb for tree/tags,
// config/routes/merge_requests.rb for merge_requests).
func refURL(project string, e store.Environment) string {
	switch e.Kind {
	case "mr":
		return fmt.Sprintf("%s/-/merge_requests/%d", project, e.MRIID)
	case "tag":
		return project + "/-/tags/" + pathEscapeKeepSlash(e.Ref)
	}
	return project + "/-/tree/" + pathEscapeKeepSlash(e.Ref)
}

type listData struct {
	F            envFilter
	Rows         []envRow
	Count        int
	More         bool
	Prev, Next   string
	Integrations []store.Integration
	States       []string
	Kinds        []string
	Error        string
	From, To     int
}

// environments is the list: every environment the caller may see, filtered
// by the query string, newest change first, PageSize per page.
func (w *Web) environments(rw http.ResponseWriter, q *request) {
	f, ferr := parseFilter(q.r.URL.Query())
	readable, ins, err := q.readable()
	if err != nil {
		w.internal(rw, q, "list integrations", err)
		return
	}
	d := listData{F: f, Integrations: ins, States: states, Kinds: kinds}
	if ferr != nil {
		d.Error = ferr.Error()
		w.render(rw, q, http.StatusBadRequest, "environments", "Environments", d)
		return
	}
	envs, count, err := store.ListEnvironmentPage(q.ctx(), w.Store.Reader(), store.EnvironmentPage{Readable: readable,
		Integration: f.Integration, State: f.State, Kind: f.Kind, Text: f.Q, Offset: (f.Page - 1) * PageSize, Limit: PageSize, CountCap: countCap})
	if err != nil {
		w.internal(rw, q, "list environments", err)
		return
	}
	d.Rows, err = w.rows(q, envs, ins)
	if err != nil {
		w.internal(rw, q, "read activities", err)
		return
	}
	d.Count, d.More = min(count, countCap), count > countCap
	d.From, d.To = (f.Page-1)*PageSize+1, (f.Page-1)*PageSize+len(envs)
	if f.Page > 1 {
		d.Prev = f.query(f.Page - 1)
	}
	if (f.Page*PageSize < count) && f.Page < maxPage {
		d.Next = f.query(f.Page + 1)
	}
	w.render(rw, q, http.StatusOK, "environments", "Environments", d)
}

// rows adds each environment's last activity and links.
func (w *Web) rows(q *request, envs []store.Environment, ins []store.Integration) ([]envRow, error) {
	byName := map[string]store.Integration{}
	for _, in := range ins {
		byName[in.Name] = in
	}
	ids := make([]int64, len(envs))
	for i, e := range envs {
		ids[i] = e.ID
	}
	last, err := store.LastActivities(q.ctx(), w.Store.Reader(), ids)
	if err != nil {
		return nil, err
	}
	out := make([]envRow, 0, len(envs))
	for _, e := range envs {
		var l *store.Activity
		if a, ok := last[e.ID]; ok {
			l = &a
		}
		out = append(out, w.row(e, byName[e.IntegrationName], l))
	}
	return out, nil
}

// action is one button the environment page may show.
type action struct {
	Op, Label, Confirm string
	Danger             bool
}

type envData struct {
	Row        envRow
	In         store.Integration
	Activities []store.Activity
	Current    *store.Activity
	LogText    string
	LogNext    int64
	LogDone    bool
	AppLog     string
	AppNext    int64
	Actions    []action
	CanWrite   bool
	Notice     string
	Error      string
}

// environment is one environment's page: facts, actions the caller's role
// allows, the activity timeline, the current activity's log and the app's
// output, both following live.
func (w *Web) environment(rw http.ResponseWriter, q *request) {
	integ, name := q.r.PathValue("integration"), q.r.PathValue("name")
	e, err := store.GetEnvironment(q.ctx(), w.Store.Reader(), integ, name)
	if err == nil && !e.DeletedAt.IsZero() {
		err = store.ErrNotFound
	}
	if err != nil {
		w.notFoundOr(rw, q, fmt.Sprintf("environment %s of integration %s", name, integ), err)
		return
	}
	notice := ""
	if op := q.r.URL.Query().Get("done"); op != "" && len(op) < 20 {
		notice = op + " requested: the state below changes as it runs."
	}
	w.showEnvironment(rw, q, e, notice, "", http.StatusOK)
}

func (w *Web) showEnvironment(rw http.ResponseWriter, q *request, e store.Environment, notice, errMsg string, code int) {
	in := w.integrationOf(q.ctx(), e.IntegrationName)
	if !q.can(auth.ActRead, in) {
		w.message(rw, q, http.StatusForbidden, "Not allowed",
			fmt.Sprintf("Seeing environment %s of integration %s needs the read role in space %q (or Reporter on the GitLab project); ask an admin of that space (glenv user:grant).", e.Name, in.Name, in.Space))
		return
	}
	acts, err := store.ListActivities(q.ctx(), w.Store.Reader(), store.ActivityFilter{EnvironmentID: e.ID, Limit: 20})
	if err != nil {
		w.internal(rw, q, "list activities", err)
		return
	}
	var last *store.Activity
	if len(acts) > 0 {
		last = &acts[0]
	}
	d := envData{Row: w.row(e, in, last), In: in, Activities: acts, Current: last, Notice: notice, Error: errMsg}
	if last != nil {
		d.LogText, d.LogNext, d.LogDone, err = readActivityLog(q, *last)
		if err != nil {
			w.internal(rw, q, "read the activity log", err)
			return
		}
	}
	if w.AppLog != nil {
		page := readFrom(w.AppLog(e.ID), 0, 256<<10)
		d.AppLog, d.AppNext = string(page), int64(len(page))
	}
	d.CanWrite = q.can(auth.ActWrite, in)
	if d.CanWrite {
		d.Actions = actionsFor(e)
	}
	w.render(rw, q, code, "environment", e.Name+" · "+e.IntegrationName, d)
}

// actionsFor lists the buttons for an environment in its state; the state
// machine still decides (a refused action says why).
func actionsFor(e store.Environment) []action {
	var out []action
	switch e.State {
	case store.StateInactive:
		out = append(out, action{Op: string(jobs.OpActivate), Label: "Activate"})
	default:
		out = append(out, action{Op: string(jobs.OpRedeploy), Label: "Redeploy"})
		if e.Kind == "branch" {
			out = append(out, action{Op: string(jobs.OpDeactivate), Label: "Deactivate"})
		}
	}
	if e.Parent != "" {
		out = append(out, action{Op: string(jobs.OpSyncData), Label: "Sync data from " + e.Parent,
			Confirm: fmt.Sprintf("Replace the data of %s with a copy of %s's?", e.Name, e.Parent)})
	}
	out = append(out, action{Op: "delete", Label: "Delete", Danger: true,
		Confirm: fmt.Sprintf("Delete environment %s of %s? Its app and data are removed.", e.Name, e.IntegrationName)})
	return out
}

// action runs an environment action through /api/v1 (its guard decides
// who may, its CSRF check wants the form's token, its audit records it).
func (w *Web) action(rw http.ResponseWriter, q *request) {
	id, err := strconv.ParseInt(q.r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		w.message(rw, q, http.StatusBadRequest, "Bad request", "id: must be a positive number")
		return
	}
	e, err := store.GetEnvironmentByID(q.ctx(), w.Store.Reader(), id)
	if err != nil {
		w.notFoundOr(rw, q, fmt.Sprintf("environment %d", id), err)
		return
	}
	op := q.r.PathValue("op")
	if err := q.r.ParseForm(); err != nil {
		w.message(rw, q, http.StatusBadRequest, "Bad request", "the form could not be read: "+err.Error())
		return
	}
	method, path := http.MethodPost, fmt.Sprintf("/api/v1/environments/%d/%s", id, url.PathEscape(op))
	if op == "delete" {
		if q.r.PostForm.Get("confirm") != e.Name {
			w.showEnvironment(rw, q, e, "", fmt.Sprintf("confirm: type the environment's name, %s, to delete it", e.Name), http.StatusBadRequest)
			return
		}
		method, path = http.MethodDelete, fmt.Sprintf("/api/v1/environments/%d", id)
	}
	ans := q.callAPI(method, path, nil, q.r.PostForm.Get("csrf_token"))
	if !ans.OK() {
		w.showEnvironment(rw, q, e, "", ans.Message(), ans.Status)
		return
	}
	if op == "delete" {
		http.Redirect(rw, q.r, "/?integration="+url.QueryEscape(e.IntegrationName), http.StatusSeeOther)
		return
	}
	http.Redirect(rw, q.r, envPage(e)+"?done="+url.QueryEscape(op), http.StatusSeeOther)
}

func (w *Web) notFoundOr(rw http.ResponseWriter, q *request, what string, err error) {
	if err == store.ErrNotFound {
		w.message(rw, q, http.StatusNotFound, "Not found", what+" does not exist (or was deleted).")
		return
	}
	w.internal(rw, q, "read "+what, err)
}

func (w *Web) internal(rw http.ResponseWriter, q *request, what string, err error) {
	w.Log.Error("dashboard", "what", what, "path", q.r.URL.Path, "err", err)
	w.message(rw, q, http.StatusInternalServerError, "Something went wrong", "glenv could not "+what+"; the server log says why.")
}
