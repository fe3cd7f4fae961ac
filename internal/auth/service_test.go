package auth_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/glenv/glenv/internal/auth"
	"github.com/glenv/glenv/internal/gitlabtest"
	"github.com/glenv/glenv/internal/secret"
	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/store/storetest"
)

// clock is a movable clock shared by glenv's services and the double.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }
func newClock() *clock               { return &clock{now: time.Now()} }
func quiet() *slog.Logger            { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
func box(t *testing.T) *secret.Box   { b, err := secret.NewBox(make([]byte, 32)); must(t, err); return b }
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
func ctx() context.Context                { return context.Background() }
func hostOf(gl *gitlabtest.Server) string { return strings.TrimPrefix(gl.URL, "http://") }

// world is one glenv auth service on a real database, a GitLab double with
// glenv registered as an application, and a project with a developer.
type world struct {
	st      *store.Store
	svc     *auth.Service
	gl      *gitlabtest.Server
	clk     *clock
	srv     *httptest.Server
	dev     gitlabtest.User
	project gitlabtest.Project
	in      store.Integration
}

func newWorld(t *testing.T, st *store.Store) *world {
	w := &world{st: st, gl: gitlabtest.New(t), clk: newClock()}
	w.gl.SetClock(w.clk.Now)
	b := box(t)
	mux := http.NewServeMux()
	w.srv = httptest.NewServer(mux)
	t.Cleanup(w.srv.Close)
	w.svc = &auth.Service{Store: st, Box: b, PublicURL: w.srv.URL, Log: quiet(), Now: w.clk.Now}
	w.svc.Routes(mux)
	app := w.gl.AddOAuthApp(gitlabtest.OAuthApp{RedirectURI: w.srv.URL + "/auth/callback", Scopes: auth.Scopes})
	_, err := w.svc.AddHost(ctx(), auth.AddHostInput{URL: w.gl.URL, ClientID: app.ClientID, ClientSecret: app.Secret})
	must(t, err)
	w.dev = w.gl.AddUser(gitlabtest.User{Username: "dev"})
	w.project = w.gl.AddProject(gitlabtest.Project{PathWithNamespace: "group/app", DefaultBranch: "main", Members: map[int64]int{w.dev.ID: 30}})
	w.in = store.Integration{Name: "app", BaseURL: w.gl.URL, UserFacingURL: w.gl.URL, ProjectID: w.project.ID, Space: "root"}
	return w
}

// signIn runs the browser flow for u and returns their principal.
func (w *world) signIn(t *testing.T, u gitlabtest.User) auth.Principal {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	return w.signInWith(t, jar, w.gl, u)
}

// signInWith runs the flow with a browser's jar on GitLab gl: a browser
// signed in to glenv already connects the account instead.
func (w *world) signInWith(t *testing.T, jar http.CookieJar, gl *gitlabtest.Server, u gitlabtest.User) auth.Principal {
	t.Helper()
	gu, _ := url.Parse(gl.URL)
	jar.SetCookies(gu, []*http.Cookie{gl.BrowserCookie(u.ID)})
	c := &http.Client{Jar: jar, CheckRedirect: func(r *http.Request, _ []*http.Request) error {
		if r.URL.Path == "/done" {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	resp, err := c.Get(w.srv.URL + "/auth/gitlab?host=" + url.QueryEscape(hostOf(gl)) + "&return_to=/done")
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in ended with %d", resp.StatusCode)
	}
	req := httptest.NewRequest("GET", "/", nil)
	su, _ := url.Parse(w.srv.URL)
	for _, ck := range jar.Cookies(su) {
		req.AddCookie(ck)
	}
	p, err := w.svc.Authenticate(ctx(), req, false)
	must(t, err)
	return p
}

func identityOf(t *testing.T, st *store.Store, p auth.Principal) store.Identity {
	ids, err := store.IdentitiesOf(ctx(), st.Reader(), p.UserID)
	must(t, err)
	if len(ids) != 1 {
		t.Fatalf("%d identities", len(ids))
	}
	return ids[0]
}

// Two replicas (two services with their own locks, one database) and ten
// concurrent callers refresh an expiring token exactly once: GitLab's
// refresh tokens work once.
func TestRefreshHappensOnceAcrossReplicas(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		w := newWorld(t, st)
		p := w.signIn(t, w.dev)
		id := identityOf(t, st, p)
		other := &auth.Service{Store: st, Box: w.svc.Box, PublicURL: w.svc.PublicURL, Log: quiet(), Now: w.clk.Now}
		w.clk.add(2*time.Hour - 4*time.Minute) // within 5 minutes of expiry
		var wg sync.WaitGroup
		tokens := make(chan string, 10)
		errs := make(chan error, 10)
		for i := 0; i < 10; i++ {
			svc := w.svc
			if i%2 == 1 {
				svc = other
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				tok, err := svc.AccessToken(ctx(), id.ID, "")
				tokens <- tok
				errs <- err
			}()
		}
		wg.Wait()
		close(tokens)
		close(errs)
		for err := range errs {
			must(t, err)
		}
		seen := map[string]bool{}
		for tok := range tokens {
			seen[tok] = true
		}
		if st := w.gl.OAuthStats(); st.Refreshes != 1 || st.RefusedRefreshes != 0 || len(seen) != 1 {
			t.Fatalf("refreshes %+v, %d distinct tokens", st, len(seen))
		}
		// The rotated pair was stored: it is used without refreshing again.
		if _, err := w.svc.AccessToken(ctx(), id.ID, ""); err != nil || w.gl.OAuthStats().Refreshes != 1 {
			t.Fatalf("after refresh: %v %+v", err, w.gl.OAuthStats())
		}
	})
}

func TestRefusedRefreshMarksReconnectNeeded(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		w := newWorld(t, st)
		p := w.signIn(t, w.dev)
		id := identityOf(t, st, p)
		w.gl.RevokeOAuthTokens(w.dev.ID)
		w.clk.add(2 * time.Hour)
		for i := 0; i < 3; i++ {
			if _, err := w.svc.AccessToken(ctx(), id.ID, ""); !errors.Is(err, auth.ErrReconnect) {
				t.Fatalf("want ErrReconnect, got %v", err)
			}
		}
		if got := identityOf(t, st, p); got.State != store.IdentityReconnectNeeded {
			t.Fatalf("state %s", got.State)
		}
		if s := w.gl.OAuthStats(); s.RefusedRefreshes != 1 {
			t.Fatalf("a refused refresh was retried: %+v", s)
		}
	})
}

// Removing someone from the GitLab project takes their role away once the
// cached membership is older than five minutes.
func TestRoleRemovedInGitLabIsGoneWithinFiveMinutes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		w := newWorld(t, st)
		p := w.signIn(t, w.dev)
		if ok, err := w.svc.CanIntegration(ctx(), p, auth.ActWrite, w.in); !ok || err != nil {
			t.Fatalf("developer cannot write: %v", err)
		}
		if ok, _ := w.svc.CanIntegration(ctx(), p, auth.ActAdmin, w.in); ok {
			t.Fatal("developer administers")
		}
		w.gl.SetMember(w.project.ID, w.dev.ID, 0)
		w.clk.add(4 * time.Minute)
		if ok, _ := w.svc.CanIntegration(ctx(), p, auth.ActWrite, w.in); !ok {
			t.Fatal("cache ended early")
		}
		w.clk.add(2 * time.Minute)
		if ok, _ := w.svc.CanIntegration(ctx(), p, auth.ActRead, w.in); ok {
			t.Fatal("a role removed in GitLab still reads after 6 minutes")
		}
	})
}

func TestAPITokens(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		w := newWorld(t, st)
		bearer := func(v string) *http.Request {
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("Authorization", "Bearer "+v)
			return r
		}
		live := store.NewTokenValue()
		tok, err := store.CreateUserToken(ctx(), st.DB, store.APIToken{Name: "ci", Role: store.RoleMember, Scope: store.ScopeReadAPI}, live)
		must(t, err)
		p, err := w.svc.Authenticate(ctx(), bearer(live), false)
		must(t, err)
		if auth.Can(p, auth.ActWrite, "root") || !auth.Can(p, auth.ActRead, "root") {
			t.Fatal("a read_api token must read and never write")
		}
		got, _ := store.GetAPIToken(ctx(), st.Reader(), tok.ID)
		first := got.LastUsedAt
		if first.IsZero() {
			t.Fatal("last_used_at not recorded")
		}
		_, _ = w.svc.Authenticate(ctx(), bearer(live), false)
		if got, _ = store.GetAPIToken(ctx(), st.Reader(), tok.ID); !got.LastUsedAt.Equal(first) {
			t.Fatal("last_used_at written twice within a minute")
		}

		expired := store.NewTokenValue()
		_, err = store.CreateUserToken(ctx(), st.DB, store.APIToken{Name: "old", Role: store.RoleMember, ExpiresAt: store.Now().Add(-time.Second)}, expired)
		must(t, err)
		if _, err := w.svc.Authenticate(ctx(), bearer(expired), false); !errors.Is(err, auth.ErrTokenExpired) {
			t.Fatalf("expired token: %v", err)
		}
		must(t, store.RevokeAPIToken(ctx(), st.DB, tok.ID))
		if _, err := w.svc.Authenticate(ctx(), bearer(live), false); !errors.Is(err, auth.ErrBadToken) {
			t.Fatalf("revoked token: %v", err)
		}
	})
}

func TestCSRF(t *testing.T) {
	svc := &auth.Service{PublicURL: "https://glenv.example.com"}
	session := auth.Principal{Kind: auth.KindSession, Session: &store.Session{CSRF: "c0ffee"}}
	token := auth.Principal{Kind: auth.KindToken}
	cases := []struct {
		name   string
		p      auth.Principal
		method string
		hdr    map[string]string
		ok     bool
	}{
		{"a session read needs nothing", session, "GET", nil, true},
		{"a session write without token or origin is refused", session, "POST", nil, false},
		{"a session write with the CSRF token passes", session, "POST", map[string]string{"X-CSRF-Token": "c0ffee"}, true},
		{"a session write with a wrong CSRF token is refused", session, "POST", map[string]string{"X-CSRF-Token": "bad"}, false},
		{"a session write from glenv's origin passes", session, "DELETE", map[string]string{"Origin": "https://glenv.example.com"}, true},
		{"a session write from another origin is refused", session, "POST", map[string]string{"Origin": "https://evil.example"}, false},
		{"a token write needs no CSRF token", token, "POST", nil, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(c.method, "/api/v1/x", nil)
			for k, v := range c.hdr {
				r.Header.Set(k, v)
			}
			if err := svc.CheckCSRF(c.p, r); (err == nil) != c.ok {
				t.Fatalf("CheckCSRF = %v, want ok=%v", err, c.ok)
			}
		})
	}
}

// One person connects accounts on two GitLab hosts; disconnecting one
// deletes its tokens and revokes them at that GitLab.
func TestConnectAndDisconnectAnotherHost(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		w := newWorld(t, st)
		jar, _ := cookiejar.New(nil)
		p := w.signInWith(t, jar, w.gl, w.dev)
		second := gitlabtest.New(t)
		app := second.AddOAuthApp(gitlabtest.OAuthApp{RedirectURI: w.srv.URL + "/auth/callback", Scopes: auth.Scopes})
		_, err := w.svc.AddHost(ctx(), auth.AddHostInput{URL: second.URL, ClientID: app.ClientID, ClientSecret: app.Secret})
		must(t, err)
		other := second.AddUser(gitlabtest.User{Username: "dev-elsewhere"})
		if again := w.signInWith(t, jar, second, other); again.UserID != p.UserID {
			t.Fatalf("connecting made another user: %d != %d", again.UserID, p.UserID)
		}
		conns, err := w.svc.Connections(ctx(), p.UserID, false)
		must(t, err)
		if len(conns) != 2 {
			t.Fatalf("connections: %+v", conns)
		}
		note, err := w.svc.Disconnect(ctx(), p.UserID, hostOf(second))
		must(t, err)
		if !strings.Contains(note, "Applications") {
			t.Fatalf("disconnect must say how to revoke glenv on GitLab's side: %q", note)
		}
		if s := second.OAuthStats(); s.Revocations != 2 {
			t.Fatalf("tokens not revoked at GitLab: %+v", s)
		}
		if conns, _ = w.svc.Connections(ctx(), p.UserID, false); len(conns) != 1 || conns[0].Host != hostOf(w.gl) {
			t.Fatalf("after disconnect: %+v", conns)
		}
		if _, err := w.svc.Disconnect(ctx(), p.UserID, hostOf(second)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("second disconnect: %v", err)
		}
	})
}

// A CI job token is verified with the GitLab that issued it. When
// integrations of two GitLabs connect the same numeric project id, which
// one did is unknown: the token is refused and sent to neither, so a
// GitLab someone else registered never receives another's job token.
func TestAJobTokenGoesToNoGitLabWhenTwoShareTheProjectID(t *testing.T) {
	st := storetest.Open(t, storetest.Backends()[0])
	w := newWorld(t, st)
	other := gitlabtest.New(t)
	job := w.gl.AddJob(gitlabtest.Job{ProjectID: w.project.ID})
	ins := []store.Integration{w.in, {Name: "elsewhere", BaseURL: other.URL, UserFacingURL: other.URL, ProjectID: w.project.ID, Space: "root"}}
	jobCalls := func(gl *gitlabtest.Server) (n int) {
		for _, c := range gl.Calls() {
			if c.Path == "/api/v4/job" {
				n++
			}
		}
		return n
	}
	allow := func(ins []store.Integration) (int, bool) {
		r := httptest.NewRequest("GET", "/api/v4/projects/1/environments", nil)
		r.Header.Set("JOB-TOKEN", job.Token)
		rec := httptest.NewRecorder()
		p, ok := w.svc.V4Authenticate(rec, r, nil)
		if !ok {
			t.Fatalf("a job token refused before its project is known: %d %s", rec.Code, rec.Body)
		}
		rec = httptest.NewRecorder()
		_, ok = w.svc.V4Allow(rec, r.WithContext(auth.WithPrincipal(r.Context(), p)), ins)
		return rec.Code, ok
	}
	if code, ok := allow(ins); ok || code != 401 || jobCalls(w.gl)+jobCalls(other) != 0 {
		t.Fatalf("two GitLabs: allowed %v (%d), /job calls %d and %d; want 401 and none", ok, code, jobCalls(w.gl), jobCalls(other))
	}
	if _, ok := allow(ins[:1]); !ok || jobCalls(w.gl) != 1 || jobCalls(other) != 0 {
		t.Fatalf("one GitLab: allowed %v, /job calls %d and %d", ok, jobCalls(w.gl), jobCalls(other))
	}
}
