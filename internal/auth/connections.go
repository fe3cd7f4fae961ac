package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	gl "gitlab.com/gitlab-org/api/client-go/v2"

	"github.com/glenv/glenv/internal/store"
)

// Connection is one GitLab account of a user as /api/v1/me shows it.
type Connection struct {
	Host         string `json:"host"`
	Username     string `json:"username"`
	GitLabUserID int64  `json:"gitlab_user_id"`
	// State is connected or reconnect_needed.
	State     string `json:"state"`
	ExpiresAt string `json:"access_token_expires_at"`
	// Verified is set by a live check (/api/v1/me?verify=true).
	Verified *bool  `json:"verified,omitempty"`
	Problem  string `json:"problem,omitempty"`
}

// Connections lists a user's GitLab accounts; with verify, each token is
// tried against GitLab (refreshed first if it must be).
func (s *Service) Connections(ctx context.Context, userID int64, verify bool) ([]Connection, error) {
	ids, err := store.IdentitiesOf(ctx, s.Store.Reader(), userID)
	if err != nil {
		return nil, err
	}
	out := []Connection{}
	for _, id := range ids {
		c := Connection{Host: id.Host, Username: id.Username, GitLabUserID: id.GitLabUserID, State: id.State,
			ExpiresAt: id.ExpiresAt.Format("2006-01-02T15:04:05Z")}
		if verify {
			ok := true
			if err := s.verify(ctx, id); err != nil {
				ok, c.Problem = false, err.Error()
				if errors.Is(err, ErrReconnect) {
					c.State = store.IdentityReconnectNeeded
				}
			}
			c.Verified = &ok
		}
		out = append(out, c)
	}
	return out, nil
}

func (s *Service) verify(ctx context.Context, id store.Identity) error {
	h, err := store.GetGitLabHost(ctx, s.Store.Reader(), id.Host)
	if err != nil {
		return fmt.Errorf("GitLab host %s is no longer registered", id.Host)
	}
	stale := ""
	for try := 0; try < 2; try++ {
		access, err := s.AccessToken(ctx, id.ID, stale)
		if err != nil {
			return err
		}
		c, err := s.gitlabClient(h, access)
		if err != nil {
			return err
		}
		_, resp, err := c.Users.CurrentUser(gl.WithContext(ctx))
		if resp != nil && resp.StatusCode == http.StatusUnauthorized {
			stale = access
			continue
		}
		return err
	}
	return fmt.Errorf("GitLab at %s refuses glenv's token even after a refresh: reconnect at /auth/gitlab?host=%s", h.URL, h.Host)
}

// Disconnect deletes a user's connection to host and revokes its tokens at
// GitLab. The deletion stands even when GitLab cannot be reached; the
// returned note says how to revoke glenv's application on GitLab's side.
func (s *Service) Disconnect(ctx context.Context, userID int64, host string) (string, error) {
	s.init()
	ids, err := store.IdentitiesOf(ctx, s.Store.Reader(), userID)
	if err != nil {
		return "", err
	}
	for _, id := range ids {
		if id.Host != strings.ToLower(host) {
			continue
		}
		if err := store.DeleteIdentity(ctx, s.Store.DB, id.ID); err != nil {
			return "", err
		}
		note := "To revoke glenv's access on GitLab's side for good, open " + "User settings → Applications on " + id.Host + " and revoke glenv."
		if err := s.revoke(ctx, id); err != nil {
			note = "Disconnected, but GitLab could not be told (" + err.Error() + "). " + note
		}
		return note, nil
	}
	return "", fmt.Errorf("%w: no connection to %s", store.ErrNotFound, host)
}

// revoke asks GitLab to revoke an identity's tokens (POST /oauth/revoke, RFC 7009).
func (s *Service) revoke(ctx context.Context, id store.Identity) error {
	h, err := store.GetGitLabHost(ctx, s.Store.Reader(), id.Host)
	if err != nil {
		return err
	}
	secret, err := s.Box.Open(h.ClientSecretSealed)
	if err != nil {
		return err
	}
	var errs []error
	for _, sealed := range []string{id.RefreshSealed, id.AccessSealed} {
		tok, err := s.Box.Open(sealed)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		form := url.Values{"client_id": {h.ClientID}, "client_secret": {secret}, "token": {tok}}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL+"/oauth/revoke", strings.NewReader(form.Encode()))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := s.HTTP.Do(req)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			errs = append(errs, fmt.Errorf("/oauth/revoke answered HTTP %d", resp.StatusCode))
		}
	}
	return errors.Join(errs...)
}
