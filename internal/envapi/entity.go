package envapi

import (
	"net/url"
	"strings"
	"time"

	"github.com/glenv/glenv/internal/gitlabapi"
	"github.com/glenv/glenv/internal/store"
)

// envJSON is API::Entities::Environment with glenv's project entity.
type envJSON = gitlabapi.Environment[projectJSON]

// basic is the environment as GitLab's clients see it. An environment with
// no external_url of its own links to where glenv serves it.
func (h *handler) basic(e store.Environment) gitlabapi.EnvironmentBasic {
	ext := e.ExternalURL
	if ext == "" && h.envURL != nil {
		ext = h.envURL(e)
	}
	return gitlabapi.NewEnvironmentBasic(e.ID, e.Name, e.Slug, ext, e.CreatedAt, e.UpdatedAt)
}

func (h *handler) entity(p *project, e store.Environment) envJSON {
	return envJSON{EnvironmentBasic: h.basic(e), Tier: e.Tier, Project: p.json(), State: store.GitLabState(e.State),
		Description: gitlabapi.NullIfEmpty(e.Description), AutoStopSetting: "always"}
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
// id serves as both id and iid, and no user or CI job is behind them.
func deployment(e store.Environment, a store.Activity) gitlabapi.Deployment {
	updated := a.CreatedAt
	for _, t := range []time.Time{a.StartedAt, a.CompletedAt} {
		if t.After(updated) {
			updated = t
		}
	}
	return gitlabapi.Deployment{ID: a.ID, IID: a.ID, Ref: e.Ref, SHA: a.SHA, CreatedAt: gitlabapi.FormatTime(a.CreatedAt),
		UpdatedAt: gitlabapi.FormatTime(updated), FinishedAt: gitlabapi.FormatTimeSet(a.CompletedAt),
		Status: deploymentStatus(a.State)}
}

// projectJSON is the part of API::Entities::BasicProjectDetails that glenv
// knows from the integration; GitLab-only facts (stars, forks, avatar,
// namespace ids) are left out rather than invented.
type projectJSON struct {
	gitlabapi.BasicProject
	Namespace gitlabapi.Namespace `json:"namespace"`
}

func (p *project) json() *projectJSON {
	if p.entity == nil {
		p.entity = newProjectJSON(p.integrations[0])
	}
	return p.entity
}

func newProjectJSON(in store.Integration) *projectJSON {
	web := strings.TrimSuffix(in.UserFacingURL, "/")
	host := web
	if u, err := url.Parse(web); err == nil && u.Host != "" {
		host = u.Hostname()
	}
	return &projectJSON{
		BasicProject: gitlabapi.NewBasicProject(in.ProjectID, in.ProjectPath, web, host, in.CreatedAt,
			gitlabapi.NullIfEmpty(in.DefaultBranch)),
		Namespace: gitlabapi.NamespaceOf(in.ProjectPath, web),
	}
}
