package web_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/glenv/glenv/internal/activitylog"
	"github.com/glenv/glenv/internal/api"
	"github.com/glenv/glenv/internal/auth"
	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/store/storetest"
	"github.com/glenv/glenv/internal/web"
)

// dashboard is internal/web on a real database with /api/v1 behind it and
// an admin API token, without GitLab or a job queue.
type dashboard struct {
	st    *store.Store
	h     http.Handler
	token string
}

func newDashboard(t testing.TB, st *store.Store) *dashboard {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	envURL := func(e store.Environment) string { return "http://" + e.Host + ".localhost/" }
	svc := &auth.Service{Store: st, Log: quiet}
	a := &api.API{Store: st, Auth: svc, Log: quiet, EnvURL: envURL}
	w := &web.Web{Store: st, Auth: svc, API: a.Handler(), Log: quiet, EnvURL: envURL, Hub: web.NewHub(st, quiet),
		LogPoll: 10 * time.Millisecond, Heartbeat: time.Second}
	mux := http.NewServeMux()
	text := func(rw http.ResponseWriter, r *http.Request) { io.WriteString(rw, "glenv — plain text\n") }
	if err := w.Routes(mux, text); err != nil {
		t.Fatal(err)
	}
	d := &dashboard{st: st, h: mux, token: "glenv_web_pages_admin_token_012345"}
	if _, err := store.CreateAPIToken(context.Background(), st.DB, "admin", store.RoleAdmin, d.token); err != nil {
		t.Fatal(err)
	}
	return d
}

// get asks for a page as a browser of the admin would.
func (d *dashboard) get(t testing.TB, path string, hdr ...string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.Header.Set("Accept", "text/html")
	req.Header.Set("Authorization", "Bearer "+d.token)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	d.h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

func (d *dashboard) save(t testing.TB, e store.Environment) store.Environment {
	t.Helper()
	if e.Host == "" {
		e.Host = strings.NewReplacer("/", "-").Replace(e.Name) + "--" + e.IntegrationName
	}
	if e.Slug == "" {
		e.Slug = e.Host
	}
	if err := d.st.Tx(context.Background(), func(tx *sql.Tx) error { return store.SaveEnvironment(context.Background(), tx, &e) }); err != nil {
		t.Fatal(err)
	}
	return e
}

func rows(body string) int { return strings.Count(body, `data-env="`) }

func TestTheEnvironmentsListFiltersAndPagesFromTheQueryString(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		d := newDashboard(t, st)
		for i := range 100 {
			d.save(t, store.Environment{IntegrationName: "app", Name: fmt.Sprintf("b-%03d", i), Kind: "branch", Ref: fmt.Sprintf("b-%03d", i), State: store.StateInactive})
		}
		for i := range 15 {
			d.save(t, store.Environment{IntegrationName: "app", Name: fmt.Sprintf("mr-%d", i+1), Kind: "mr", MRIID: int64(i + 1), Ref: "feature", State: store.StateActive})
		}
		for i := range 5 {
			d.save(t, store.Environment{IntegrationName: "other", Name: fmt.Sprintf("tag-v%d", i), Kind: "tag", Ref: fmt.Sprintf("v%d", i), State: store.StateFailed})
		}
		for _, c := range []struct {
			name, path string
			rows       int
			has        []string
		}{
			{"the first page holds 50, newest change first", "/", 50, []string{"1–50 of 120", "page=2", "tag-v4"}},
			{"the last page holds the rest", "/?page=3", 20, []string{"101–120 of 120", "page=2"}},
			{"kind mr lists merge requests only", "/?kind=mr", 15, []string{"!15"}},
			{"state and integration combine", "/?integration=other&state=failed", 5, []string{"tag-v0"}},
			{"text matches part of a name", "/?q=B-01", 10, []string{"b-019"}},
			{"text matches part of a branch", "/?q=featu&kind=mr", 15, nil},
			{"text is no pattern", "/?q=%25", 0, []string{"No environment matches"}},
		} {
			t.Run(c.name, func(t *testing.T) {
				code, body := d.get(t, c.path)
				if code != http.StatusOK || rows(body) != c.rows {
					t.Fatalf("GET %s: %d with %d rows, want 200 with %d", c.path, code, rows(body), c.rows)
				}
				for _, s := range c.has {
					if !strings.Contains(body, s) {
						t.Errorf("GET %s lacks %q", c.path, s)
					}
				}
			})
		}
		for _, c := range []struct{ path, field string }{
			{"/?state=bogus", "state: &#34;bogus&#34; must be one of"},
			{"/?kind=pipeline", "kind: &#34;pipeline&#34; must be branch, mr or tag"},
			{"/?page=0", "page: &#34;0&#34; must be a number from 1 to 200"},
		} {
			t.Run("a bad "+strings.SplitN(c.field, ":", 2)[0]+" is refused naming it", func(t *testing.T) {
				code, body := d.get(t, c.path)
				if code != http.StatusBadRequest || !strings.Contains(body, c.field) {
					t.Errorf("GET %s: %d, want 400 saying %q", c.path, code, c.field)
				}
			})
		}
	})
}

func TestScriptsStillGetPlainTextAndBrowsersAreSentToSignIn(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		d := newDashboard(t, st)
		rec := httptest.NewRecorder()
		d.h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		if !strings.Contains(rec.Body.String(), "plain text") {
			t.Errorf("GET / without Accept: text/html answered %q", rec.Body.String())
		}
		req := httptest.NewRequest(http.MethodGet, "/environments/app/feature/login?x=1", nil)
		req.Header.Set("Accept", "text/html")
		rec = httptest.NewRecorder()
		d.h.ServeHTTP(rec, req)
		if loc := rec.Header().Get("Location"); rec.Code != http.StatusSeeOther || loc != "/signin?return_to=%2Fenvironments%2Fapp%2Ffeature%2Flogin%3Fx%3D1" {
			t.Errorf("an unsigned browser got %d to %q", rec.Code, loc)
		}
	})
}

// A session's forms need its CSRF token: /api/v1's check applies to the
// dashboard's actions, whichever page posted them.
func TestAnActionWithoutTheSessionsCSRFTokenIsRefused(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		d := newDashboard(t, st)
		ctx := context.Background()
		u, err := store.CreateUser(ctx, st.DB, store.User{Username: "alice", IsAdmin: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := store.CreateSession(ctx, st.DB, "session-value", store.Session{UserID: u.ID, CSRF: "the-csrf-token", ExpiresAt: time.Now().Add(time.Hour)}, "127.0.0.1"); err != nil {
			t.Fatal(err)
		}
		e := d.save(t, store.Environment{IntegrationName: "app", Name: "main", Kind: "branch", Ref: "main", State: store.StateActive})
		for _, token := range []string{"", "wrong"} {
			req := httptest.NewRequest(http.MethodPost, fmt.Sprintf("/environments/%d/actions/redeploy", e.ID), strings.NewReader("csrf_token="+token))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Origin", "http://evil.example")
			req.AddCookie(&http.Cookie{Name: auth.SessionCookie, Value: "session-value"})
			rec := httptest.NewRecorder()
			d.h.ServeHTTP(rec, req)
			if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "CSRF") {
				t.Errorf("csrf_token %q: %d, want 403 naming the CSRF token", token, rec.Code)
			}
		}
		if got, _ := store.GetEnvironmentByID(ctx, st.Reader(), e.ID); got.State != store.StateActive || got.PendingActivityID != 0 {
			t.Errorf("a refused action changed the environment: %+v", got)
		}
	})
}

// A log stream resumes after a reconnect from the browser's Last-Event-ID:
// no line twice, none missed, then the activity's end.
func TestALogStreamResumesFromTheLastEventID(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		d := newDashboard(t, st)
		ctx := context.Background()
		act := store.Activity{IntegrationName: "app", Kind: store.ActivityDeploy, State: store.ActivityRunning}
		if err := store.InsertActivity(ctx, st.DB, &act); err != nil {
			t.Fatal(err)
		}
		logs := activitylog.New(st, activitylog.Options{})
		lw := logs.Writer(act.ID)
		lw.Line("line one <b>")
		if err := lw.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		first, err := activitylog.Read(ctx, st.Reader(), act.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		lw.Line("line two")
		if err := lw.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if err := store.SetActivityState(ctx, st.DB, act.ID, store.ActivityComplete, "deployed"); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name, lastID string
			want, not    []string
		}{
			{"from the start", "", []string{"line one &lt;b&gt;", "line two", "event: end"}, nil},
			{"after a reconnect", strconv.FormatInt(first.Next, 10), []string{"line two", "event: end"}, []string{"line one"}},
		} {
			t.Run(c.name, func(t *testing.T) {
				code, body := d.get(t, fmt.Sprintf("/events/activities/%d", act.ID), "Last-Event-ID", c.lastID)
				if code != http.StatusOK {
					t.Fatalf("%d %s", code, body)
				}
				for _, s := range c.want {
					if !strings.Contains(body, s) {
						t.Errorf("stream lacks %q:\n%s", s, body)
					}
				}
				for _, s := range c.not {
					if strings.Contains(body, s) {
						t.Errorf("stream repeats %q:\n%s", s, body)
					}
				}
			})
		}
	})
}

func TestOpeningAGitLabURLGoesToItsEnvironment(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		d := newDashboard(t, st)
		in := store.Integration{Name: "app", Type: "gitlab", BaseURL: "http://gitlab.internal", UserFacingURL: "https://gitlab.example.com",
			ProjectID: 5, ProjectPath: "group/app", DefaultBranch: "main", Space: auth.Root}
		if err := store.CreateIntegration(context.Background(), st.DB, &in); err != nil {
			t.Fatal(err)
		}
		d.save(t, store.Environment{IntegrationName: "app", Name: "main", Kind: "branch", Ref: "main", State: store.StateActive, HeadSHA: strings.Repeat("a", 40)})
		d.save(t, store.Environment{IntegrationName: "app", Name: "feature/login", Kind: "branch", Ref: "feature/login", State: store.StateInactive, HeadSHA: strings.Repeat("b", 40)})
		d.save(t, store.Environment{IntegrationName: "app", Name: "mr-7", Kind: "mr", MRIID: 7, Ref: "feature/login", State: store.StateActive})
		gl := "https://gitlab.example.com/group/app"
		for _, c := range []struct{ name, url, to string }{
			{"a merge request opens mr-<iid>", gl + "/-/merge_requests/7/diffs", "/environments/app/mr-7"},
			{"a branch opens its environment", gl + "/-/tree/feature/login", "/environments/app/feature/login"},
			{"a file in a branch opens the branch's", gl + "/-/blob/feature/login/README.md", "/environments/app/feature/login"},
			{"a commit opens the branch that has it", gl + "/-/commit/bbbbbbbb", "/environments/app/feature/login"},
			{"a project opens its default branch's", gl, "/environments/app/main"},
			{"the API host works too", "http://gitlab.internal/group/app/-/merge_requests/7", "/environments/app/mr-7"},
		} {
			t.Run(c.name, func(t *testing.T) {
				req := httptest.NewRequest(http.MethodGet, "/open?url="+url.QueryEscape(c.url), nil)
				req.Header.Set("Authorization", "Bearer "+d.token)
				rec := httptest.NewRecorder()
				d.h.ServeHTTP(rec, req)
				if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != c.to {
					t.Errorf("%s: %d to %q, want %s", c.url, rec.Code, rec.Header().Get("Location"), c.to)
				}
			})
		}
		t.Run("an inactive environment offers activation to who may", func(t *testing.T) {
			_, body := d.get(t, "/environments/app/feature/login")
			if !strings.Contains(body, "Activate it to build and start it") || !strings.Contains(body, `data-op="activate"`) {
				t.Errorf("no activation offered:\n%s", body)
			}
		})
		t.Run("an unknown project says which integration to add", func(t *testing.T) {
			code, body := d.get(t, "/open?url="+url.QueryEscape("https://gitlab.example.com/group/other/-/merge_requests/1"))
			if code != http.StatusNotFound || !strings.Contains(body, "glenv integration:add --type=gitlab --base-url https://gitlab.example.com --gitlab-project group/other") ||
				!strings.Contains(body, "/integrations/new?url=https%3A%2F%2Fgitlab.example.com%2Fgroup%2Fother") {
				t.Errorf("%d\n%s", code, body)
			}
		})
		t.Run("a missing environment says what creates it", func(t *testing.T) {
			code, body := d.get(t, "/open?url="+url.QueryEscape(gl+"/-/merge_requests/8"))
			if code != http.StatusNotFound || !strings.Contains(body, "no environment exists for merge request !8") {
				t.Errorf("%d\n%s", code, body)
			}
		})
	})
}

// Admin pages show /api/v1's lists to admins; /api/v1 refuses the rest.
func TestAdminPagesAreForAdmins(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		d := newDashboard(t, st)
		ctx := context.Background()
		store.InsertAuditEvent(ctx, st.DB, store.AuditEvent{Actor: "gitlab.example.com/alice", Action: "integration:add", Target: "integration:app"})
		for _, what := range []string{"spaces", "users", "tokens", "hosts", "audit"} {
			if code, body := d.get(t, "/admin/"+what); code != http.StatusOK || (what == "audit" && !strings.Contains(body, "integration:add")) {
				t.Errorf("/admin/%s: %d", what, code)
			}
		}
		member := "glenv_web_pages_member_token_0123456"
		if _, err := store.CreateAPIToken(ctx, st.DB, "member", store.RoleMember, member); err != nil {
			t.Fatal(err)
		}
		code, body := d.get(t, "/admin/audit", "Authorization", "Bearer "+member)
		if code != http.StatusForbidden || !strings.Contains(body, "needs an admin") {
			t.Errorf("a member reading the audit: %d", code)
		}
	})
}
