package integration

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/glenv/glenv/internal/gitlab"
	"github.com/glenv/glenv/internal/store"
)

// Update changes an integration's options, token or URLs (integration:update).
// The name and the project never change.
func (s *Service) Update(ctx context.Context, name string, x Input) (Result, error) {
	var res Result
	in, err := store.GetIntegration(ctx, s.Store.Reader(), name)
	if err != nil {
		return res, err
	}
	if x.Name != "" && x.Name != name {
		return res, fieldErr("name", "is immutable (it is part of the hook URL): create a new integration instead")
	}
	if x.GitLabProject != "" && x.GitLabProject != in.GitLabProject && x.GitLabProject != in.ProjectPath &&
		x.GitLabProject != fmt.Sprint(in.ProjectID) {
		return res, fieldErr("gitlab_project", "cannot change: an integration belongs to one project; add a new integration for %s", x.GitLabProject)
	}
	if x.Type != "" && x.Type != in.Type {
		return res, fieldErr("type", "cannot change from %s", in.Type)
	}
	if err := x.validateCommon(); err != nil {
		return res, err
	}
	if err := s.checkCeilings(x); err != nil {
		return res, err
	}
	seen := in.UpdatedAt
	if x.BaseURL != "" {
		if err := gitlab.ValidateBaseURL(x.BaseURL); err != nil {
			return res, fieldErr("base_url", "%s", strings.TrimPrefix(err.Error(), "base_url "))
		}
		newURL := strings.TrimRight(x.BaseURL, "/")
		// The stored token is a secret of the old URL: sending it to a new
		// one (even to check it, even in a dry run) would hand it to
		// whoever listens there. The caller proves they hold a token for
		// the new URL by giving it.
		if newURL != in.BaseURL && x.Token == "" {
			return res, fieldErr("token", "is required when base_url changes: glenv never sends the stored token to a new URL; pass --token with a token for %s", newURL)
		}
		in.BaseURL = newURL
	}
	if x.Token != "" {
		token := x.Token
		c, err := s.client(in.BaseURL, token)
		if err != nil {
			return res, err
		}
		info, warnings, err := s.checkToken(ctx, c)
		if err != nil {
			return res, err
		}
		res.Warnings = warnings
		in.TokenSealed = s.Box.Seal(token)
		in.TokenExpiresAt = ""
		if info.ExpiresAt != nil {
			in.TokenExpiresAt = info.ExpiresAt.Format("2006-01-02")
		}
	}
	applyOptions(&in, x)
	if x.DryRun {
		return Result{Integration: in, HookURL: s.HookURL(name), Warnings: res.Warnings}, nil
	}
	// Only if nobody wrote the row while GitLab was being asked: a stale
	// write would revert their change (a rotated token, say).
	if err := store.UpdateIntegrationIfUnchanged(ctx, s.Store.DB, &in, seen); err != nil {
		return res, err
	}
	s.changed(name)
	return Result{Integration: in, HookURL: s.HookURL(name), Warnings: nonNil(res.Warnings), Environments: []string{}, WouldDelete: []string{}}, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Delete removes the integration and the hook it installed; its environments
// are detached and kept (integration:delete). A GitLab that cannot be
// reached does not block the delete: the warning says what to remove by hand.
func (s *Service) Delete(ctx context.Context, name string) ([]string, error) {
	in, err := store.GetIntegration(ctx, s.Store.Reader(), name)
	if err != nil {
		return nil, err
	}
	var warnings []string
	if in.HookID != 0 {
		token, err := s.Box.Open(in.TokenSealed)
		if err == nil {
			var c *gitlab.Client
			if c, err = s.client(in.BaseURL, token); err == nil {
				err = c.DeleteHook(ctx, in.ProjectID, in.HookID)
			}
		}
		if err != nil {
			warnings = append(warnings, fmt.Sprintf("could not remove webhook %d from %s (%v): delete it in GitLab under Settings → Webhooks", in.HookID, in.ProjectPath, err))
		}
	}
	// Detaching the environments and deleting the row happen together or not at all.
	if err := s.Store.Tx(ctx, func(tx *sql.Tx) error { return store.DeleteIntegration(ctx, tx, in.ID) }); err != nil {
		return warnings, err
	}
	s.changed(name)
	s.Log.Info("integration deleted", "integration", name)
	return nonNil(warnings), nil
}

// Check is one line of integration:validate.
type Check struct {
	Name     string `json:"name"`
	OK       bool   `json:"ok"`
	Problem  string `json:"problem,omitempty"`
	Fix      string `json:"fix,omitempty"`
	Repaired bool   `json:"repaired,omitempty"`
}

// Validate re-checks the token, its scopes, expiry and role, and the hook
// (present, events, alert_status / disabled_until); it re-installs or
// re-enables the hook where it can (integration:validate).
func (s *Service) Validate(ctx context.Context, name string) ([]Check, error) {
	in, err := store.GetIntegration(ctx, s.Store.Reader(), name)
	if err != nil {
		return nil, err
	}
	token, err := s.Box.Open(in.TokenSealed)
	if err != nil {
		return nil, err
	}
	secretValue, err := s.Box.Open(in.WebhookSecretSealed)
	if err != nil {
		return nil, err
	}
	c, err := s.client(in.BaseURL, token)
	if err != nil {
		return nil, err
	}
	var checks []Check
	fail := func(n, problem, fix string) { checks = append(checks, Check{Name: n, Problem: problem, Fix: fix}) }
	info, warnings, err := s.checkToken(ctx, c)
	if err != nil {
		fail("token", err.Error(), "create a token with the api scope and run `glenv integration:update "+name+" --token …`")
		return checks, nil
	}
	if len(warnings) > 0 {
		fail("token expiry", warnings[0], "rotate the token before it expires")
	} else {
		checks = append(checks, Check{Name: "token", OK: true})
	}
	if _, err := c.GetProject(ctx, fmt.Sprint(in.ProjectID)); err != nil {
		fail("project", err.Error(), "check the project still exists and the token's user is a member")
		return checks, nil
	}
	checks = append(checks, Check{Name: "project", OK: true})
	roleWarn, err := s.checkRole(ctx, c, info, in.ProjectID)
	switch {
	case err != nil:
		fail("role", err.Error(), "give the token's user the Maintainer role")
	case len(roleWarn) > 0:
		fail("role", roleWarn[0], "give the token's user the Maintainer role on the project")
	default:
		checks = append(checks, Check{Name: "role", OK: true})
	}
	checks = append(checks, s.checkHook(ctx, c, &in, secretValue)...)
	return checks, nil
}

func (s *Service) checkHook(ctx context.Context, c *gitlab.Client, in *store.Integration, secretValue string) []Check {
	url := s.HookURL(in.Name)
	hook, err := c.FindHook(ctx, in.ProjectID, url)
	if err != nil {
		return []Check{{Name: "webhook", Problem: err.Error(), Fix: "give the token's user the Maintainer role so glenv can read the hooks"}}
	}
	var checks []Check
	if hook == nil || !hook.PushEvents || !hook.TagPushEvents || !hook.MergeRequestsEvents || hook.ID != in.HookID {
		problem := "no webhook at " + url
		if hook != nil {
			problem = "the webhook does not send push, tag push and merge request events"
		}
		h, err := c.EnsureHook(ctx, in.ProjectID, url, secretValue)
		if err != nil {
			return []Check{{Name: "webhook", Problem: problem + "; re-installing failed: " + err.Error(), Fix: "give the token's user the Maintainer role and run validate again"}}
		}
		in.HookID = h.ID
		// Only the hook id: the rest of in was read before the GitLab calls
		// and may be stale by now.
		if err := store.SetIntegrationHookID(ctx, s.Store.DB, in.ID, h.ID); err != nil {
			return []Check{{Name: "webhook", Problem: err.Error()}}
		}
		checks = append(checks, Check{Name: "webhook", Problem: problem, Fix: "re-installed", Repaired: true})
		hook = &h
	} else {
		checks = append(checks, Check{Name: "webhook", OK: true})
	}
	if hook.AlertStatus != "" && hook.AlertStatus != "executable" {
		problem := "GitLab has " + strings.ReplaceAll(hook.AlertStatus, "_", " ") + " the webhook after failed deliveries"
		if hook.DisabledUntil != nil {
			problem += " until " + hook.DisabledUntil.UTC().Format(time.RFC3339)
		}
		if err := c.TestHook(ctx, in.ProjectID, hook.ID); err != nil {
			checks = append(checks, Check{Name: "webhook status", Problem: problem + "; re-enabling failed: " + err.Error(),
				Fix: "check glenv is reachable at " + url + " from GitLab, then run validate again"})
		} else {
			checks = append(checks, Check{Name: "webhook status", Problem: problem, Fix: "re-enabled with a test delivery; missed events are repaired by the next reconcile", Repaired: true})
		}
	} else {
		checks = append(checks, Check{Name: "webhook status", OK: true})
	}
	return checks
}

// WebhookSecret returns an integration's id and webhook secret (for the receiver).
func (s *Service) WebhookSecret(ctx context.Context, name string) (int64, string, error) {
	in, err := store.GetIntegration(ctx, s.Store.Reader(), name)
	if err != nil {
		return 0, "", err
	}
	sec, err := s.Box.Open(in.WebhookSecretSealed)
	if err != nil {
		return 0, "", fmt.Errorf("integration %s: %w", name, err)
	}
	return in.ID, sec, nil
}

// RevealSecret opens the webhook secret of an integration (admins only).
func (s *Service) RevealSecret(ctx context.Context, name string) (string, error) {
	_, sec, err := s.WebhookSecret(ctx, name)
	return sec, err
}
