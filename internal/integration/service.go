package integration

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/glenv/glenv/internal/gitlab"
	"github.com/glenv/glenv/internal/jobs"
	"github.com/glenv/glenv/internal/lifecycle"
	"github.com/glenv/glenv/internal/limits"
	"github.com/glenv/glenv/internal/secret"
	"github.com/glenv/glenv/internal/store"
)

// Applier carries out lifecycle actions in a transaction (internal/jobs).
type Applier interface {
	Apply(ctx context.Context, tx *sql.Tx, in store.Integration, actions []lifecycle.Action, deliveryID int64) (jobs.Applied, error)
}

// Service manages integrations.
type Service struct {
	Store     *store.Store
	Box       *secret.Box
	PublicURL string
	Applier   Applier
	// GitLab builds the client for an instance; tests shorten its time-outs.
	GitLab func(baseURL, token string) (*gitlab.Client, error)
	Now    func() time.Time
	Log    *slog.Logger
	// Changed is told when an integration's secret or existence changes (the receiver's cache).
	Changed func(name string)
	// Limits and ConnectionLimit are the server's ceilings
	// (--environment-max-*, --services-database-connection-limit): an
	// integration's own may not exceed them (0: no check).
	Limits          limits.Server
	ConnectionLimit int
}

// Result is what add, update and validate report.
type Result struct {
	Integration   store.Integration `json:"integration"`
	HookURL       string            `json:"hook_url"`
	WebhookSecret string            `json:"webhook_secret,omitempty"` // only on creation, or to admins
	Created       bool              `json:"created"`
	Warnings      []string          `json:"warnings"`
	Environments  []string          `json:"environments"` // created by this call
	WouldDelete   []string          `json:"would_delete"` // prune-branches plan
}

// HookURL is where GitLab delivers an integration's events.
func (s *Service) HookURL(name string) string { return s.PublicURL + "/hooks/gitlab/" + name }

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) client(baseURL, token string) (*gitlab.Client, error) {
	if s.GitLab != nil {
		return s.GitLab(baseURL, token)
	}
	return gitlab.New(baseURL, token, gitlab.Options{})
}

// checkToken validates a token as add and validate need it: the api scope,
// not expired or revoked; it warns when it expires within 30 days.
func (s *Service) checkToken(ctx context.Context, c *gitlab.Client) (gitlab.TokenInfo, []string, error) {
	info, err := c.TokenSelf(ctx)
	if err != nil {
		return info, nil, err
	}
	if !info.HasScope("api") {
		return info, nil, fieldErr("token", "lacks the api scope (it has: %s); create a token with the api scope — glenv installs webhooks and writes statuses", strings.Join(info.Scopes, ", "))
	}
	var warnings []string
	if info.ExpiresAt != nil {
		left := info.ExpiresAt.Sub(s.now())
		switch {
		case left < 0:
			return info, nil, fieldErr("token", "expired on %s; create a new token with the api scope", info.ExpiresAt.Format("2006-01-02"))
		case left < 30*24*time.Hour:
			warnings = append(warnings, fmt.Sprintf("the token expires on %s (in %d days): create a new one and run `glenv integration:update NAME --token …` before then",
				info.ExpiresAt.Format("2006-01-02"), int(left.Hours()/24)+1))
		}
	}
	return info, warnings, nil
}

func (s *Service) checkRole(ctx context.Context, c *gitlab.Client, info gitlab.TokenInfo, projectID int64) ([]string, error) {
	if info.IsAdmin {
		return nil, nil
	}
	level, err := c.AccessLevel(ctx, projectID, info.UserID)
	if err != nil {
		return nil, err
	}
	if level < gitlab.Maintainer {
		return []string{fmt.Sprintf("the token's user %s has access level %d on the project, below Maintainer (40): glenv cannot install or repair the webhook; give the user the Maintainer role", info.Username, level)}, nil
	}
	return nil, nil
}

func newSecret() string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func boolOr(p *bool, def bool) bool {
	if p == nil {
		return def
	}
	return *p
}

func strOr(p *string, def string) string {
	if p == nil {
		return def
	}
	return *p
}

// applyOptions writes the given options onto in.
func applyOptions(in *store.Integration, x Input) {
	in.UserFacingURL = strOr(x.UserFacingURL, in.UserFacingURL)
	if in.UserFacingURL == "" {
		in.UserFacingURL = in.BaseURL
	}
	in.Space = strOr(x.Space, in.Space)
	in.EnvironmentAccess = strOr(x.EnvironmentAccess, in.EnvironmentAccess)
	if x.Labels != nil {
		in.Labels = dedupe(x.Labels)
	}
	in.Description = strOr(x.Description, in.Description)
	in.FetchBranches = boolOr(x.FetchBranches, in.FetchBranches)
	in.PruneBranches = boolOr(x.PruneBranches, in.PruneBranches)
	in.BuildMergeRequests = boolOr(x.BuildMergeRequests, in.BuildMergeRequests)
	in.BuildDraftMergeRequests = boolOr(x.BuildDraftMergeRequests, in.BuildDraftMergeRequests)
	in.MergeRequestsCloneParentData = boolOr(x.MergeRequestsCloneParentData, in.MergeRequestsCloneParentData)
	in.BuildTags = strOr(x.BuildTags, in.BuildTags)
	in.BuildForks = boolOr(x.BuildForks, in.BuildForks)
	in.PrebuildBranches = boolOr(x.PrebuildBranches, in.PrebuildBranches)
	if x.PauseAfter != nil {
		// Validated before (validateCommon).
		in.PauseAfter, _ = store.ParsePauseAfter(*x.PauseAfter)
	}
	in.Ceilings = x.ceilings(in.Ceilings)
}

func dedupe(l []string) []string {
	seen := map[string]bool{}
	out := []string{}
	for _, v := range l {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// Add connects a GitLab project (integration:add). It checks everything with
// GitLab first and stores nothing when a check fails. Adding a name that
// exists for the same project updates it in place, keeping its one hook.
func (s *Service) Add(ctx context.Context, x Input) (Result, error) {
	var res Result
	if err := x.validateAdd(); err != nil {
		return res, err
	}
	if err := s.checkCeilings(x); err != nil {
		return res, err
	}
	existing, err := store.GetIntegration(ctx, s.Store.Reader(), x.Name)
	exists := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return res, err
	}
	c, err := s.client(x.BaseURL, x.Token)
	if err != nil {
		return res, err
	}
	info, warnings, err := s.checkToken(ctx, c)
	if err != nil {
		return res, err
	}
	proj, err := c.GetProject(ctx, strings.Trim(x.GitLabProject, "/"))
	if err != nil {
		if errors.Is(err, gitlab.ErrNotFound) {
			return res, fieldErr("gitlab_project", "%q was not found on %s, or the token's user cannot see it: check the path and the user's membership", x.GitLabProject, x.BaseURL)
		}
		return res, err
	}
	if exists && existing.ProjectID != proj.ID {
		return res, fieldErr("name", "%q is already the integration of project %s: choose another --name, or delete it first (glenv integration:delete %s)", x.Name, existing.ProjectPath, x.Name)
	}
	roleWarn, err := s.checkRole(ctx, c, info, proj.ID)
	if err != nil {
		return res, err
	}
	warnings = append(warnings, roleWarn...)
	if proj.DefaultBranch == "" {
		warnings = append(warnings, "the repository is empty: environments appear with the first push")
	}

	in := store.Integration{Name: x.Name, Type: x.Type, Space: "root", Labels: []string{}, FetchBranches: true,
		PruneBranches: true, BuildMergeRequests: true, BuildDraftMergeRequests: true, MergeRequestsCloneParentData: true}
	if exists {
		in = existing
	}
	in.BaseURL, in.GitLabProject, in.ProjectID, in.ProjectPath = x.BaseURL, x.GitLabProject, proj.ID, proj.PathWithNamespace
	in.DefaultBranch = proj.DefaultBranch
	if exists && x.UserFacingURL == nil && existing.UserFacingURL == existing.BaseURL {
		in.UserFacingURL = ""
	}
	applyOptions(&in, x)
	in.TokenSealed = s.Box.Seal(x.Token)
	in.TokenExpiresAt = ""
	if info.ExpiresAt != nil {
		in.TokenExpiresAt = info.ExpiresAt.Format("2006-01-02")
	}
	secretValue := newSecret()
	if exists {
		if old, err := s.Box.Open(existing.WebhookSecretSealed); err == nil && old != "" {
			secretValue = old
		}
	}
	in.WebhookSecretSealed = s.Box.Seal(secretValue)

	actions, err := s.plan(ctx, c, in)
	if err != nil {
		return res, err
	}
	res = Result{Integration: in, HookURL: s.HookURL(in.Name), Warnings: warnings, Created: !exists,
		Environments: []string{}, WouldDelete: []string{}}
	for _, a := range actions {
		switch a.Type {
		case lifecycle.ActionDelete:
			res.WouldDelete = append(res.WouldDelete, a.Env)
		case lifecycle.ActionCreate:
			res.Environments = append(res.Environments, a.Env)
		}
	}
	if x.DryRun {
		return res, nil
	}
	if len(res.WouldDelete) > 0 && !x.Confirm {
		return res, ErrConfirm
	}

	hook, err := c.EnsureHook(ctx, proj.ID, res.HookURL, secretValue)
	if err != nil {
		return res, err
	}
	createdHook := in.HookID != hook.ID
	in.HookID = hook.ID
	err = s.Store.Tx(ctx, func(tx *sql.Tx) error {
		if exists {
			// Only if nobody changed it since it was read, before the GitLab
			// calls above: otherwise their change would be reverted.
			if err := store.UpdateIntegrationIfUnchanged(ctx, tx, &in, existing.UpdatedAt); err != nil {
				return err
			}
		} else {
			if err := store.CreateIntegration(ctx, tx, &in); err != nil {
				return err
			}
			if err := store.ReattachEnvironments(ctx, tx, in); err != nil {
				return err
			}
		}
		_, err := s.Applier.Apply(ctx, tx, in, actions, 0)
		return err
	})
	if err != nil {
		if createdHook {
			// Leave nothing behind: the hook is useless without the integration.
			if derr := c.DeleteHook(context.WithoutCancel(ctx), proj.ID, hook.ID); derr != nil {
				s.Log.Warn("could not remove the webhook after a failed add", "integration", in.Name, "err", derr)
			}
		}
		if errors.Is(err, store.ErrStale) {
			return res, fmt.Errorf("store integration %s: %w", in.Name, err)
		}
		if errors.Is(err, store.ErrConflict) {
			return res, fieldErr("name", "%q is taken by an integration added at the same moment: choose another --name", in.Name)
		}
		return res, fmt.Errorf("store integration %s: %w", in.Name, err)
	}
	res.Integration = in
	if !exists {
		res.WebhookSecret = secretValue
	}
	s.changed(in.Name)
	s.Log.Info("integration added", "integration", in.Name, "project", in.ProjectPath, "hook", hook.ID, "environments", len(res.Environments))
	return res, nil
}

func (s *Service) changed(name string) {
	if s.Changed != nil {
		s.Changed(name)
	}
}

// plan asks the lifecycle which environments the integration should have now.
func (s *Service) plan(ctx context.Context, c *gitlab.Client, in store.Integration) ([]lifecycle.Action, error) {
	var rs lifecycle.RemoteState
	var err error
	if in.DefaultBranch == "" {
		return nil, nil
	}
	if rs.Branches, err = c.ListBranches(ctx, in.ProjectID); err != nil {
		return nil, err
	}
	envs, _, err := jobs.LifecycleEnvs(ctx, s.Store.Reader(), in.Name)
	if err != nil {
		return nil, err
	}
	// Options gate creation only: read what existing environments need.
	rs.MergeRequestsListed, rs.TagsListed = lifecycle.Listings(jobs.Options(in), envs)
	if rs.TagsListed {
		if rs.Tags, err = c.ListTags(ctx, in.ProjectID); err != nil {
			return nil, err
		}
	}
	if rs.MergeRequestsListed {
		mrs, err := c.ListOpenMergeRequests(ctx, in.ProjectID)
		if err != nil {
			return nil, err
		}
		rs.OpenMRs = MergeRequests(mrs)
	}
	return lifecycle.Reconcile(jobs.Options(in), rs, envs), nil
}

// MergeRequests converts GitLab's open merge requests for the lifecycle.
func MergeRequests(mrs []gitlab.MergeRequest) []lifecycle.MergeRequest {
	out := make([]lifecycle.MergeRequest, 0, len(mrs))
	for _, m := range mrs {
		out = append(out, lifecycle.MergeRequest{IID: m.IID, Action: "open", State: "opened", Title: m.Title,
			SourceBranch: m.SourceBranch, TargetBranch: m.TargetBranch, SourceProjectID: m.SourceProjectID,
			TargetProjectID: m.TargetProject, HeadSHA: m.SHA, Draft: m.Draft, UpdatedAt: m.UpdatedAt, URL: m.WebURL})
	}
	return out
}
