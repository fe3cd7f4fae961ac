package envapi

import (
	"net/url"
	"strings"
	"time"

	"github.com/glenv/glenv/internal/gitlabapi"
	"github.com/glenv/glenv/internal/store"
)

// envJSON is API::Entities::Environment with GitLab's BasicProjectDetails.
type envJSON = gitlabapi.Environment[gitlabapi.BasicProjectDetails]

// basic is the environment as GitLab's clients see it. external_url is the
// one set through this API, or null (nullify_if_blank): glenv's own URL for
// the environment is in /api/v1 and in the GitLab environment glenv's
// feedback writes, never in place of the user's value.
func (h *handler) basic(e store.Environment) gitlabapi.EnvironmentBasic {
	return gitlabapi.NewEnvironmentBasic(e.ID, e.Name, e.Slug, e.ExternalURL, e.CreatedAt, e.UpdatedAt)
}

func (h *handler) entity(p *project, e store.Environment, a store.EnvAPIAttrs) envJSON {
	setting := a.AutoStopSetting
	if setting == "" {
		setting = store.DefaultAutoStopSetting
	}
	return envJSON{EnvironmentBasic: h.basic(e), Tier: e.Tier, Project: p.json(), State: store.GitLabState(e.State),
		Description: gitlabapi.NullIfBlank(e.Description), AutoStopSetting: setting}
}

// deploymentStatus maps an activity state onto GitLab's deployment status.
func deploymentStatus(state string) string {
	switch state {
	case store.ActivityPending:
		return "created"
	case store.ActivityRunning:
		return "running"
	case store.ActivityComplete:
		return "success"
	case store.ActivityFailed:
		return "failed"
	default:
		return "canceled"
	}
}

// deployment is API::Entities::Deployment without its environment, as
// last_deployment embeds it. glenv's deploys are activities: the activity
// id serves as both id and iid, and no CI job is behind them (deployable
// null). GitLab always names a deployment's user; glenv's deploys are made
// by glenv itself, so its service user stands there.
func deployment(e store.Environment, a store.Activity, by *gitlabapi.UserBasic) gitlabapi.Deployment {
	updated := a.CreatedAt
	for _, t := range []time.Time{a.StartedAt, a.CompletedAt} {
		if t.After(updated) {
			updated = t
		}
	}
	return gitlabapi.Deployment{ID: a.ID, IID: a.ID, Ref: e.Ref, SHA: a.SHA, CreatedAt: gitlabapi.FormatTime(a.CreatedAt),
		UpdatedAt: gitlabapi.FormatTime(updated), User: by, Status: deploymentStatus(a.State)}
}

// serviceUser is the user glenv's own deploys are made by, at base (the
// glenv instance the caller reached).
func serviceUser(base string) *gitlabapi.UserBasic {
	return &gitlabapi.UserBasic{ID: 0, Username: "glenv", Name: "glenv", State: "active", WebURL: base + "/"}
}

func (p *project) json() *gitlabapi.BasicProjectDetails {
	if p.entity == nil {
		p.entity = newProjectJSON(p.integrations[0])
	}
	return p.entity
}

// newProjectJSON is BasicProjectDetails from what the integration knows.
// default_branch is GitLab's default_branch_or_main. Facts only GitLab has
// (stars, forks, avatars, the namespace's ids) keep their empty values
// (0, null) rather than invented ones; last_activity_at is the last time
// glenv changed the integration.
func newProjectJSON(in store.Integration) *gitlabapi.BasicProjectDetails {
	web := strings.TrimSuffix(in.UserFacingURL, "/")
	host := web
	if u, err := url.Parse(web); err == nil && u.Host != "" {
		host = u.Hostname()
	}
	def := in.DefaultBranch
	if def == "" {
		def = "main"
	}
	p := gitlabapi.NewBasicProject(in.ProjectID, in.ProjectPath, web, host, in.CreatedAt, &def)
	if !in.UpdatedAt.IsZero() {
		p.LastActivityAt = gitlabapi.FormatTime(in.UpdatedAt)
	}
	return &p
}
