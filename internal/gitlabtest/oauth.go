package gitlabtest

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/glenv/glenv/internal/gitlabapi"
)

// GitLab as an OAuth 2.0 provider (Doorkeeper; PROTOCOL.md §4): /oauth/authorize
// with consent given for the user a test signed in, /oauth/token for the
// authorization-code grant (PKCE checked) and single-use rotating refresh
// tokens, /oauth/revoke and /oauth/token/info. Access tokens expire two hours
// after they are issued on the double's clock (SetClock).

// OAuthApp is an application registered on the double (Admin area →
// Applications). Apps are confidential: the token endpoint wants the secret.
type OAuthApp struct {
	ClientID    string
	Secret      string
	RedirectURI string
	Scopes      []string
}

// oauthAccessTTL is fixed since GitLab 15.0 (PROTOCOL.md §4).
const oauthAccessTTL = 2 * time.Hour

// oauthCodeTTL is Doorkeeper's authorization_code_expires_in default.
const oauthCodeTTL = 10 * time.Minute

type oauthState struct {
	apps     map[string]*OAuthApp
	codes    map[string]*oauthGrant
	refresh  map[string]*oauthRefresh
	browsers map[string]int64 // _gitlab_session cookie → user
	stats    OAuthStats
}

type oauthGrant struct {
	app                  *OAuthApp
	userID               int64
	redirectURI          string
	scopes               []string
	challenge, method    string
	expires              time.Time
	used                 bool
	issuedAccess, issued string // tokens issued from it (revoked on reuse)
}

type oauthRefresh struct {
	app     *OAuthApp
	userID  int64
	scopes  []string
	access  string
	revoked bool
}

// OAuthStats counts what the token endpoint did, for tests.
type OAuthStats struct {
	CodeExchanges, Refreshes, RefusedRefreshes, Revocations int
}

func (s *Server) oauth() *oauthState {
	if s.oauthSt == nil {
		s.oauthSt = &oauthState{apps: map[string]*OAuthApp{}, codes: map[string]*oauthGrant{},
			refresh: map[string]*oauthRefresh{}, browsers: map[string]int64{}}
	}
	return s.oauthSt
}

// AddOAuthApp registers an application; an empty ClientID or Secret is generated.
func (s *Server) AddOAuthApp(app OAuthApp) OAuthApp {
	s.mu.Lock()
	defer s.mu.Unlock()
	if app.ClientID == "" {
		app.ClientID = randHex(16)
	}
	if app.Secret == "" {
		app.Secret = "gloas-" + randHex(16)
	}
	app.Scopes = slices.Clone(app.Scopes)
	stored := app
	s.oauth().apps[app.ClientID] = &stored
	return app
}

// BrowserCookie returns the cookie of a browser signed in to the double as
// userID: /oauth/authorize gives that user's consent.
func (s *Server) BrowserCookie(userID int64) *http.Cookie {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := randHex(16)
	s.oauth().browsers[v] = userID
	return &http.Cookie{Name: "_gitlab_session", Value: v, Path: "/"}
}

// RevokeOAuthTokens revokes every OAuth token of a user, as revoking an
// application under User settings → Applications does: the refresh token
// stops working too.
func (s *Server) RevokeOAuthTokens(userID int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rt := range s.oauth().refresh {
		if rt.userID == userID {
			rt.revoked = true
			if t := s.tokens[rt.access]; t != nil {
				t.Revoked = true
			}
		}
	}
}

// OAuthStats returns the counts so far.
func (s *Server) OAuthStats() OAuthStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.oauth().stats
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// serveOAuth answers /oauth/*; false for other paths.
func (s *Server) serveOAuth(w http.ResponseWriter, r *http.Request, path string, body []byte) bool {
	if !strings.HasPrefix(path, "/oauth/") {
		return false
	}
	form, _ := url.ParseQuery(string(body))
	for k, v := range r.URL.Query() {
		if _, ok := form[k]; !ok {
			form[k] = v
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case path == "/oauth/authorize" && r.Method == http.MethodGet:
		s.authorize(w, r, form)
	case path == "/oauth/token" && r.Method == http.MethodPost:
		s.token(w, r, form)
	case path == "/oauth/revoke" && r.Method == http.MethodPost:
		s.revoke(w, r, form)
	case path == "/oauth/token/info" && r.Method == http.MethodGet:
		s.tokenInfo(w, r)
	default:
		gitlabapi.RouteNotFound(w)
	}
	return true
}

// authorize is Doorkeeper's AuthorizationsController#new for a signed-in
// user of a trusted application (consent given). Errors about the client or
// the redirect URI are shown, never redirected (error_response.rb
// redirectable?); the others go back to the redirect URI.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, f url.Values) {
	o := s.oauth()
	app := o.apps[f.Get("client_id")]
	if app == nil {
		oauthError(w, http.StatusUnauthorized, "invalid_client", descInvalidClient)
		return
	}
	if f.Get("redirect_uri") != app.RedirectURI {
		oauthError(w, http.StatusBadRequest, "invalid_redirect_uri", "The requested redirect uri is malformed or doesn't match client redirect URI.")
		return
	}
	back := func(q url.Values) {
		if st := f.Get("state"); st != "" {
			q.Set("state", st)
		}
		http.Redirect(w, r, app.RedirectURI+"?"+q.Encode(), http.StatusFound)
	}
	fail := func(code, desc string) { back(url.Values{"error": {code}, "error_description": {desc}}) }
	if f.Get("response_type") != "code" {
		fail("unsupported_response_type", "The authorization server does not support this response type.")
		return
	}
	scopes := strings.Fields(f.Get("scope"))
	for _, sc := range scopes {
		if !slices.Contains(app.Scopes, sc) {
			fail("invalid_scope", "The requested scope is invalid, unknown, or malformed.")
			return
		}
	}
	method := f.Get("code_challenge_method")
	if f.Get("code_challenge") != "" && method != "S256" && method != "plain" {
		fail("invalid_request", "The code_challenge_method must be one of plain, S256.")
		return
	}
	c, err := r.Cookie("_gitlab_session")
	userID := int64(0)
	if err == nil {
		userID = o.browsers[c.Value]
	}
	if userID == 0 || s.users[userID] == nil {
		http.Redirect(w, r, s.URL+"/users/sign_in", http.StatusFound)
		return
	}
	code := randHex(32)
	o.codes[code] = &oauthGrant{app: app, userID: userID, redirectURI: f.Get("redirect_uri"), scopes: scopes,
		challenge: f.Get("code_challenge"), method: method, expires: s.now().Add(oauthCodeTTL)}
	back(url.Values{"code": {code}})
}

const (
	descInvalidClient = "Client authentication failed due to unknown client, no client authentication included, or unsupported authentication method."
	descInvalidGrant  = "The provided authorization grant is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client."
)

// oauthError is Doorkeeper's ErrorResponse: invalid_client is 401, the rest 400.
func oauthError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Cache-Control", "no-store")
	gitlabapi.WriteJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

// client authenticates the application (client_secret_post or
// client_secret_basic).
func (s *Server) client(r *http.Request, f url.Values) *OAuthApp {
	id, secret := f.Get("client_id"), f.Get("client_secret")
	if u, p, ok := r.BasicAuth(); ok {
		id, secret = u, p
	}
	app := s.oauth().apps[id]
	if app == nil || subtle.ConstantTimeCompare([]byte(secret), []byte(app.Secret)) != 1 {
		return nil
	}
	return app
}

// token is /oauth/token: the client first (invalid_client), then the grant
// (invalid_grant), as Doorkeeper validates them (authorization_code_request.rb,
// refresh_token_request.rb).
func (s *Server) token(w http.ResponseWriter, r *http.Request, f url.Values) {
	app := s.client(r, f)
	if app == nil {
		oauthError(w, http.StatusUnauthorized, "invalid_client", descInvalidClient)
		return
	}
	o := s.oauth()
	switch f.Get("grant_type") {
	case "authorization_code":
		g := o.codes[f.Get("code")]
		if g == nil || g.app != app || !s.now().Before(g.expires) || f.Get("redirect_uri") != g.redirectURI {
			oauthError(w, http.StatusBadRequest, "invalid_grant", descInvalidGrant)
			return
		}
		if g.used {
			// A code used twice: refuse, and revoke what the first use gave
			// (RFC 6749 §4.1.2).
			if t := s.tokens[g.issuedAccess]; t != nil {
				t.Revoked = true
			}
			if rt := o.refresh[g.issued]; rt != nil {
				rt.revoked = true
			}
			oauthError(w, http.StatusBadRequest, "invalid_grant", descInvalidGrant)
			return
		}
		if g.challenge != "" && !pkceMatches(g.challenge, g.method, f.Get("code_verifier")) {
			oauthError(w, http.StatusBadRequest, "invalid_grant", descInvalidGrant)
			return
		}
		g.used = true
		o.stats.CodeExchanges++
		g.issuedAccess, g.issued = s.issue(w, app, g.userID, g.scopes)
	case "refresh_token":
		rt := o.refresh[f.Get("refresh_token")]
		if rt == nil || rt.app != app || rt.revoked || s.users[rt.userID] == nil {
			o.stats.RefusedRefreshes++
			oauthError(w, http.StatusBadRequest, "invalid_grant", descInvalidGrant)
			return
		}
		// A refresh revokes the old pair (PROTOCOL.md §4).
		rt.revoked = true
		if t := s.tokens[rt.access]; t != nil {
			t.Revoked = true
		}
		o.stats.Refreshes++
		s.issue(w, app, rt.userID, rt.scopes)
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "The authorization grant type is not supported by the authorization server.")
	}
}

func pkceMatches(challenge, method, verifier string) bool {
	if verifier == "" {
		return false
	}
	want := verifier
	if method == "S256" || method == "" {
		sum := sha256.Sum256([]byte(verifier))
		want = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	return subtle.ConstantTimeCompare([]byte(want), []byte(challenge)) == 1
}

// issue answers a fresh access and refresh token pair.
func (s *Server) issue(w http.ResponseWriter, app *OAuthApp, userID int64, scopes []string) (access, refresh string) {
	now := s.now()
	expires := now.Add(oauthAccessTTL)
	access, refresh = randHex(32), randHex(32)
	s.tokens[access] = &tokenRecord{Token: Token{Value: access, UserID: userID, Name: "oauth:" + app.ClientID,
		Scopes: slices.Clone(scopes), ExpiresAt: &expires, OAuth: true}, id: s.ids.take(&s.ids.token, 0), createdAt: now}
	s.oauth().refresh[refresh] = &oauthRefresh{app: app, userID: userID, scopes: slices.Clone(scopes), access: access}
	w.Header().Set("Cache-Control", "no-store")
	gitlabapi.WriteJSON(w, http.StatusOK, map[string]any{
		"access_token": access, "token_type": "Bearer", "expires_in": int(oauthAccessTTL.Seconds()),
		"refresh_token": refresh, "scope": strings.Join(scopes, " "), "created_at": now.Unix(),
	})
	return access, refresh
}

// revoke is RFC 7009 as Doorkeeper does it: the client must authenticate;
// an unknown token is answered 200 all the same.
func (s *Server) revoke(w http.ResponseWriter, r *http.Request, f url.Values) {
	app := s.client(r, f)
	if app == nil {
		oauthError(w, http.StatusForbidden, "unauthorized_client", "You are not authorized to revoke this token")
		return
	}
	o := s.oauth()
	v := f.Get("token")
	if rt := o.refresh[v]; rt != nil && rt.app == app {
		rt.revoked = true
		if t := s.tokens[rt.access]; t != nil {
			t.Revoked = true
		}
		o.stats.Revocations++
	} else if t := s.tokens[v]; t != nil && t.OAuth {
		t.Revoked = true
		o.stats.Revocations++
	}
	gitlabapi.WriteJSON(w, http.StatusOK, map[string]any{})
}

// tokenInfo is /oauth/token/info (Doorkeeper's TokenInfoController, with
// GitLab's deprecated scopes and expires_in_seconds).
func (s *Server) tokenInfo(w http.ResponseWriter, r *http.Request) {
	v, _ := bearer(r)
	t := s.tokens[v]
	now := s.now()
	if t == nil || !t.OAuth || t.Revoked || (t.ExpiresAt != nil && !now.Before(*t.ExpiresAt)) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="Doorkeeper", error="invalid_token"`)
		oauthError(w, http.StatusUnauthorized, "invalid_token", "The access token is invalid")
		return
	}
	var expiresIn any
	if t.ExpiresAt != nil {
		expiresIn = int(t.ExpiresAt.Sub(now).Seconds())
	}
	gitlabapi.WriteJSON(w, http.StatusOK, map[string]any{
		"resource_owner_id": t.UserID, "scope": t.Scopes, "scopes": t.Scopes, "expires_in": expiresIn,
		"expires_in_seconds": expiresIn, "application": map[string]string{"uid": strings.TrimPrefix(t.Name, "oauth:")},
		"created_at": t.createdAt.Unix(),
	})
}
