package main_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/glenv/glenv/internal/gitlabtest"
)

// authWorld is a glenv with a registered GitLab host and the integration
// "app", and GitLab users of every access level on its project.
type authWorld struct {
	t                        *testing.T
	g                        *glenv
	gl                       *gitlabWorld
	host                     string
	dev, rep, outsider, boss gitlabtest.User
}

func newAuthWorld(t *testing.T) *authWorld { return newAuthWorldOn(t, newGitLab(t)) }

// newAuthWorldOn is newAuthWorld on a prepared GitLab, with more settings
// and integration:add arguments.
func newAuthWorldOn(t *testing.T, gl *gitlabWorld, extra ...string) *authWorld {
	var env, addExtra []string
	for _, e := range extra {
		if strings.HasPrefix(e, "GLENV_") {
			env = append(env, e)
		} else {
			addExtra = append(addExtra, e)
		}
	}
	host := strings.TrimPrefix(gl.URL, "http://")
	boss := gl.AddUser(gitlabtest.User{Username: "boss"})
	g := startGlenv(t, "", append(env, "GLENV_ADMINS="+host+"/boss")...)
	w := &authWorld{t: t, g: g, gl: gl, host: host, boss: boss,
		dev:      gl.AddUser(gitlabtest.User{Username: "dev"}),
		rep:      gl.AddUser(gitlabtest.User{Username: "rep"}),
		outsider: gl.AddUser(gitlabtest.User{Username: "outsider"})}
	gl.SetMember(gl.Project.ID, w.dev.ID, 30)
	gl.SetMember(gl.Project.ID, w.rep.ID, 20)
	app := gl.AddOAuthApp(gitlabtest.OAuthApp{RedirectURI: g.URL + "/auth/callback", Scopes: []string{"read_user", "openid", "read_api", "api"}})

	// A wrong secret is refused with what to do, and nothing is stored.
	_, stderr, code := g.run("", "gitlab-host:add", "--url", gl.URL, "--client-id", app.ClientID, "--client-secret", "wrong")
	if code == 0 || !strings.Contains(stderr, "invalid_client") {
		t.Fatalf("a wrong client secret was accepted: exit %d %s", code, stderr)
	}
	out := g.mustRun("gitlab-host:add", "--url", gl.URL, "--client-id", app.ClientID, "--client-secret", app.Secret)
	if !strings.Contains(out, g.URL+"/auth/callback") || !strings.Contains(out, "read_user") {
		t.Fatalf("gitlab-host:add must print the redirect URL and scopes:\n%s", out)
	}
	if list := g.mustRun("gitlab-host:list"); strings.Contains(list, app.Secret) || !strings.Contains(list, host) {
		t.Fatalf("gitlab-host:list shows the secret or misses the host:\n%s", list)
	}
	g.mustRun(addArgs(gl, addExtra...)...)
	return w
}

// browser is a person's browser: a cookie jar, signed in to the GitLab
// double as u, that does not follow redirects by itself.
type browser struct {
	t      *testing.T
	w      *authWorld
	c      *http.Client
	csrf   string
	header http.Header // Set-Cookie of the callback
}

func (w *authWorld) browser(u gitlabtest.User) *browser {
	jar, _ := cookiejar.New(nil)
	gu, _ := url.Parse(w.gl.URL)
	jar.SetCookies(gu, []*http.Cookie{w.gl.BrowserCookie(u.ID)})
	// Environment hosts (<label>.localhost) are glenv's own listener.
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		if h, port, err := net.SplitHostPort(addr); err == nil && strings.HasSuffix(h, ".localhost") {
			addr = net.JoinHostPort("127.0.0.1", port)
		}
		return dialer.DialContext(ctx, network, addr)
	}}
	return &browser{t: w.t, w: w, c: &http.Client{Jar: jar, Timeout: 30 * time.Second, Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) do(method, u string, body io.Reader, hdr ...string) (*http.Response, string) {
	b.t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		b.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp, string(raw)
}

// startSignIn follows /auth/gitlab through GitLab's consent and returns the
// callback URL GitLab sends the browser to (not yet visited).
func (b *browser) startSignIn(returnTo string) string {
	b.t.Helper()
	resp, body := b.do("GET", b.w.g.URL+"/auth/gitlab?host="+url.QueryEscape(b.w.host)+"&return_to="+url.QueryEscape(returnTo), nil)
	if resp.StatusCode != http.StatusFound {
		b.t.Fatalf("/auth/gitlab: %d %s", resp.StatusCode, body)
	}
	authz := resp.Header.Get("Location")
	if !strings.Contains(authz, "code_challenge_method=S256") || !strings.Contains(authz, "state=") {
		b.t.Fatalf("authorize URL lacks PKCE S256 or state: %s", authz)
	}
	resp, body = b.do("GET", authz, nil)
	if resp.StatusCode != http.StatusFound {
		b.t.Fatalf("GitLab /oauth/authorize: %d %s", resp.StatusCode, body)
	}
	return resp.Header.Get("Location")
}

// signIn signs in and returns to /.
func (b *browser) signIn() {
	b.t.Helper()
	resp, body := b.do("GET", b.startSignIn("/api/v1/me"), nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/api/v1/me" {
		b.t.Fatalf("callback: %d %s", resp.StatusCode, body)
	}
	b.header = resp.Header
	var me struct {
		CSRF string `json:"csrf_token"`
	}
	b.api("GET", "/api/v1/me", nil, &me, 200)
	b.csrf = me.CSRF
}

// api calls /api/v1 with the session (and the CSRF token on writes).
func (b *browser) api(method, path string, in, out any, want int) string {
	b.t.Helper()
	var body io.Reader
	if in != nil {
		raw, _ := json.Marshal(in)
		body = strings.NewReader(string(raw))
	}
	resp, text := b.do(method, b.w.g.URL+path, body, "X-CSRF-Token", b.csrf, "Content-Type", "application/json")
	if resp.StatusCode != want {
		b.t.Fatalf("%s %s: %d, want %d: %s", method, path, resp.StatusCode, want, text)
	}
	if out != nil {
		if err := json.Unmarshal([]byte(text), out); err != nil {
			b.t.Fatalf("%s %s: %v\n%s", method, path, err, text)
		}
	}
	return text
}

type meJSON struct {
	Kind  string `json:"kind"`
	Admin bool   `json:"admin"`
	User  *struct {
		Username string `json:"username"`
	} `json:"user"`
	Connections []struct {
		Host     string `json:"host"`
		State    string `json:"state"`
		Verified *bool  `json:"verified"`
		Problem  string `json:"problem"`
	} `json:"connections"`
}

func TestSignInWithGitLabAndRolesFromGitLab(t *testing.T) {
	w := newAuthWorld(t)
	dev := w.browser(w.dev)
	dev.signIn()
	cookie := strings.Join(dev.header.Values("Set-Cookie"), "\n")
	if !strings.Contains(cookie, "glenv_session=") || !strings.Contains(cookie, "HttpOnly") || !strings.Contains(cookie, "SameSite=Lax") || strings.Contains(cookie, "Secure") {
		t.Fatalf("session cookie must be HttpOnly, SameSite=Lax, not Secure on http:\n%s", cookie)
	}
	var me meJSON
	dev.api("GET", "/api/v1/me", nil, &me, 200)
	if me.Kind != "session" || me.User == nil || me.User.Username != "dev" || len(me.Connections) != 1 || me.Connections[0].State != "connected" || me.Admin {
		t.Fatalf("/me: %+v", me)
	}

	// A GitLab Developer sees the environments and redeploys them.
	envs := w.g.envs("app")
	main := envs["main"].ID
	var list []envJSON
	dev.api("GET", "/api/v1/environments", nil, &list, 200)
	if len(list) != len(envs) {
		t.Fatalf("developer sees %d of %d environments", len(list), len(envs))
	}
	dev.api("POST", fmt.Sprintf("/api/v1/environments/%d/redeploy", main), nil, nil, 202)
	// A write with the session but neither CSRF token nor same-origin Origin is refused.
	if resp, body := dev.do("POST", fmt.Sprintf("%s/api/v1/environments/%d/redeploy", w.g.URL, main), nil); resp.StatusCode != 403 || !strings.Contains(body, "X-CSRF-Token") {
		t.Fatalf("write without CSRF token: %d %s", resp.StatusCode, body)
	}
	if resp, body := dev.do("POST", fmt.Sprintf("%s/api/v1/environments/%d/redeploy", w.g.URL, main), nil, "Origin", w.g.URL); resp.StatusCode != 202 {
		t.Fatalf("same-origin write: %d %s", resp.StatusCode, body)
	}
	// Only admins see the webhook secret; a GitLab Developer is none.
	dev.api("GET", "/api/v1/integrations/app?show_secret=true", nil, nil, 403)
	// Readers see what an integration is, not how it is wired to GitLab.
	var seen struct {
		HookURL     string `json:"hook_url"`
		Integration struct {
			Name    string `json:"name"`
			BaseURL string `json:"base_url"`
		} `json:"integration"`
	}
	dev.api("GET", "/api/v1/integrations/app", nil, &seen, 200)
	if seen.Integration.Name != "app" || seen.Integration.BaseURL != "" || seen.HookURL != "" {
		t.Fatalf("a non-admin sees the integration's connection details: %+v", seen)
	}

	// A Reporter reads but is refused a redeploy, with what to do.
	rep := w.browser(w.rep)
	rep.signIn()
	rep.api("GET", "/api/v1/environments", nil, &list, 200)
	if len(list) != len(envs) {
		t.Fatalf("reporter sees %d of %d environments", len(list), len(envs))
	}
	if body := rep.api("POST", fmt.Sprintf("/api/v1/environments/%d/redeploy", main), nil, nil, 403); !strings.Contains(body, "user:grant") {
		t.Fatalf("refusal does not say what to do: %s", body)
	}

	// Someone outside the project sees nothing until granted, and through
	// an inheriting child space only reads.
	out := w.browser(w.outsider)
	out.signIn()
	out.api("GET", "/api/v1/environments", nil, &list, 200)
	if len(list) != 0 {
		t.Fatalf("outsider sees %d environments", len(list))
	}
	out.api("GET", fmt.Sprintf("/api/v1/environments/%d", main), nil, nil, 403)
	w.g.mustRun("space:add", "team")
	w.g.mustRun("space:add", "team-web", "--parent", "team")
	w.g.mustRun("space:add", "private", "--no-inherit")
	outsider := w.host + "/outsider"
	w.g.mustRun("user:grant", outsider, "--space", "private", "--role", "admin")
	out.api("GET", "/api/v1/environments", nil, &list, 200)
	if len(list) != 0 {
		t.Fatalf("a role in a space that does not inherit gave read on root: %d environments", len(list))
	}
	w.g.mustRun("user:grant", outsider, "--space", "team-web", "--role", "write")
	out.api("GET", "/api/v1/environments", nil, &list, 200)
	if len(list) != len(envs) {
		t.Fatalf("a role in an inheriting grandchild must give read on root: %d environments", len(list))
	}
	out.api("POST", fmt.Sprintf("/api/v1/environments/%d/redeploy", main), nil, nil, 403)
	w.g.mustRun("user:grant", outsider, "--space", "root", "--role", "write")
	out.api("POST", fmt.Sprintf("/api/v1/environments/%d/redeploy", main), nil, nil, 202)
	if _, stderr, code := w.g.run("", "space:delete", "team"); code == 0 || !strings.Contains(stderr, "not empty") {
		t.Fatalf("a space with a child was deleted: %s", stderr)
	}
	if _, stderr, code := w.g.run("", "space:delete", "root"); code == 0 || !strings.Contains(stderr, "root") {
		t.Fatalf("root was deleted: %s", stderr)
	}

	// The admin named by --admins sees the secret; nobody became admin by signing in first.
	boss := w.browser(w.boss)
	boss.signIn()
	var in struct {
		WebhookSecret string `json:"webhook_secret"`
	}
	boss.api("GET", "/api/v1/integrations/app?show_secret=true", nil, &in, 200)
	if in.WebhookSecret == "" {
		t.Fatal("admin got no webhook secret")
	}
	boss.api("GET", "/api/v1/integrations/app", nil, &seen, 200)
	if seen.Integration.BaseURL == "" || seen.HookURL == "" {
		t.Fatalf("an admin does not see the integration's connection details: %+v", seen)
	}

	// A removed user's session cookie stops working at once.
	w.g.mustRun("user:remove", w.host+"/rep")
	if resp, body := rep.do("GET", w.g.URL+"/api/v1/me", nil); resp.StatusCode != 401 || !strings.Contains(body, "sign in again") {
		t.Fatalf("removed user's session: %d %s", resp.StatusCode, body)
	}

	// Sign-out revokes the session.
	dev.api("POST", "/auth/signout", nil, nil, 200)
	if resp, _ := dev.do("GET", w.g.URL+"/api/v1/me", nil); resp.StatusCode != 401 {
		t.Fatalf("signed-out session still works: %d", resp.StatusCode)
	}

	// Every change is audited with who and from where.
	audit := w.g.mustRun("audit:list")
	for _, want := range []string{"sign-in", "gitlab-host:add", "user:grant", "user:remove", "environment:redeploy", w.host + "/dev", "127.0.0.1"} {
		if !strings.Contains(audit, want) {
			t.Fatalf("audit:list lacks %q:\n%s", want, audit)
		}
	}
	if _, stderr, code := w.g.runAs("nope-not-a-token", "", "audit:list"); code == 0 || !strings.Contains(stderr, "token") {
		t.Fatalf("audit:list without a valid token: %s", stderr)
	}
}

func TestSignInRefusesForgedOrReplayedCallbacks(t *testing.T) {
	w := newAuthWorld(t)
	b := w.browser(w.dev)
	cases := []struct {
		name string
		url  func() string
		want string
	}{
		{"a callback without state is refused", func() string {
			cb := b.startSignIn("/")
			u, _ := url.Parse(cb)
			q := u.Query()
			q.Del("state")
			u.RawQuery = q.Encode()
			return u.String()
		}, "state"},
		{"a state from another browser is refused", func() string {
			other := w.browser(w.dev)
			return other.startSignIn("/")
		}, "another browser"},
		{"a replayed callback is refused", func() string {
			cb := b.startSignIn("/")
			if resp, _ := b.do("GET", cb, nil); resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("first use: %d", resp.StatusCode)
			}
			// The browser still holds a state cookie of a new sign-in.
			b.startSignIn("/")
			return cb
		}, "another browser"},
		{"a replayed callback with its own cookie is refused: states work once", func() string {
			cb := b.startSignIn("/")
			if resp, _ := b.do("GET", cb, nil); resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("first use: %d", resp.StatusCode)
			}
			u, _ := url.Parse(cb)
			raw, _ := base64.RawURLEncoding.DecodeString(u.Query().Get("state"))
			var st struct {
				Nonce string `json:"n"`
			}
			json.Unmarshal(raw, &st)
			gu, _ := url.Parse(w.g.URL + "/auth/")
			b.c.Jar.SetCookies(gu, []*http.Cookie{{Name: "glenv_oauth", Value: st.Nonce, Path: "/auth/"}})
			return cb
		}, "already used"},
		{"a code used twice is refused by GitLab", func() string {
			first := b.startSignIn("/")
			if resp, _ := b.do("GET", first, nil); resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("first use: %d", resp.StatusCode)
			}
			fu, _ := url.Parse(first)
			next, _ := url.Parse(b.startSignIn("/"))
			q := next.Query()
			q.Set("code", fu.Query().Get("code"))
			next.RawQuery = q.Encode()
			return next.String()
		}, "invalid_grant"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b.t = t
			resp, body := b.do("GET", c.url(), nil)
			if resp.StatusCode != 400 || !strings.Contains(body, c.want) || strings.Contains(strings.Join(resp.Header.Values("Set-Cookie"), ""), "glenv_session=") {
				t.Fatalf("got %d (must be 400 with %q, no session):\n%s", resp.StatusCode, c.want, body)
			}
		})
	}
	for _, evil := range []string{"https://evil.example/", "//evil.example/", "/\\evil.example"} {
		resp, body := b.do("GET", w.g.URL+"/auth/gitlab?host="+url.QueryEscape(w.host)+"&return_to="+url.QueryEscape(evil), nil)
		if resp.StatusCode != 400 || !strings.Contains(body, "return_to") {
			t.Fatalf("return_to %q: %d %s", evil, resp.StatusCode, body)
		}
	}
	if resp, body := b.do("GET", w.g.URL+"/auth/gitlab?host=gitlab.evil.example", nil); resp.StatusCode != 400 || !strings.Contains(body, w.host) {
		t.Fatalf("unknown host: %d %s", resp.StatusCode, body)
	}
}

func TestTwoHourExpiryRefreshesOnceAndARefusedRefreshAsksToReconnect(t *testing.T) {
	w := newAuthWorld(t)
	dev := w.browser(w.dev)
	dev.signIn()
	base := time.Now()
	w.gl.SetClock(func() time.Time { return base.Add(2*time.Hour + time.Minute) })

	var wg sync.WaitGroup
	results := make(chan meJSON, 10)
	errs := make(chan string, 10)
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("GET", w.g.URL+"/api/v1/me?verify=true", nil)
			resp, err := dev.c.Do(req)
			if err != nil {
				errs <- err.Error()
				return
			}
			defer resp.Body.Close()
			var me meJSON
			if err := json.NewDecoder(resp.Body).Decode(&me); err != nil || resp.StatusCode != 200 {
				errs <- fmt.Sprintf("%d %v", resp.StatusCode, err)
				return
			}
			results <- me
		}()
	}
	wg.Wait()
	close(results)
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	for me := range results {
		if c := me.Connections[0]; c.Verified == nil || !*c.Verified {
			t.Fatalf("connection not usable after the expiry: %+v", c)
		}
	}
	if st := w.gl.OAuthStats(); st.Refreshes != 1 || st.RefusedRefreshes != 0 {
		t.Fatalf("10 concurrent requests must refresh exactly once: %+v", st)
	}

	// GitLab refuses the next refresh: the connection asks to reconnect,
	// and the refusal is not retried.
	w.gl.RevokeOAuthTokens(w.dev.ID)
	for i := 0; i < 2; i++ {
		var me meJSON
		dev.api("GET", "/api/v1/me?verify=true", nil, &me, 200)
		if c := me.Connections[0]; c.State != "reconnect_needed" || !strings.Contains(c.Problem, "reconnect") {
			t.Fatalf("after a refused refresh: %+v", c)
		}
	}
	if st := w.gl.OAuthStats(); st.RefusedRefreshes != 1 {
		t.Fatalf("a refused refresh must not be retried: %+v", st)
	}
	if out := w.g.mustRun("user:get", w.host+"/dev"); !strings.Contains(out, "reconnect needed") {
		t.Fatalf("user:get must show reconnect needed:\n%s", out)
	}
	// Signing in again reconnects.
	dev.signIn()
	var me meJSON
	dev.api("GET", "/api/v1/me", nil, &me, 200)
	if me.Connections[0].State != "connected" {
		t.Fatalf("sign-in did not reconnect: %+v", me.Connections)
	}
}

func TestAPIv4ScopesAndJobTokens(t *testing.T) {
	w := newAuthWorld(t)
	dev := w.browser(w.dev)
	dev.signIn()
	var read struct {
		ID    int64  `json:"id"`
		Token string `json:"token"`
	}
	dev.api("POST", "/api/v1/tokens", map[string]string{"name": "ci-read", "scope": "read_api"}, &read, 201)
	envs := w.g.envs("app")
	v4 := func(method, path, header, value string) (int, string) {
		req, _ := http.NewRequest(method, w.g.URL+"/api/v4/projects/"+fmt.Sprint(w.gl.Project.ID)+path, nil)
		req.Header.Set(header, value)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(raw)
	}
	// A running environment, so that a stop changes something (GitLab
	// answers 400 to a stop of a stopped one).
	w.g.mustRun("environment:activate", "feature/login", "--integration", "app")
	w.g.waitEnv("app", "feature/login", func(e envJSON, ok bool) bool { return ok && e.State == "active" })
	stop := fmt.Sprintf("/environments/%d/stop", envs["feature/login"].ID)
	if code, body := v4("GET", "/environments", "PRIVATE-TOKEN", read.Token); code != 200 {
		t.Fatalf("read_api token cannot read: %d %s", code, body)
	}
	if code, body := v4("POST", stop, "PRIVATE-TOKEN", read.Token); code != 403 || !strings.Contains(body, `"error":"insufficient_scope"`) {
		t.Fatalf("read_api token wrote: %d %s", code, body)
	}
	// A job of another project is refused; a finished job's token too.
	other := w.gl.AddProject(gitlabtest.Project{PathWithNamespace: "group/other", DefaultBranch: "main"})
	if code, body := v4("POST", stop, "JOB-TOKEN", w.gl.AddJob(gitlabtest.Job{ProjectID: other.ID}).Token); code != 404 {
		t.Fatalf("job token of another project: %d %s", code, body)
	}
	done := w.gl.AddJob(gitlabtest.Job{ProjectID: w.gl.Project.ID})
	w.gl.FinishJob(done.Token)
	if code, _ := v4("POST", stop, "JOB-TOKEN", done.Token); code != 401 {
		t.Fatalf("finished job's token: %d", code)
	}
	// The job's own project: the stop job of .gitlab-ci.yml works.
	if code, body := v4("POST", stop, "JOB-TOKEN", w.gl.AddJob(gitlabtest.Job{ProjectID: w.gl.Project.ID}).Token); code != 200 {
		t.Fatalf("job token of the project: %d %s", code, body)
	}
	// stop_stale is for Maintainers, as in GitLab: the Developer's own token
	// is refused, and so is a job of the project run by the Developer; a
	// Maintainer's job may.
	var write struct {
		Token string `json:"token"`
	}
	dev.api("POST", "/api/v1/tokens", map[string]string{"name": "ci-write"}, &write, 201)
	stale := "/environments/stop_stale?before=" + url.QueryEscape(time.Now().AddDate(0, 0, -8).UTC().Format(time.RFC3339))
	if code, body := v4("POST", stale, "PRIVATE-TOKEN", write.Token); code != 403 || body != `{"message":"403 Forbidden"}` {
		t.Fatalf("a Developer's stop_stale: %d %s, want GitLab's 403", code, body)
	}
	if code, body := v4("POST", stale, "JOB-TOKEN", w.gl.AddJob(gitlabtest.Job{ProjectID: w.gl.Project.ID, UserID: w.dev.ID}).Token); code != 403 || body != `{"message":"403 Forbidden"}` {
		t.Fatalf("a Developer's job's stop_stale: %d %s, want GitLab's 403", code, body)
	}
	if code, body := v4("POST", stale, "JOB-TOKEN", w.gl.AddJob(gitlabtest.Job{ProjectID: w.gl.Project.ID, UserID: w.gl.Maintainer.ID}).Token); code != 200 {
		t.Fatalf("a Maintainer's job's stop_stale: %d %s", code, body)
	}
	// A Guest sees the project but not its environments: GitLab's 403, as
	// the double answers; someone who is no member gets 404.
	guest := w.gl.AddUser(gitlabtest.User{Username: "guest"})
	w.gl.SetMember(w.gl.Project.ID, guest.ID, 10)
	for _, u := range []gitlabtest.User{guest, w.outsider} {
		b := w.browser(u)
		b.signIn()
		var tok struct {
			Token string `json:"token"`
		}
		b.api("POST", "/api/v1/tokens", map[string]string{"name": "mine", "scope": "read_api"}, &tok, 201)
		code, body := v4("GET", "/environments", "PRIVATE-TOKEN", tok.Token)
		req, _ := http.NewRequest("GET", fmt.Sprintf("%s/api/v4/projects/%d/environments", w.gl.URL, w.gl.Project.ID), nil)
		req.Header.Set("PRIVATE-TOKEN", w.gl.AddToken(gitlabtest.Token{UserID: u.ID, Scopes: []string{"read_api"}}))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if code != resp.StatusCode || body != string(raw) || (u.ID == guest.ID) != (code == 403) {
			t.Fatalf("%s lists environments: glenv %d %s, the double %d %s", u.Username, code, body, resp.StatusCode, raw)
		}
	}
	// A revoked token stops working.
	dev.api("DELETE", fmt.Sprintf("/api/v1/tokens/%d", read.ID), nil, nil, 200)
	if code, _ := v4("GET", "/environments", "PRIVATE-TOKEN", read.Token); code != 401 {
		t.Fatalf("revoked token: %d", code)
	}
	// Only admins make admin tokens; a user's token has at most their roles.
	dev.api("POST", "/api/v1/tokens", map[string]string{"name": "x", "role": "admin"}, nil, 403)
	if out := w.g.mustRun("token:list"); !strings.Contains(out, "ci-read") {
		t.Fatalf("token:list:\n%s", out)
	}
}

// v4Call is one call to glenv's /api/v4 below the project: a body of
// content type ctype (none when ctype is empty) and header pairs.
type v4Call struct {
	method, path, ctype, body string
	header                    []string
}

func (w *authWorld) v4(c v4Call) (int, http.Header, string) {
	w.t.Helper()
	var body io.Reader
	if c.ctype != "" {
		body = strings.NewReader(c.body)
	}
	req, _ := http.NewRequest(c.method, w.g.URL+"/api/v4/projects/"+fmt.Sprint(w.gl.Project.ID)+c.path, body)
	if c.ctype != "" {
		req.Header.Set("Content-Type", c.ctype)
	}
	for i := 0; i+1 < len(c.header); i += 2 {
		req.Header.Set(c.header[i], c.header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(raw)
}

// jobCalls counts the double's GET /api/v4/job: glenv verifying job tokens.
func (w *authWorld) jobCalls() int {
	n := 0
	for _, c := range w.gl.Calls() {
		if c.Path == "/api/v4/job" {
			n++
		}
	}
	return n
}

const (
	formType = "application/x-www-form-urlencoded"
	jsonType = "application/json"
)

func TestAPIv4TakesJobTokensWhereGitLabDoes(t *testing.T) {
	w := newAuthWorld(t)
	running := w.gl.AddJob(gitlabtest.Job{ProjectID: w.gl.Project.ID}).Token
	done := w.gl.AddJob(gitlabtest.Job{ProjectID: w.gl.Project.ID}).Token
	w.gl.FinishJob(done)
	other := w.gl.AddProject(gitlabtest.Project{PathWithNamespace: "group/other", DefaultBranch: "main"})
	elsewhere := w.gl.AddJob(gitlabtest.Job{ProjectID: other.ID}).Token

	// Wherever GitLab's API guard takes a job token on a job_token_allowed
	// route (lib/gitlab/auth/auth_finders.rb), glenv does, with the
	// header's rights: the job's own project only, while the job runs.
	ways := []struct {
		name string
		// create makes environment env with token; list, when not nil, reads.
		create func(token, env string) v4Call
		list   func(token string) v4Call
	}{
		{"the JOB-TOKEN header, as before",
			func(tok, env string) v4Call {
				return v4Call{"POST", "/environments", formType, "name=" + env, []string{"JOB-TOKEN", tok}}
			},
			func(tok string) v4Call { return v4Call{"GET", "/environments", "", "", []string{"JOB-TOKEN", tok}} }},
		{"job_token in the query",
			func(tok, env string) v4Call {
				return v4Call{"POST", "/environments?job_token=" + url.QueryEscape(tok), formType, "name=" + env, nil}
			},
			func(tok string) v4Call {
				return v4Call{"GET", "/environments?per_page=1&job_token=" + url.QueryEscape(tok), "", "", nil}
			}},
		{"token in the query, GitLab's other name for it",
			func(tok, env string) v4Call {
				return v4Call{"POST", "/environments?token=" + url.QueryEscape(tok), jsonType, `{"name":"` + env + `"}`, nil}
			},
			func(tok string) v4Call {
				return v4Call{"GET", "/environments?per_page=1&token=" + url.QueryEscape(tok), "", "", nil}
			}},
		{"job_token in a form body",
			func(tok, env string) v4Call {
				return v4Call{"POST", "/environments", formType, "name=" + env + "&job_token=" + url.QueryEscape(tok), nil}
			}, nil},
		{"job_token in a JSON body",
			func(tok, env string) v4Call {
				return v4Call{"POST", "/environments", jsonType, `{"name":"` + env + `","job_token":"` + tok + `"}`, nil}
			}, nil},
		{"job_token in a multipart form (curl --form)",
			func(tok, env string) v4Call {
				const b = "--B\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\n%s\r\n" +
					"--B\r\nContent-Disposition: form-data; name=\"job_token\"\r\n\r\n%s\r\n--B--\r\n"
				return v4Call{"POST", "/environments", "multipart/form-data; boundary=B", fmt.Sprintf(b, env, tok), nil}
			}, nil},
		{"Authorization: Bearer",
			func(tok, env string) v4Call {
				return v4Call{"POST", "/environments", jsonType, `{"name":"` + env + `"}`, []string{"Authorization", "Bearer " + tok}}
			},
			func(tok string) v4Call {
				return v4Call{"GET", "/environments?per_page=1", "", "", []string{"Authorization", "Bearer " + tok}}
			}},
	}
	for i, way := range ways {
		t.Run(way.name, func(t *testing.T) {
			w.t = t
			env := fmt.Sprintf("review/job-%d", i)
			// The body reaches the endpoint intact: the environment has its name.
			if code, _, body := w.v4(way.create(running, env)); code != 201 || !strings.Contains(body, `"name":"`+env+`"`) {
				t.Fatalf("the running job's token: %d %s, want 201 creating %s", code, body, env)
			}
			if code, _, body := w.v4(way.create(done, env+"-late")); code != 401 || body != `{"message":"401 Unauthorized"}` {
				t.Fatalf("a finished job's token: %d %s, want GitLab's 401", code, body)
			}
			if code, _, body := w.v4(way.create(elsewhere, env+"-other")); code != 404 || body != `{"message":"404 Project Not Found"}` {
				t.Fatalf("another project's job: %d %s, want GitLab's 404", code, body)
			}
			if way.list == nil {
				return
			}
			code, header, body := w.v4(way.list(running))
			if code != 200 || !strings.HasPrefix(body, "[") {
				t.Fatalf("the running job lists: %d %s", code, body)
			}
			// A token sent as a parameter is never repeated in the Link header.
			if link := header.Get("Link"); link == "" || strings.Contains(link, running) || strings.Contains(link, "token") {
				t.Fatalf("Link header %q: want the next page without the token", link)
			}
		})
	}
	w.t = t

	// A bearer token shaped like a job's that glenv does not know is
	// verified with GitLab, which refuses it; any other unknown bearer
	// token is refused without asking GitLab.
	before := w.jobCalls()
	if code, _, body := w.v4(v4Call{"GET", "/environments", "", "", []string{"Authorization", "Bearer glcbt-64_forged"}}); code != 401 || body != `{"message":"401 Unauthorized"}` {
		t.Fatalf("a job-shaped bearer token GitLab refuses: %d %s", code, body)
	}
	if n := w.jobCalls() - before; n != 1 {
		t.Fatalf("a job-shaped bearer token was verified %d times with GitLab, want once", n)
	}
	before = w.jobCalls()
	for _, tok := range []string{"glpat-forged", "glenv_forged", "0123456789abcdef"} {
		if code, _, body := w.v4(v4Call{"GET", "/environments", "", "", []string{"Authorization", "Bearer " + tok}}); code != 401 || body != `{"message":"401 Unauthorized"}` {
			t.Fatalf("unknown bearer token %s: %d %s", tok, code, body)
		}
	}
	if n := w.jobCalls() - before; n != 0 {
		t.Fatalf("unknown tokens without a job's prefix made glenv call GitLab %d times", n)
	}
	// Anyone can put any string in a parameter: only a job-shaped one, and
	// one a header could carry, is sent to GitLab.
	for _, c := range []v4Call{
		{"GET", "/environments?job_token=junk-1", "", "", nil},
		{"POST", "/environments", jsonType, `{"name":"x","token":"junk-2"}`, nil},
		{"POST", "/environments", formType, "name=x&job_token=junk-3", nil},
		{"GET", "/environments?job_token=glcbt-a%0Ab", "", "", nil},
		{"POST", "/environments", jsonType, `{"name":"x","job_token":["glcbt-1"]}`, nil},
	} {
		if code, _, body := w.v4(c); code != 401 {
			t.Fatalf("%s %s %s: %d %s, want 401", c.method, c.path, c.body, code, body)
		}
	}
	// A verdict counts for a while: the running job's token is not asked about again.
	if code, _, _ := w.v4(ways[0].list(running)); code != 200 {
		t.Fatalf("the running job's token again: %d", code)
	}
	if n := w.jobCalls() - before; n != 0 {
		t.Fatalf("junk parameters and a known job token made glenv call GitLab %d times", n)
	}
	// A flood of made-up job tokens reaches GitLab only at the limit's pace.
	before, began := w.jobCalls(), time.Now()
	for i := range 60 {
		if code, _, _ := w.v4(v4Call{"GET", "/environments", "", "", []string{"JOB-TOKEN", fmt.Sprintf("glcbt-64_flood-%d", i)}}); code != 401 {
			t.Fatalf("made-up job token %d: %d", i, code)
		}
	}
	if n, most := w.jobCalls()-before, 30+int(10*time.Since(began).Seconds())+1; n > most {
		t.Fatalf("60 made-up job tokens made glenv call GitLab %d times, want at most %d (burst 30, 10 a second)", n, most)
	}

	// private_token and access_token in a form or JSON body authenticate
	// as in the query (auth_finders.rb extract_personal_access_token,
	// Doorkeeper's from_access_token_param read Rails' params), with the
	// token's scope.
	dev := w.browser(w.dev)
	dev.signIn()
	var write, read struct {
		Token string `json:"token"`
	}
	dev.api("POST", "/api/v1/tokens", map[string]string{"name": "body-write"}, &write, 201)
	dev.api("POST", "/api/v1/tokens", map[string]string{"name": "body-read", "scope": "read_api"}, &read, 201)
	for i, c := range []v4Call{
		{"POST", "/environments", formType, "name=review/pat-0&private_token=" + write.Token, nil},
		{"POST", "/environments", jsonType, `{"name":"review/pat-1","private_token":"` + write.Token + `"}`, nil},
		{"POST", "/environments", jsonType, `{"name":"review/pat-2","access_token":"` + write.Token + `"}`, nil},
	} {
		if code, _, body := w.v4(c); code != 201 || !strings.Contains(body, fmt.Sprintf(`"name":"review/pat-%d"`, i)) {
			t.Fatalf("%s: %d %s, want 201", c.body, code, body)
		}
	}
	if code, _, body := w.v4(v4Call{"POST", "/environments", jsonType, `{"name":"review/pat-r","private_token":"` + read.Token + `"}`, nil}); code != 403 || !strings.Contains(body, `"error":"insufficient_scope"`) {
		t.Fatalf("a read_api token in the body wrote: %d %s", code, body)
	}
	if code, _, body := w.v4(v4Call{"POST", "/environments", formType, "name=review/pat-x&private_token=glenv_forged", nil}); code != 401 || body != `{"message":"401 Unauthorized"}` {
		t.Fatalf("an unknown private_token in the body: %d %s", code, body)
	}
	// glenv's own token where a job token goes is refused, never sent to GitLab.
	before = w.jobCalls()
	if code, _, body := w.v4(v4Call{"GET", "/environments", "", "", []string{"JOB-TOKEN", write.Token}}); code != 401 {
		t.Fatalf("glenv's token as a job token: %d %s", code, body)
	}
	if n := w.jobCalls() - before; n != 0 {
		t.Fatalf("glenv's own token was sent to GitLab %d times", n)
	}
}

// follow visits u and every redirect after it, returning the last answer
// and the URLs visited.
func (b *browser) follow(u string) (*http.Response, string, []string) {
	b.t.Helper()
	var chain []string
	for i := 0; i < 12; i++ {
		chain = append(chain, u)
		resp, body := b.do("GET", u, nil)
		loc := resp.Header.Get("Location")
		if resp.StatusCode < 300 || resp.StatusCode >= 400 || loc == "" {
			return resp, body, chain
		}
		next, err := resp.Request.URL.Parse(loc)
		if err != nil {
			b.t.Fatal(err)
		}
		u = next.String()
	}
	b.t.Fatalf("too many redirects: %v", chain)
	return nil, "", nil
}

// cookieProbeApp answers every request with the Cookie header and query it got,
// so a test sees exactly what reached the app.
const cookieProbeApp = `import http.server, os
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("COOKIE=%s\nPATH=%s\n" % (self.headers.get("Cookie", ""), self.path)).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
`

func TestMembersEnvironmentOpensOnlyAfterTheHandOver(t *testing.T) {
	gl := newGitLab(t)
	sha := gl.Commit(t, gl.Project.ID, gitlabtest.Commit{Branch: "main", Files: map[string]string{
		".glenv.yml": "run: python3 probe.py\nhealth: /\n", "probe.py": cookieProbeApp}})
	w := newAuthWorldOn(t, gl, "GLENV_RUNTIME=process", "--environment-access", "members")
	w.g.waitEnv("app", "main", func(e envJSON, ok bool) bool { return ok && e.State == "active" && e.DeployedSHA == sha })
	_, port, _ := net.SplitHostPort(w.g.addr)
	envURL := "http://main--app.localhost:" + port + "/page?x=1"

	// Not signed in anywhere: sent through glenv to GitLab's sign-in.
	anon := w.browser(gitlabtest.User{})
	anon.c.Jar, _ = cookiejar.New(nil)
	if _, _, chain := anon.follow(envURL); !strings.HasSuffix(chain[len(chain)-1], "/users/sign_in") {
		t.Fatalf("anonymous visitor ended at %v", chain)
	}

	// Someone signed in but not a member of the project is refused.
	out := w.browser(w.outsider)
	out.signIn()
	if resp, body, chain := out.follow(envURL); resp.StatusCode != 403 || !strings.Contains(body, "members only") {
		t.Fatalf("non-member: %d %s via %v", resp.StatusCode, body, chain)
	}

	// A Reporter, signed in to GitLab only, is signed in to glenv on the
	// way and handed over with a one-time ticket; the app sees neither
	// glenv's cookies nor the ticket, but does see its own cookie.
	rep := w.browser(w.rep)
	eu, _ := url.Parse(envURL)
	rep.c.Jar.SetCookies(eu, []*http.Cookie{{Name: "mine", Value: "1"}})
	resp, body, chain := rep.follow(envURL)
	if resp.StatusCode != 200 || !strings.Contains(body, "PATH=/page?x=1\n") || !strings.Contains(body, "mine=1") || strings.Contains(body, "glenv_") {
		t.Fatalf("member after hand-over: %d %q via %v", resp.StatusCode, body, chain)
	}
	var ticketURL string
	for _, u := range chain {
		if strings.Contains(u, "glenv_ticket=") {
			ticketURL = u
		}
	}
	if ticketURL == "" {
		t.Fatalf("no ticket in %v", chain)
	}
	// The ticket works once: replayed from another browser it is refused.
	if resp, body := out.do("GET", ticketURL, nil); resp.StatusCode != 400 || !strings.Contains(body, "used already") {
		t.Fatalf("replayed ticket: %d %s", resp.StatusCode, body)
	}
	// A forged environment cookie is not a hand-over.
	forged := w.browser(w.outsider)
	forged.c.Jar.SetCookies(eu, []*http.Cookie{{Name: "glenv_env", Value: "forged"}})
	if resp, _ := forged.do("GET", envURL, nil); resp.StatusCode != http.StatusFound {
		t.Fatalf("forged cookie served: %d", resp.StatusCode)
	}
	// The member keeps access on that host without another hand-over.
	if resp, body := rep.do("GET", envURL, nil); resp.StatusCode != 200 || strings.Contains(body, "glenv_") {
		t.Fatalf("second visit: %d %s", resp.StatusCode, body)
	}
}
