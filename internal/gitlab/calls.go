package gitlab

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	gl "gitlab.com/gitlab-org/api/client-go/v2"
)

// TokenInfo is what glenv needs to know about a token.
type TokenInfo struct {
	Name      string
	Scopes    []string
	ExpiresAt *time.Time // nil = never
	UserID    int64
	Username  string
	IsAdmin   bool
}

// HasScope reports whether the token carries scope.
func (t TokenInfo) HasScope(scope string) bool {
	for _, s := range t.Scopes {
		if s == scope {
			return true
		}
	}
	return false
}

// TokenSelf reads the token's scopes and expiry (PROTOCOL.md §3.6) and its user (§3.7).
func (c *Client) TokenSelf(ctx context.Context) (TokenInfo, error) {
	var info TokenInfo
	pat, _, err := c.API.PersonalAccessTokens.GetSinglePersonalAccessToken(Ctx(ctx))
	if err != nil {
		return info, c.Explain("check the token", err)
	}
	if pat.Revoked || !pat.Active && pat.ExpiresAt == nil {
		return info, c.Explain("check the token", &gl.ErrorResponse{StatusCode: 401, Message: "Token was revoked"})
	}
	info.Name, info.Scopes, info.UserID = pat.Name, pat.Scopes, pat.UserID
	if pat.ExpiresAt != nil {
		t := time.Time(*pat.ExpiresAt)
		info.ExpiresAt = &t
	}
	u, _, err := c.API.Users.CurrentUser(Ctx(ctx))
	if err != nil {
		// A token without read_user/api can still be checked for scopes above.
		if !errors.Is(c.Explain("", err), ErrForbidden) {
			return info, c.Explain("read the token's user", err)
		}
	} else {
		info.Username, info.IsAdmin = u.Username, u.IsAdmin
		if info.UserID == 0 {
			info.UserID = u.ID
		}
	}
	return info, nil
}

// Project is the part of a GitLab project glenv keeps.
type Project struct {
	ID                int64
	PathWithNamespace string
	DefaultBranch     string
	WebURL            string
	HTTPURLToRepo     string
}

// GetProject resolves a project by numeric id or "group/project" path.
func (c *Client) GetProject(ctx context.Context, idOrPath string) (Project, error) {
	var pid any = idOrPath
	if n, err := strconv.ParseInt(idOrPath, 10, 64); err == nil {
		pid = n
	}
	p, _, err := c.API.Projects.GetProject(pid, nil, Ctx(ctx))
	if err != nil {
		return Project{}, c.Explain("read project "+idOrPath, err)
	}
	return Project{ID: p.ID, PathWithNamespace: p.PathWithNamespace, DefaultBranch: p.DefaultBranch, WebURL: p.WebURL, HTTPURLToRepo: p.HTTPURLToRepo}, nil
}

// AccessLevel returns the user's effective access level on the project (0 when not a member).
func (c *Client) AccessLevel(ctx context.Context, projectID, userID int64) (int, error) {
	m, _, err := c.API.ProjectMembers.GetInheritedProjectMember(projectID, userID, Ctx(ctx))
	if errors.Is(err, gl.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, c.Explain("read the token user's role on the project", err)
	}
	return int(m.AccessLevel), nil
}

// Maintainer is GitLab's Maintainer access level.
const Maintainer = 40

// Hook is a project webhook as glenv sees it.
type Hook struct {
	ID                  int64
	URL                 string
	PushEvents          bool
	TagPushEvents       bool
	MergeRequestsEvents bool
	AlertStatus         string
	DisabledUntil       *time.Time
}

func hookFrom(h *gl.ProjectHook) Hook {
	return Hook{ID: h.ID, URL: h.URL, PushEvents: h.PushEvents, TagPushEvents: h.TagPushEvents,
		MergeRequestsEvents: h.MergeRequestsEvents, AlertStatus: string(h.AlertStatus), DisabledUntil: h.DisabledUntil}
}

// ListHooks returns every hook of the project.
func (c *Client) ListHooks(ctx context.Context, projectID int64) ([]Hook, error) {
	var out []Hook
	opt := &gl.ListProjectHooksOptions{ListOptions: gl.ListOptions{PerPage: 100, Page: 1}}
	for {
		hooks, resp, err := c.API.Projects.ListProjectHooks(projectID, opt, Ctx(ctx))
		if err != nil {
			return nil, c.Explain("list the project's webhooks", err)
		}
		for _, h := range hooks {
			out = append(out, hookFrom(h))
		}
		if resp.NextPage == 0 {
			return out, nil
		}
		opt.Page = resp.NextPage
	}
}

// FindHook returns the project's hook whose URL is url, if any.
func (c *Client) FindHook(ctx context.Context, projectID int64, url string) (*Hook, error) {
	hooks, err := c.ListHooks(ctx, projectID)
	if err != nil {
		return nil, err
	}
	for _, h := range hooks {
		if strings.TrimRight(h.URL, "/") == strings.TrimRight(url, "/") {
			return &h, nil
		}
	}
	return nil, nil
}

// EnsureHook installs the one hook glenv needs at url with secret, or updates
// the existing hook at that URL (found by URL), so repeating it never adds a
// second hook.
func (c *Client) EnsureHook(ctx context.Context, projectID int64, url, secret string) (Hook, error) {
	existing, err := c.FindHook(ctx, projectID, url)
	if err != nil {
		return Hook{}, err
	}
	t := true
	name, desc := "glenv", "Preview environments by glenv: push, tag and merge request events"
	if existing != nil {
		h, _, err := c.API.Projects.EditProjectHook(projectID, existing.ID, &gl.EditProjectHookOptions{
			URL: &url, Name: &name, Description: &desc, Token: &secret, PushEvents: &t, TagPushEvents: &t,
			MergeRequestsEvents: &t, EnableSSLVerification: &t,
		}, Ctx(ctx))
		if err != nil {
			return Hook{}, c.Explain("update the webhook", err)
		}
		return hookFrom(h), nil
	}
	h, _, err := c.API.Projects.AddProjectHook(projectID, &gl.AddProjectHookOptions{
		URL: &url, Name: &name, Description: &desc, Token: &secret, PushEvents: &t, TagPushEvents: &t,
		MergeRequestsEvents: &t, EnableSSLVerification: &t,
	}, Ctx(ctx))
	if err != nil {
		return Hook{}, c.Explain("install the webhook", err)
	}
	return hookFrom(h), nil
}

// DeleteHook removes a hook; one already gone is fine.
func (c *Client) DeleteHook(ctx context.Context, projectID, hookID int64) error {
	_, err := c.API.Projects.DeleteProjectHook(projectID, hookID, Ctx(ctx))
	if err != nil && !errors.Is(err, gl.ErrNotFound) {
		return c.Explain("delete the webhook", err)
	}
	return nil
}

// TestHook triggers a push test delivery, which also re-enables a hook GitLab disabled (PROTOCOL.md §1.4).
func (c *Client) TestHook(ctx context.Context, projectID, hookID int64) error {
	_, err := c.API.Projects.TriggerTestProjectHook(projectID, hookID, gl.ProjectHookEventPush, Ctx(ctx))
	return c.Explain("test the webhook", err)
}

// ListBranches returns every branch name → head SHA, 100 per request.
func (c *Client) ListBranches(ctx context.Context, projectID int64) (map[string]string, error) {
	out := map[string]string{}
	opt := &gl.ListBranchesOptions{ListOptions: gl.ListOptions{PerPage: 100, Page: 1}}
	for {
		bs, resp, err := c.API.Branches.ListBranches(projectID, opt, Ctx(ctx))
		if err != nil {
			return nil, c.Explain("list branches", err)
		}
		for _, b := range bs {
			sha := ""
			if b.Commit != nil {
				sha = b.Commit.ID
			}
			out[b.Name] = sha
		}
		if resp.NextPage == 0 {
			return out, nil
		}
		opt.Page = resp.NextPage
	}
}

// ListTags returns every tag name → commit SHA, 100 per request.
func (c *Client) ListTags(ctx context.Context, projectID int64) (map[string]string, error) {
	out := map[string]string{}
	opt := &gl.ListTagsOptions{ListOptions: gl.ListOptions{PerPage: 100, Page: 1}}
	for {
		ts, resp, err := c.API.Tags.ListTags(projectID, opt, Ctx(ctx))
		if err != nil {
			return nil, c.Explain("list tags", err)
		}
		for _, t := range ts {
			sha := ""
			if t.Commit != nil {
				sha = t.Commit.ID
			}
			out[t.Name] = sha
		}
		if resp.NextPage == 0 {
			return out, nil
		}
		opt.Page = resp.NextPage
	}
}

// MergeRequest is an open merge request as reconcile needs it.
type MergeRequest struct {
	IID                            int64
	Title                          string
	SourceBranch, TargetBranch     string
	SourceProjectID, TargetProject int64
	SHA                            string
	Draft                          bool
	UpdatedAt                      time.Time
	WebURL                         string
}

// ListOpenMergeRequests returns every open merge request, 100 per request.
func (c *Client) ListOpenMergeRequests(ctx context.Context, projectID int64) ([]MergeRequest, error) {
	var out []MergeRequest
	opened := "opened"
	opt := &gl.ListProjectMergeRequestsOptions{State: &opened, ListOptions: gl.ListOptions{PerPage: 100, Page: 1}}
	for {
		mrs, resp, err := c.API.MergeRequests.ListProjectMergeRequests(projectID, opt, Ctx(ctx))
		if err != nil {
			return nil, c.Explain("list open merge requests", err)
		}
		for _, m := range mrs {
			mr := MergeRequest{IID: m.IID, Title: m.Title, SourceBranch: m.SourceBranch, TargetBranch: m.TargetBranch,
				SourceProjectID: m.SourceProjectID, TargetProject: m.TargetProjectID, SHA: m.SHA, Draft: m.Draft, WebURL: m.WebURL}
			if m.UpdatedAt != nil {
				mr.UpdatedAt = *m.UpdatedAt
			}
			out = append(out, mr)
		}
		if resp.NextPage == 0 {
			return out, nil
		}
		opt.Page = resp.NextPage
	}
}
