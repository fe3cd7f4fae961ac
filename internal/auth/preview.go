package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/glenv/glenv/internal/store"
)

// Private previews: an integration's environment_access says who may open
// its environments' URLs. Environments live on other host names than glenv,
// so glenv's session cookie never reaches them: a person is handed over by a
// redirect through glenv (/auth/env) carrying a one-time ticket that lives a
// minute; the environment's host trades it for a cookie of its own. Every
// glenv cookie and the ticket are stripped before the request reaches the
// app.

// Environment access modes.
const (
	AccessPublic   = "public"
	AccessSignedIn = "signed-in"
	AccessMembers  = "members"
)

const (
	envCookie  = "glenv_env"
	ticketKey  = "glenv_ticket"
	ticketTTL  = time.Minute
	envSession = 12 * time.Hour
)

// EnvGate runs before the proxy serves an environment host label: it strips
// glenv's cookies and tickets, and for private environments lets through
// only the people their access allows. It answers (and returns false) when
// the request must not reach the app.
func (s *Service) EnvGate(w http.ResponseWriter, r *http.Request, label string) (*http.Request, bool) {
	s.init()
	ticket := r.URL.Query().Get(ticketKey)
	var envCookieValue string
	if c, err := r.Cookie(envCookie); err == nil {
		envCookieValue = c.Value
	}
	clean := strip(r)
	in, private, err := s.envAccess(r.Context(), label)
	if err != nil {
		page(w, http.StatusServiceUnavailable, "glenv cannot read its database", "Try again in a moment.")
		return clean, false
	}
	if !private {
		return clean, true
	}
	if ticket != "" {
		s.redeemTicket(w, r, clean, label, ticket)
		return clean, false
	}
	if envCookieValue != "" {
		userID, err := store.GetEnvSession(r.Context(), s.Store.Reader(), envCookieValue, label)
		if err == nil {
			ok, why := s.mayOpen(r, userID, in)
			if !ok {
				page(w, http.StatusForbidden, "Not for you", why)
			}
			return clean, ok
		}
	}
	// Not handed over yet: through glenv, which knows who this is.
	back := clean.URL.RequestURI()
	http.Redirect(w, r, strings.TrimRight(s.PublicURL, "/")+"/auth/env?host="+url.QueryEscape(label)+"&path="+url.QueryEscape(back), http.StatusFound)
	return clean, false
}

// EnvOpen reports whether the environment at label is public: EnvGate then
// lets a request that carries no glenv cookie nor ticket through as it is.
// The proxy's Front forwards only such requests itself (proxy.Options.GateOpen).
func (s *Service) EnvOpen(ctx context.Context, label string) bool {
	s.init()
	_, private, err := s.envAccess(ctx, label)
	return err == nil && !private
}

// accessTTL is how long the proxy keeps an environment's access rule: a
// change of --environment-access applies within it everywhere.
const accessTTL = 2 * time.Second

// accessCacheMax bounds the cache; it is emptied when full.
const accessCacheMax = 10000

type accessEntry struct {
	in      store.Integration
	private bool
	at      time.Time
}

// envAccess says whether the environment at label is private, and its
// integration. Unknown hosts and detached environments are not private (the
// proxy answers for the first; the second are served as before private
// previews existed). Known answers are kept for accessTTL, so public
// environments cost no database read per request.
func (s *Service) envAccess(ctx context.Context, label string) (store.Integration, bool, error) {
	now := time.Now()
	s.accessMu.Lock()
	e, ok := s.access[label]
	s.accessMu.Unlock()
	if ok && now.Sub(e.at) < accessTTL {
		return e.in, e.private, nil
	}
	env, err := store.GetEnvironmentByHost(ctx, s.Store.Reader(), label)
	if errors.Is(err, store.ErrNotFound) {
		return store.Integration{}, false, nil
	}
	if err != nil {
		return store.Integration{}, false, err
	}
	in, err := store.GetIntegration(ctx, s.Store.Reader(), env.IntegrationName)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return in, false, err
	}
	e = accessEntry{in: in, private: err == nil && in.EnvironmentAccess != "" && in.EnvironmentAccess != AccessPublic, at: now}
	s.accessMu.Lock()
	if s.access == nil || len(s.access) >= accessCacheMax {
		s.access = map[string]accessEntry{}
	}
	s.access[label] = e
	s.accessMu.Unlock()
	return e.in, e.private, nil
}

// mayOpen decides whether a user may open an environment of in.
func (s *Service) mayOpen(r *http.Request, userID int64, in store.Integration) (bool, string) {
	p, err := s.userPrincipal(r.Context(), userID, KindSession)
	if err != nil {
		return false, "Your glenv account is gone; sign in again."
	}
	if in.EnvironmentAccess == AccessSignedIn {
		return true, ""
	}
	if ok, _ := s.CanIntegration(r.Context(), p, ActRead, in); ok {
		return true, ""
	}
	return false, fmt.Sprintf("This preview of %s is open to its project's members only (Reporter or above in GitLab), and %s is not one. Ask a maintainer of %s to add you.", in.ProjectPath, p.Name, in.ProjectPath)
}

// redeemTicket trades a one-time ticket for the environment host's cookie
// and sends the browser on to the same URL without the ticket.
func (s *Service) redeemTicket(w http.ResponseWriter, r, clean *http.Request, label, ticket string) {
	userID, err := store.TakeEnvTicket(r.Context(), s.Store.DB, ticket, label)
	if err != nil {
		page(w, http.StatusBadRequest, "Link expired", "This hand-over link was used already or is older than a minute. Open the environment's address again.")
		return
	}
	value := randomHex(32)
	if err := store.PutEnvSession(r.Context(), s.Store.DB, value, userID, label, s.now().Add(envSession)); err != nil {
		s.internal(w, "open the environment session", err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: envCookie, Value: value, Path: "/", MaxAge: int(envSession.Seconds()),
		HttpOnly: true, Secure: s.secure(), SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, clean.URL.RequestURI(), http.StatusSeeOther)
}

// strip returns r without glenv's cookies and the ticket parameter: the app
// must never see them.
func strip(r *http.Request) *http.Request {
	if !strings.Contains(strings.Join(r.Header.Values("Cookie"), ";"), "glenv_") && !strings.Contains(r.URL.RawQuery, ticketKey) {
		return r // nothing of glenv's to remove: no copy
	}
	out := r.Clone(r.Context())
	var keep []string
	for _, c := range r.Cookies() {
		if !strings.HasPrefix(c.Name, "glenv_") {
			keep = append(keep, c.Name+"="+c.Value)
		}
	}
	out.Header.Del("Cookie")
	if len(keep) > 0 {
		out.Header.Set("Cookie", strings.Join(keep, "; "))
	}
	if q := out.URL.Query(); q.Has(ticketKey) {
		q.Del(ticketKey)
		out.URL.RawQuery = q.Encode()
	}
	return out
}

// handOver is /auth/env?host=<label>&path=<path> on glenv's own host: a
// signed-in person allowed to open the environment gets a one-time ticket
// and is sent to it; others are sent to sign in first.
func (s *Service) handOver(w http.ResponseWriter, r *http.Request) {
	s.init()
	ctx := r.Context()
	label := r.URL.Query().Get("host")
	path, err := CleanReturnTo(r.URL.Query().Get("path"))
	if err != nil {
		page(w, http.StatusBadRequest, "Bad path", err.Error())
		return
	}
	env, err := store.GetEnvironmentByHost(ctx, s.Store.Reader(), label)
	if err != nil {
		page(w, http.StatusNotFound, "No such environment", fmt.Sprintf("No environment is at host %q.", label))
		return
	}
	in, err := store.GetIntegration(ctx, s.Store.Reader(), env.IntegrationName)
	if err != nil {
		page(w, http.StatusNotFound, "No such environment", "Its integration was deleted.")
		return
	}
	p, err := s.Authenticate(ctx, r, false)
	if err != nil || p.Kind != KindSession {
		host := HostOf(in.UserFacingURL)
		if _, err := store.GetGitLabHost(ctx, s.Store.Reader(), host); err != nil {
			host = HostOf(in.BaseURL)
		}
		http.Redirect(w, r, "/auth/gitlab?host="+url.QueryEscape(host)+"&return_to="+url.QueryEscape(r.URL.RequestURI()), http.StatusFound)
		return
	}
	if ok, why := s.mayOpen(r, p.UserID, in); !ok {
		page(w, http.StatusForbidden, "Not for you", why)
		return
	}
	ticket := randomHex(24)
	if err := store.PutEnvTicket(ctx, s.Store.DB, ticket, p.UserID, label, s.now().Add(ticketTTL)); err != nil {
		s.internal(w, "make a hand-over ticket", err)
		return
	}
	s.Audit(ctx, r, p, "environment:open", fmt.Sprintf("environment:%s/%s", env.IntegrationName, env.Name), "")
	target, _ := url.Parse(strings.TrimRight(s.EnvURL(env), "/") + path)
	q := target.Query()
	q.Set(ticketKey, ticket)
	target.RawQuery = q.Encode()
	http.Redirect(w, r, target.String(), http.StatusFound)
}
