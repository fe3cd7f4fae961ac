package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	gl "gitlab.com/gitlab-org/api/client-go/v2"

	"github.com/glenv/glenv/internal/store"
)

// MembershipTTL is how long a GitLab access level read with a user's token
// counts: removing someone from the GitLab project takes their role away
// within this.
const MembershipTTL = 5 * time.Minute

// identityFor returns p's identity on the GitLab an integration talks to.
func (s *Service) identityFor(ctx context.Context, p Principal, in store.Integration) (store.Identity, bool, error) {
	// Without a secret box (envapi.New in tests) no user token can be opened.
	if p.UserID == 0 || s.Box == nil {
		return store.Identity{}, false, nil
	}
	ids, err := store.IdentitiesOf(ctx, s.Store.Reader(), p.UserID)
	if err != nil {
		return store.Identity{}, false, err
	}
	for _, id := range ids {
		if id.Host == HostOf(in.BaseURL) || id.Host == HostOf(in.UserFacingURL) {
			return id, true, nil
		}
	}
	return store.Identity{}, false, nil
}

// AccessLevel is p's GitLab access level on an integration's project, read
// with p's own token (GET /projects/:id/members/all/:user_id, effective
// membership including groups; PROTOCOL.md §3.9) and cached for
// MembershipTTL. Not a member, or no account on that GitLab: 0.
func (s *Service) AccessLevel(ctx context.Context, p Principal, in store.Integration) (int, error) {
	s.init()
	id, ok, err := s.identityFor(ctx, p, in)
	if err != nil || !ok {
		return 0, err
	}
	if m, err := store.GetMembership(ctx, s.Store.Reader(), id.ID, in.ProjectID); err == nil && s.now().Sub(m.CheckedAt) < MembershipTTL {
		return m.AccessLevel, nil
	}
	h, err := store.GetGitLabHost(ctx, s.Store.Reader(), id.Host)
	if err != nil {
		return 0, fmt.Errorf("GitLab host %s: %w", id.Host, err)
	}
	level, err := s.readAccessLevel(ctx, h, id, in.ProjectID)
	if err != nil {
		return 0, err
	}
	if err := store.PutMembership(ctx, s.Store.DB, id.ID, in.ProjectID, level); err != nil {
		return 0, err
	}
	return level, nil
}

func (s *Service) readAccessLevel(ctx context.Context, h store.GitLabHost, id store.Identity, projectID int64) (int, error) {
	stale := ""
	for try := 0; try < 2; try++ {
		access, err := s.AccessToken(ctx, id.ID, stale)
		if err != nil {
			return 0, err
		}
		c, err := s.gitlabClient(h, access)
		if err != nil {
			return 0, err
		}
		level, resp, err := memberLevel(ctx, c, projectID, id.GitLabUserID)
		switch {
		case err == nil:
			return level, nil
		case resp != nil && resp.StatusCode == http.StatusUnauthorized:
			// Expired or revoked before glenv's clock said so: refresh once.
			stale = access
			continue
		}
		return 0, fmt.Errorf("read your membership of project %d on %s: %w", projectID, h.URL, err)
	}
	return 0, fmt.Errorf("%w: GitLab at %s refused your token even after a refresh: reconnect at /auth/gitlab?host=%s", ErrGitLab, h.URL, h.Host)
}

// memberLevel is userID's effective access level on projectID, read with
// c (GET /projects/:id/members/all/:user_id, groups included; PROTOCOL.md
// §3.9). Not a member (404): 0.
func memberLevel(ctx context.Context, c *gl.Client, projectID, userID int64) (int, *gl.Response, error) {
	m, resp, err := c.ProjectMembers.GetInheritedProjectMember(projectID, userID, gl.WithContext(ctx))
	switch {
	case err == nil:
		return int(m.AccessLevel), resp, nil
	case resp != nil && resp.StatusCode == http.StatusNotFound:
		return 0, resp, nil
	}
	return 0, resp, err
}

// GitLabRole is the role p's GitLab membership of in's project implies.
func (s *Service) GitLabRole(ctx context.Context, p Principal, in store.Integration) (Role, error) {
	level, err := s.AccessLevel(ctx, p, in)
	return RoleFromAccessLevel(level), err
}

// CanIntegration decides action on an integration's environments: glenv's
// own role in the integration's space, or the role the caller's GitLab
// membership of the project implies; a CI job token acts on its own project
// only and never administers.
func (s *Service) CanIntegration(ctx context.Context, p Principal, action Action, in store.Integration) (bool, error) {
	if p.Kind == KindJob {
		return action != ActAdmin && p.JobProjectID == in.ProjectID && HostOf(p.JobBaseURL) == HostOf(in.BaseURL), nil
	}
	if Can(p, action, in.Space) {
		return true, nil
	}
	if action != ActRead && p.Scope == store.ScopeReadAPI {
		return false, nil
	}
	r, err := s.GitLabRole(ctx, p, in)
	if err != nil {
		var reconnect = errors.Is(err, ErrReconnect)
		s.Log.Warn("GitLab role unknown", "user", p.Name, "integration", in.Name, "reconnect", reconnect, "err", err)
		return false, err
	}
	return r >= action.needs(), nil
}
