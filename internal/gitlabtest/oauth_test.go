package gitlabtest

import (
	"context"
	"errors"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	gitlab "gitlab.com/gitlab-org/api/client-go/v2"
	"golang.org/x/oauth2"
)

// oauthFixture drives the double's OAuth provider with x/oauth2, as glenv does.
type oauthFixture struct {
	srv  *Server
	user User
	app  OAuthApp
	cfg  *oauth2.Config
	web  *http.Client
	mu   sync.Mutex
	now  time.Time
}

func newOAuthFixture(t *testing.T) *oauthFixture {
	t.Helper()
	srv := New(t)
	f := &oauthFixture{srv: srv, now: time.Now()}
	srv.SetClock(func() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.now })
	f.user = srv.AddUser(User{Username: "dev"})
	f.app = srv.AddOAuthApp(OAuthApp{RedirectURI: "https://glenv.example/auth/callback", Scopes: []string{"read_user", "read_api"}})
	f.cfg = &oauth2.Config{ClientID: f.app.ClientID, ClientSecret: f.app.Secret, RedirectURL: f.app.RedirectURI,
		Scopes:   []string{"read_user", "read_api"},
		Endpoint: oauth2.Endpoint{AuthURL: srv.URL + "/oauth/authorize", TokenURL: srv.URL + "/oauth/token", AuthStyle: oauth2.AuthStyleInParams}}
	jar, _ := cookiejar.New(nil)
	u, _ := url.Parse(srv.URL)
	jar.SetCookies(u, []*http.Cookie{srv.BrowserCookie(f.user.ID)})
	f.web = &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return f
}

func (f *oauthFixture) advance(d time.Duration) { f.mu.Lock(); f.now = f.now.Add(d); f.mu.Unlock() }

// authorize returns the code GitLab redirects back with for a PKCE verifier.
func (f *oauthFixture) authorize(t *testing.T, verifier string) string {
	t.Helper()
	resp, err := f.web.Get(f.cfg.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || loc.Query().Get("state") != "st" || loc.Query().Get("code") == "" {
		t.Fatalf("authorize: %d %s", resp.StatusCode, loc)
	}
	return loc.Query().Get("code")
}

func errorCode(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return re.ErrorCode
	}
	return ""
}

func (f *oauthFixture) user401(t *testing.T, access string) bool {
	t.Helper()
	c, err := gitlab.NewOAuthClient(access, gitlab.WithBaseURL(f.srv.URL), gitlab.WithoutRetries())
	if err != nil {
		t.Fatal(err)
	}
	_, resp, _ := c.Users.CurrentUser()
	return resp != nil && resp.StatusCode == http.StatusUnauthorized
}

func TestOAuthAuthorizationCodeWithPKCE(t *testing.T) {
	f := newOAuthFixture(t)
	ctx := context.Background()
	cases := []struct {
		name     string
		exchange func() error
		want     string
	}{
		{"a wrong PKCE verifier is invalid_grant", func() error {
			code := f.authorize(t, oauth2.GenerateVerifier())
			_, err := f.cfg.Exchange(ctx, code, oauth2.VerifierOption(oauth2.GenerateVerifier()))
			return err
		}, "invalid_grant"},
		{"a missing PKCE verifier is invalid_grant", func() error {
			_, err := f.cfg.Exchange(ctx, f.authorize(t, oauth2.GenerateVerifier()))
			return err
		}, "invalid_grant"},
		{"a wrong client secret is invalid_client", func() error {
			bad := *f.cfg
			bad.ClientSecret = "nope"
			v := oauth2.GenerateVerifier()
			_, err := bad.Exchange(ctx, f.authorize(t, v), oauth2.VerifierOption(v))
			return err
		}, "invalid_client"},
		{"a made-up code with the right client is invalid_grant", func() error {
			_, err := f.cfg.Exchange(ctx, "made-up")
			return err
		}, "invalid_grant"},
		{"a code used twice is invalid_grant", func() error {
			v := oauth2.GenerateVerifier()
			code := f.authorize(t, v)
			if _, err := f.cfg.Exchange(ctx, code, oauth2.VerifierOption(v)); err != nil {
				t.Fatalf("first exchange: %v", err)
			}
			_, err := f.cfg.Exchange(ctx, code, oauth2.VerifierOption(v))
			return err
		}, "invalid_grant"},
		{"a code older than ten minutes is invalid_grant", func() error {
			v := oauth2.GenerateVerifier()
			code := f.authorize(t, v)
			f.advance(11 * time.Minute)
			_, err := f.cfg.Exchange(ctx, code, oauth2.VerifierOption(v))
			return err
		}, "invalid_grant"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := errorCode(c.exchange()); got != c.want {
				t.Fatalf("error %q, want %q", got, c.want)
			}
		})
	}
}

func TestOAuthTokensExpireAfterTwoHoursAndRefreshTokensWorkOnce(t *testing.T) {
	f := newOAuthFixture(t)
	ctx := context.Background()
	v := oauth2.GenerateVerifier()
	tok, err := f.cfg.Exchange(ctx, f.authorize(t, v), oauth2.VerifierOption(v))
	if err != nil {
		t.Fatal(err)
	}
	if tok.ExpiresIn != 7200 || tok.RefreshToken == "" || tok.Extra("scope") != "read_user read_api" {
		t.Fatalf("token response: %+v scope %v", tok, tok.Extra("scope"))
	}
	if f.user401(t, tok.AccessToken) {
		t.Fatal("fresh access token refused")
	}
	f.advance(2*time.Hour + time.Second)
	if !f.user401(t, tok.AccessToken) {
		t.Fatal("access token works after two hours")
	}
	// A refresh token outlives its access token, rotates, and works once.
	next, err := f.cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: time.Unix(1, 0)}).Token()
	if err != nil || next.RefreshToken == tok.RefreshToken {
		t.Fatalf("refresh: %v %+v", err, next)
	}
	_, err = f.cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: time.Unix(1, 0)}).Token()
	if errorCode(err) != "invalid_grant" {
		t.Fatalf("second use of a refresh token: %v", err)
	}
	if st := f.srv.OAuthStats(); st.Refreshes != 1 || st.RefusedRefreshes != 1 || st.CodeExchanges != 1 {
		t.Fatalf("stats %+v", st)
	}
	// /oauth/token/info describes a live token; /oauth/revoke kills it and its refresh token.
	req, _ := http.NewRequest("GET", f.srv.URL+"/oauth/token/info", nil)
	req.Header.Set("Authorization", "Bearer "+next.AccessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("token info: %v %v", err, resp)
	}
	resp.Body.Close()
	form := url.Values{"client_id": {f.app.ClientID}, "client_secret": {f.app.Secret}, "token": {next.RefreshToken}}
	resp, err = http.Post(f.srv.URL+"/oauth/revoke", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("revoke: %v %v", err, resp)
	}
	resp.Body.Close()
	if !f.user401(t, next.AccessToken) {
		t.Fatal("revoked access token still works")
	}
	if _, err := f.cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: next.RefreshToken, Expiry: time.Unix(1, 0)}).Token(); errorCode(err) != "invalid_grant" {
		t.Fatalf("revoked refresh token: %v", err)
	}
}

func TestAuthorizeRedirectsBackOnlyToTheRegisteredURI(t *testing.T) {
	f := newOAuthFixture(t)
	bad := *f.cfg
	bad.RedirectURL = "https://evil.example/cb"
	resp, err := f.web.Get(bad.AuthCodeURL("st"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
		t.Fatalf("foreign redirect_uri: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	// Without a GitLab session the browser is sent to sign in first.
	anon := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = anon.Get(f.cfg.AuthCodeURL("st"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !strings.HasSuffix(resp.Header.Get("Location"), "/users/sign_in") {
		t.Fatalf("anonymous authorize went to %q", resp.Header.Get("Location"))
	}
}

func TestJobTokenIdentifiesItsJobsProject(t *testing.T) {
	srv := New(t)
	p := srv.AddProject(Project{PathWithNamespace: "group/app", DefaultBranch: "main"})
	job := srv.AddJob(Job{ProjectID: p.ID, Ref: "main"})
	c, err := gitlab.NewJobClient(job.Token, gitlab.WithBaseURL(srv.URL), gitlab.WithoutRetries())
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := c.Jobs.GetJobTokensJob(&gitlab.GetJobTokensJobOptions{})
	if err != nil || got.Pipeline.ProjectID != p.ID || got.ID != job.ID {
		t.Fatalf("GET /job: %v %+v", err, got)
	}
	srv.FinishJob(job.Token)
	if _, resp, _ := c.Jobs.GetJobTokensJob(&gitlab.GetJobTokensJobOptions{}); resp == nil || resp.StatusCode != 401 {
		t.Fatalf("finished job's token: %v", resp)
	}
}
