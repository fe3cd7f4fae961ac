package auth

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/glenv/glenv/internal/store"
)

const (
	// refreshBefore: a token expiring within this is refreshed before use.
	refreshBefore = 5 * time.Minute
	// leaseFor bounds how long a replica that died mid-refresh blocks others.
	leaseFor = 30 * time.Second
)

// ErrReconnect is a connection GitLab no longer accepts: the user must sign
// in with that host again.
var ErrReconnect = errors.New("GitLab refused glenv's refresh token: reconnect this account at /auth/gitlab?host=")

func (s *Service) identityLock(id int64) *sync.Mutex {
	m, _ := s.locks.LoadOrStore(id, &sync.Mutex{})
	return m.(*sync.Mutex)
}

// AccessToken returns a usable access token of an identity, refreshing it
// first when it expires within 5 minutes or when stale (an access token
// GitLab just refused) is still the stored one. GitLab's refresh tokens work
// once, so refreshes of one identity are serialised: by a mutex within this
// process and by a lease row-update in the database across replicas; the
// rotated pair is stored in one statement that also ends the lease.
func (s *Service) AccessToken(ctx context.Context, identityID int64, stale string) (string, error) {
	s.init()
	mu := s.identityLock(identityID)
	mu.Lock()
	defer mu.Unlock()
	for attempt := 0; ; attempt++ {
		id, err := store.GetIdentityByID(ctx, s.Store.DB, identityID)
		if err != nil {
			return "", err
		}
		if id.State == store.IdentityReconnectNeeded {
			return "", fmt.Errorf("%w%s", ErrReconnect, id.Host)
		}
		access, err := s.Box.Open(id.AccessSealed)
		if err != nil {
			return "", err
		}
		if access != stale && id.ExpiresAt.Sub(s.now()) > refreshBefore {
			return access, nil
		}
		ok, err := store.TakeRefreshLease(ctx, s.Store.DB, id.ID, s.owner, s.now().Add(leaseFor))
		if err != nil {
			return "", err
		}
		if !ok {
			// Another replica is refreshing: wait for its result.
			if attempt > int(leaseFor/(100*time.Millisecond)) {
				return "", fmt.Errorf("refresh of %s/%s still held by another replica after %s", id.Host, id.Username, leaseFor)
			}
			select {
			case <-ctx.Done():
				return "", ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		// Re-read under the lease: another replica may have just finished.
		if fresh, err := store.GetIdentityByID(ctx, s.Store.DB, identityID); err == nil && fresh.AccessSealed != id.AccessSealed {
			_ = store.ReleaseRefreshLease(ctx, s.Store.DB, id.ID, s.owner)
			continue
		}
		return s.refresh(ctx, id)
	}
}

func (s *Service) refresh(ctx context.Context, id store.Identity) (string, error) {
	h, err := store.GetGitLabHost(ctx, s.Store.Reader(), id.Host)
	if err != nil {
		_ = store.ReleaseRefreshLease(ctx, s.Store.DB, id.ID, s.owner)
		return "", fmt.Errorf("GitLab host %s of %s: %w", id.Host, id.Username, err)
	}
	secret, err1 := s.Box.Open(h.ClientSecretSealed)
	refresh, err2 := s.Box.Open(id.RefreshSealed)
	if err := errors.Join(err1, err2); err != nil {
		_ = store.ReleaseRefreshLease(ctx, s.Store.DB, id.ID, s.owner)
		return "", err
	}
	src := s.oauthConfig(h, secret).TokenSource(context.WithValue(ctx, oauth2.HTTPClient, s.HTTP),
		&oauth2.Token{RefreshToken: refresh, Expiry: time.Unix(1, 0)})
	tok, err := src.Token()
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && (re.ErrorCode == "invalid_grant" || re.ErrorCode == "invalid_client") {
		// Not retried: the refresh token is spent or revoked for good.
		s.Log.Warn("GitLab refused a refresh; the user must reconnect", "host", id.Host, "gitlab_user", id.Username, "error", re.ErrorCode)
		if err := store.MarkReconnectNeeded(ctx, s.Store.DB, id.ID, s.owner); err != nil {
			return "", err
		}
		s.Audit(ctx, nil, Principal{Name: id.Host + "/" + id.Username}, "reconnect-needed", "connection:"+id.Host, re.ErrorCode)
		return "", fmt.Errorf("%w%s", ErrReconnect, id.Host)
	}
	if err != nil {
		_ = store.ReleaseRefreshLease(ctx, s.Store.DB, id.ID, s.owner)
		return "", fmt.Errorf("refresh GitLab token of %s/%s: %w", id.Host, id.Username, err)
	}
	newRefresh := tok.RefreshToken
	if newRefresh == "" {
		newRefresh = refresh
	}
	if err := store.StoreRefreshedTokens(ctx, s.Store.DB, id.ID, s.owner, s.Box.Seal(tok.AccessToken), s.Box.Seal(newRefresh), s.expiry(tok)); err != nil {
		return "", fmt.Errorf("store refreshed token of %s/%s (lease lost?): %w", id.Host, id.Username, err)
	}
	return tok.AccessToken, nil
}
