package auth

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strings"
	"time"

	gl "gitlab.com/gitlab-org/api/client-go/v2"
	"golang.org/x/oauth2"

	"github.com/glenv/glenv/internal/store"
)

const (
	// stateCookie holds the nonce of a sign-in in flight, binding the state
	// to the browser that started it.
	stateCookie = "glenv_oauth"
	stateTTL    = 10 * time.Minute
	// SessionTTL is how long a sign-in lasts.
	SessionTTL = 14 * 24 * time.Hour
)

// state is what travels through GitLab in the state parameter.
type state struct {
	Host     string `json:"h"`
	ReturnTo string `json:"r"`
	Nonce    string `json:"n"`
}

// Routes adds the sign-in routes.
func (s *Service) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /auth/gitlab", s.signIn)
	mux.HandleFunc("GET /auth/callback", s.callback)
	mux.HandleFunc("POST /auth/signout", s.signOut)
	mux.HandleFunc("GET /auth/env", s.handOver)
}

func (s *Service) secure() bool { return strings.HasPrefix(s.PublicURL, "https://") }

// signIn starts the authorization-code flow with PKCE (S256).
func (s *Service) signIn(w http.ResponseWriter, r *http.Request) {
	s.init()
	ctx := r.Context()
	hostName := strings.ToLower(r.URL.Query().Get("host"))
	h, err := store.GetGitLabHost(ctx, s.Store.Reader(), hostName)
	if errors.Is(err, store.ErrNotFound) {
		hosts, _ := store.ListGitLabHosts(ctx, s.Store.Reader())
		names := []string{}
		for _, h := range hosts {
			names = append(names, h.Host)
		}
		page(w, http.StatusBadRequest, "Unknown GitLab host", fmt.Sprintf("host=%q is not registered with glenv. Sign in with one of: %s (an admin adds others with glenv gitlab-host:add).", hostName, strings.Join(names, ", ")))
		return
	}
	if err != nil {
		s.internal(w, "load host", err)
		return
	}
	returnTo, err := CleanReturnTo(r.URL.Query().Get("return_to"))
	if err != nil {
		page(w, http.StatusBadRequest, "Bad return_to", err.Error())
		return
	}
	secret, err := s.Box.Open(h.ClientSecretSealed)
	if err != nil {
		s.internal(w, "open client secret", err)
		return
	}
	st := state{Host: h.Host, ReturnTo: returnTo, Nonce: randomHex(24)}
	verifier := oauth2.GenerateVerifier()
	row := store.OAuthState{Host: h.Host, ReturnTo: returnTo, VerifierSealed: s.Box.Seal(verifier), ExpiresAt: s.now().Add(stateTTL)}
	// Signed in already: this connects another GitLab account to the same user.
	if p, err := s.Authenticate(ctx, r, false); err == nil && p.Kind == KindSession {
		row.UserID = p.UserID
	}
	if err := store.PutOAuthState(ctx, s.Store.DB, st.Nonce, row); err != nil {
		s.internal(w, "store sign-in state", err)
		return
	}
	raw, _ := json.Marshal(st)
	http.SetCookie(w, &http.Cookie{Name: stateCookie, Value: st.Nonce, Path: "/auth/", MaxAge: int(stateTTL.Seconds()),
		HttpOnly: true, Secure: s.secure(), SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, s.oauthConfig(h, secret).AuthCodeURL(base64.RawURLEncoding.EncodeToString(raw), oauth2.S256ChallengeOption(verifier)), http.StatusFound)
}

// callback finishes a sign-in: the state must be the one this browser
// started, unused and unexpired; then the code is exchanged (with the PKCE
// verifier), the user read with the new token, and a session opened.
func (s *Service) callback(w http.ResponseWriter, r *http.Request) {
	s.init()
	ctx := r.Context()
	q := r.URL.Query()
	again := "Start again from /auth/gitlab?host=<your GitLab host>."
	if e := q.Get("error"); e != "" {
		page(w, http.StatusBadRequest, "GitLab did not sign you in", fmt.Sprintf("GitLab answered %s: %s. %s", e, q.Get("error_description"), again))
		return
	}
	var st state
	raw, err := base64.RawURLEncoding.DecodeString(q.Get("state"))
	if q.Get("state") == "" || err != nil || json.Unmarshal(raw, &st) != nil || st.Nonce == "" {
		page(w, http.StatusBadRequest, "Missing or malformed state", "This callback does not carry the state glenv sent to GitLab, so it was not started here. "+again)
		return
	}
	c, err := r.Cookie(stateCookie)
	if err != nil || subtle.ConstantTimeCompare([]byte(c.Value), []byte(st.Nonce)) != 1 {
		page(w, http.StatusBadRequest, "Sign-in started elsewhere", "The state does not belong to this browser (its sign-in cookie is missing or different): it may have been started in another browser or tab. "+again)
		return
	}
	row, err := store.TakeOAuthState(ctx, s.Store.DB, st.Nonce)
	if errors.Is(err, store.ErrNotFound) {
		page(w, http.StatusBadRequest, "Sign-in already used or expired", "This sign-in was finished already or is older than 10 minutes. "+again)
		return
	}
	if err != nil {
		s.internal(w, "take sign-in state", err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: stateCookie, Value: "", Path: "/auth/", MaxAge: -1, HttpOnly: true, Secure: s.secure(), SameSite: http.SameSiteLaxMode})
	if row.Host != st.Host || row.ReturnTo != st.ReturnTo {
		page(w, http.StatusBadRequest, "State does not match", "The state was changed on its way through GitLab. "+again)
		return
	}
	h, err := store.GetGitLabHost(ctx, s.Store.Reader(), row.Host)
	if err != nil {
		page(w, http.StatusBadRequest, "GitLab host removed", fmt.Sprintf("GitLab host %s is no longer registered with glenv; ask an admin.", row.Host))
		return
	}
	secret, err1 := s.Box.Open(h.ClientSecretSealed)
	verifier, err2 := s.Box.Open(row.VerifierSealed)
	if err := errors.Join(err1, err2); err != nil {
		s.internal(w, "open sign-in secrets", err)
		return
	}
	tok, err := s.oauthConfig(h, secret).Exchange(context.WithValue(ctx, oauth2.HTTPClient, s.HTTP), q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		page(w, http.StatusBadRequest, "GitLab refused the sign-in", fmt.Sprintf("Exchanging the authorization code failed: %s. Codes work once and for a few minutes. %s", oauthMessage(err), again))
		return
	}
	u, err := s.gitlabUser(ctx, h, tok.AccessToken)
	if err != nil {
		page(w, http.StatusBadGateway, "GitLab did not say who you are", fmt.Sprintf("Reading your user from %s failed: %v. %s", h.URL, err, again))
		return
	}
	userID, created, err := s.saveSignIn(ctx, h, u, tok, row.UserID)
	if errors.Is(err, errOtherUser) {
		page(w, http.StatusConflict, "Account connected elsewhere", fmt.Sprintf("GitLab account %s/%s is connected to another glenv user. Disconnect it there first.", h.Host, u.Username))
		return
	}
	if err != nil {
		s.internal(w, "save sign-in", err)
		return
	}
	who := Principal{Name: h.Host + "/" + u.Username, UserID: userID}
	if row.UserID != 0 {
		s.Audit(ctx, r, who, "connect", "connection:"+h.Host, "")
	} else {
		s.Audit(ctx, r, who, "sign-in", fmt.Sprintf("user:%d", userID), map[bool]string{true: "first sign-in", false: ""}[created])
		value := randomHex(32)
		sess := store.Session{UserID: userID, CSRF: randomHex(16), ExpiresAt: s.now().Add(SessionTTL)}
		if _, err := store.CreateSession(ctx, s.Store.DB, value, sess, RemoteAddr(r)); err != nil {
			s.internal(w, "create session", err)
			return
		}
		http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: value, Path: "/", MaxAge: int(SessionTTL.Seconds()),
			HttpOnly: true, Secure: s.secure(), SameSite: http.SameSiteLaxMode})
	}
	http.Redirect(w, r, row.ReturnTo, http.StatusSeeOther)
}

var errOtherUser = errors.New("identity belongs to another user")

// saveSignIn finds or creates the user of a GitLab account and stores its
// tokens, in one transaction: a failure leaves nothing half-written.
func (s *Service) saveSignIn(ctx context.Context, h store.GitLabHost, u *gl.User, tok *oauth2.Token, connectTo int64) (userID int64, created bool, err error) {
	admin := slices.Contains(s.Admins, strings.ToLower(h.Host+"/"+u.Username))
	err = s.Store.Tx(ctx, func(tx *sql.Tx) error {
		id, err := store.GetIdentity(ctx, tx, h.Host, u.ID)
		switch {
		case err == nil && connectTo != 0 && id.UserID != connectTo:
			return errOtherUser
		case err == nil:
			userID = id.UserID
		case errors.Is(err, store.ErrNotFound) && connectTo != 0:
			userID = connectTo
		case errors.Is(err, store.ErrNotFound):
			nu, err := store.CreateUser(ctx, tx, store.User{Username: u.Username, Name: u.Name, IsAdmin: admin})
			if err != nil {
				return err
			}
			userID, created = nu.ID, true
		default:
			return err
		}
		if _, err := store.SaveIdentity(ctx, tx, s.identityFrom(userID, h, u.ID, u.Username, tok)); err != nil {
			return err
		}
		if connectTo == 0 {
			if err := store.TouchUser(ctx, tx, userID, u.Username, u.Name); err != nil {
				return err
			}
		}
		if admin {
			return store.SetUserAdmin(ctx, tx, userID, true)
		}
		return nil
	})
	return userID, created, err
}

func (s *Service) identityFrom(userID int64, h store.GitLabHost, gitlabID int64, username string, tok *oauth2.Token) store.Identity {
	scopes, _ := tok.Extra("scope").(string)
	return store.Identity{UserID: userID, Host: h.Host, GitLabUserID: gitlabID, Username: username,
		AccessSealed: s.Box.Seal(tok.AccessToken), RefreshSealed: s.Box.Seal(tok.RefreshToken), ExpiresAt: s.expiry(tok), Scopes: scopes}
}

// expiry is when glenv considers an access token expired, by its own clock.
func (s *Service) expiry(tok *oauth2.Token) time.Time {
	if tok.ExpiresIn > 0 {
		return s.now().Add(time.Duration(tok.ExpiresIn) * time.Second)
	}
	if !tok.Expiry.IsZero() {
		return tok.Expiry
	}
	// GitLab's access tokens live two hours (PROTOCOL.md §4).
	return s.now().Add(2 * time.Hour)
}

// gitlabClient is a client-go client for h with a user's OAuth token (sent
// as Bearer, as GitLab wants OAuth tokens).
func (s *Service) gitlabClient(h store.GitLabHost, access string) (*gl.Client, error) {
	return gl.NewOAuthClient(access, gl.WithBaseURL(h.URL), gl.WithHTTPClient(s.HTTP), gl.WithoutRetries())
}

func (s *Service) gitlabUser(ctx context.Context, h store.GitLabHost, access string) (*gl.User, error) {
	c, err := s.gitlabClient(h, access)
	if err != nil {
		return nil, err
	}
	u, _, err := c.Users.CurrentUser(gl.WithContext(ctx))
	return u, err
}

func (s *Service) signOut(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(SessionCookie); err == nil && c.Value != "" {
		if p, err := s.Authenticate(r.Context(), r, false); err == nil && p.Kind == KindSession {
			s.Audit(r.Context(), r, p, "sign-out", fmt.Sprintf("user:%d", p.UserID), "")
		}
		if err := store.DeleteSession(r.Context(), s.Store.DB, c.Value); err != nil {
			s.internal(w, "delete session", err)
			return
		}
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: s.secure(), SameSite: http.SameSiteLaxMode})
	page(w, http.StatusOK, "Signed out", "Your glenv session is closed.")
}

func oauthMessage(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		if re.ErrorDescription != "" {
			return re.ErrorCode + ": " + re.ErrorDescription
		}
		if re.ErrorCode != "" {
			return re.ErrorCode
		}
		return fmt.Sprintf("HTTP %d", re.Response.StatusCode)
	}
	return err.Error()
}

func (s *Service) internal(w http.ResponseWriter, what string, err error) {
	s.Log.Error("auth", "what", what, "err", err)
	page(w, http.StatusInternalServerError, "Something went wrong", "glenv could not "+what+"; the server log says why.")
}

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>{{.Title}} — glenv</title></head>
<body><h1>{{.Title}}</h1><p>{{.Msg}}</p></body></html>
`))

// page answers a small HTML page (sign-in happens in a browser).
func page(w http.ResponseWriter, code int, title, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = pageTmpl.Execute(w, struct{ Title, Msg string }{title, msg})
}
