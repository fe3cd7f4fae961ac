package auth

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"golang.org/x/oauth2"

	"github.com/glenv/glenv/internal/store"
)

// Scopes glenv asks GitLab for when people sign in: read_user to know who
// they are, openid for the standard sign-in, read_api to read their project
// memberships (roles from GitLab). glenv never acts for the user, so it
// needs no api scope.
var Scopes = []string{"read_user", "openid", "read_api"}

// FieldError is bad input: the field, the rule and the fix.
type FieldError struct{ Field, Msg string }

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// HostOf is the key a GitLab URL is registered under: its host with the
// port if it has one.
func HostOf(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return ""
	}
	return strings.ToLower(u.Host)
}

// RedirectURL is the one callback URL to paste into GitLab's application form.
func (s *Service) RedirectURL() string { return strings.TrimRight(s.PublicURL, "/") + "/auth/callback" }

func (s *Service) oauthConfig(h store.GitLabHost, secret string) *oauth2.Config {
	return &oauth2.Config{
		ClientID: h.ClientID, ClientSecret: secret, RedirectURL: s.RedirectURL(), Scopes: Scopes,
		Endpoint: oauth2.Endpoint{AuthURL: h.URL + "/oauth/authorize", TokenURL: h.URL + "/oauth/token",
			// Doorkeeper takes client_secret_post; sending it one way
			// keeps an invalid_client answer unambiguous.
			AuthStyle: oauth2.AuthStyleInParams},
	}
}

// AddHostInput is what gitlab-host:add sends.
type AddHostInput struct {
	URL          string `json:"url"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
}

// AddHost checks that the GitLab at in.URL answers and accepts the client id
// and secret, then stores the host with its secret sealed. The check
// exchanges a made-up authorization code: Doorkeeper validates the client
// before the grant (doorkeeper lib/doorkeeper/oauth/authorization_code_request.rb:
// `validate :client, error: :invalid_client` precedes `validate :grant,
// error: :invalid_grant`), so invalid_grant means the client was accepted and
// invalid_client that it was not.
func (s *Service) AddHost(ctx context.Context, in AddHostInput) (store.GitLabHost, error) {
	s.init()
	raw := strings.TrimRight(strings.TrimSpace(in.URL), "/")
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return store.GitLabHost{}, fieldErr("url", "%q must be the GitLab instance's address, e.g. https://gitlab.example.com", in.URL)
	}
	if strings.TrimSpace(in.ClientID) == "" || len(in.ClientID) > 200 {
		return store.GitLabHost{}, fieldErr("client_id", "must be the Application ID GitLab showed for glenv's application")
	}
	if strings.TrimSpace(in.ClientSecret) == "" || len(in.ClientSecret) > 500 {
		return store.GitLabHost{}, fieldErr("client_secret", "must be the Secret GitLab showed once for glenv's application")
	}
	h := store.GitLabHost{Host: strings.ToLower(u.Host), URL: u.Scheme + "://" + u.Host, ClientID: strings.TrimSpace(in.ClientID)}
	if _, err := store.GetGitLabHost(ctx, s.Store.Reader(), h.Host); err == nil {
		return h, fmt.Errorf("%w: GitLab host %s is registered already; remove it first with gitlab-host:remove %s", store.ErrConflict, h.Host, h.Host)
	}
	if err := s.checkClient(ctx, h, strings.TrimSpace(in.ClientSecret)); err != nil {
		return h, err
	}
	h.ClientSecretSealed = s.Box.Seal(strings.TrimSpace(in.ClientSecret))
	return store.CreateGitLabHost(ctx, s.Store.DB, h)
}

// ErrGitLab is a GitLab that refused or did not answer.
var ErrGitLab = errors.New("GitLab")

func (s *Service) checkClient(ctx context.Context, h store.GitLabHost, secret string) error {
	ctx = context.WithValue(ctx, oauth2.HTTPClient, s.HTTP)
	_, err := s.oauthConfig(h, secret).Exchange(ctx, "glenv-client-check-"+randomHex(8))
	var re *oauth2.RetrieveError
	switch {
	case errors.As(err, &re) && re.ErrorCode == "invalid_grant":
		return nil
	case errors.As(err, &re) && re.ErrorCode == "invalid_client":
		return fieldErr("client_secret", "GitLab at %s refused this client id and secret (invalid_client): copy both again from the application's page (Admin area or User settings → Applications)", h.URL)
	case errors.As(err, &re):
		return fmt.Errorf("%w: %s answered /oauth/token with HTTP %d %q: is this a GitLab instance? check --url", ErrGitLab, h.URL, re.Response.StatusCode, strings.TrimSpace(string(re.Body)))
	case err != nil:
		return fmt.Errorf("%w: %s does not answer: %v: check --url and that glenv can reach it", ErrGitLab, h.URL, err)
	}
	return fmt.Errorf("%w: %s accepted a made-up authorization code: this is not a GitLab glenv can trust", ErrGitLab, h.URL)
}

// RemoveHost removes a host and every connection to it.
func (s *Service) RemoveHost(ctx context.Context, host string) error {
	return s.Store.Tx(ctx, func(tx *sql.Tx) error { return store.DeleteGitLabHost(ctx, tx, strings.ToLower(host)) })
}
