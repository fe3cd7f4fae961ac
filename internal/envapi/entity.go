package envapi

import (
	"encoding/json"
	"net/url"
	"strings"
	"time"

	"github.com/glenv/glenv/internal/store"
)

// timeLayout is how GitLab's API renders timestamps.
const timeLayout = "2006-01-02T15:04:05.000Z"

func apiTime(t time.Time) string { return t.UTC().Format(timeLayout) }

func nullIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// envBasicJSON is API::Entities::EnvironmentBasic (review_apps answers).
type envBasicJSON struct {
	ID          int64   `json:"id"`
	Name        string  `json:"name"`
	Slug        string  `json:"slug"`
	ExternalURL *string `json:"external_url"`
	CreatedAt   string  `json:"created_at"`
	UpdatedAt   string  `json:"updated_at"`
}

// envJSON is API::Entities::Environment. Every endpoint but GET one shows
// it with the project and without last_deployment; GET one the other way round.
type envJSON struct {
	envBasicJSON
	Tier                string          `json:"tier"`
	Project             *projectJSON    `json:"project,omitempty"`
	LastDeployment      json.RawMessage `json:"last_deployment,omitempty"`
	State               string          `json:"state"`
	AutoStopAt          *string         `json:"auto_stop_at"`
	ClusterAgent        any             `json:"cluster_agent"`
	KubernetesNamespace *string         `json:"kubernetes_namespace"`
	FluxResourcePath    *string         `json:"flux_resource_path"`
	Description         *string         `json:"description"`
	AutoStopSetting     string          `json:"auto_stop_setting"`
}

// basic is the environment as GitLab's clients see it. An environment with
// no external_url of its own links to where glenv serves it.
func (h *handler) basic(e store.Environment) envBasicJSON {
	ext := e.ExternalURL
	if ext == "" && h.envURL != nil {
		ext = h.envURL(e)
	}
	return envBasicJSON{ID: e.ID, Name: e.Name, Slug: e.Slug, ExternalURL: nullIfEmpty(ext),
		CreatedAt: apiTime(e.CreatedAt), UpdatedAt: apiTime(e.UpdatedAt)}
}

func (h *handler) entity(p *project, e store.Environment) envJSON {
	return envJSON{envBasicJSON: h.basic(e), Tier: e.Tier, Project: p.json(), State: store.GitLabState(e.State),
		Description: nullIfEmpty(e.Description), AutoStopSetting: "always"}
}

// deploymentJSON is API::Entities::Deployment without its environment, as
// last_deployment embeds it. glenv's deploys are activities: the activity id
// serves as both id and iid, and no user or CI job is behind them.
type deploymentJSON struct {
	ID         int64   `json:"id"`
	IID        int64   `json:"iid"`
	Ref        string  `json:"ref"`
	SHA        string  `json:"sha"`
	CreatedAt  string  `json:"created_at"`
	UpdatedAt  string  `json:"updated_at"`
	FinishedAt *string `json:"finished_at"`
	User       any     `json:"user"`
	Deployable any     `json:"deployable"`
	Status     string  `json:"status"`
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

func deployment(e store.Environment, a store.Activity) deploymentJSON {
	updated := a.CreatedAt
	for _, t := range []time.Time{a.StartedAt, a.CompletedAt} {
		if t.After(updated) {
			updated = t
		}
	}
	var finished *string
	if !a.CompletedAt.IsZero() {
		s := apiTime(a.CompletedAt)
		finished = &s
	}
	return deploymentJSON{ID: a.ID, IID: a.ID, Ref: e.Ref, SHA: a.SHA, CreatedAt: apiTime(a.CreatedAt),
		UpdatedAt: apiTime(updated), FinishedAt: finished, Status: deploymentStatus(a.State)}
}

// projectJSON is the part of API::Entities::BasicProjectDetails that glenv
// knows from the integration; GitLab-only facts (stars, forks, avatar,
// namespace ids) are left out rather than invented.
type projectJSON struct {
	ID                int64         `json:"id"`
	Description       *string       `json:"description"`
	Name              string        `json:"name"`
	NameWithNamespace string        `json:"name_with_namespace"`
	Path              string        `json:"path"`
	PathWithNamespace string        `json:"path_with_namespace"`
	CreatedAt         string        `json:"created_at"`
	DefaultBranch     *string       `json:"default_branch"`
	TagList           []string      `json:"tag_list"`
	Topics            []string      `json:"topics"`
	SSHURLToRepo      string        `json:"ssh_url_to_repo"`
	HTTPURLToRepo     string        `json:"http_url_to_repo"`
	WebURL            string        `json:"web_url"`
	Namespace         namespaceJSON `json:"namespace"`
}

type namespaceJSON struct {
	Name     string `json:"name"`
	Path     string `json:"path"`
	Kind     string `json:"kind"`
	FullPath string `json:"full_path"`
	WebURL   string `json:"web_url"`
}

func (p *project) json() *projectJSON {
	if p.entity == nil {
		p.entity = newProjectJSON(p.integrations[0])
	}
	return p.entity
}

func newProjectJSON(in store.Integration) *projectJSON {
	full := in.ProjectPath
	name := full[strings.LastIndex(full, "/")+1:]
	ns := ""
	if i := strings.LastIndex(full, "/"); i >= 0 {
		ns = full[:i]
	}
	web := strings.TrimSuffix(in.UserFacingURL, "/")
	host := web
	if u, err := url.Parse(web); err == nil && u.Host != "" {
		host = u.Hostname()
	}
	kind, nsWeb := "group", web+"/groups/"+ns
	if ns == "" {
		kind, nsWeb = "user", web
	}
	return &projectJSON{
		ID: in.ProjectID, Name: name, NameWithNamespace: strings.ReplaceAll(full, "/", " / "), Path: name,
		PathWithNamespace: full, CreatedAt: apiTime(in.CreatedAt), DefaultBranch: nullIfEmpty(in.DefaultBranch),
		TagList: []string{}, Topics: []string{}, SSHURLToRepo: "git@" + host + ":" + full + ".git",
		HTTPURLToRepo: web + "/" + full + ".git", WebURL: web + "/" + full,
		Namespace: namespaceJSON{Name: ns[strings.LastIndex(ns, "/")+1:], Path: ns[strings.LastIndex(ns, "/")+1:],
			Kind: kind, FullPath: ns, WebURL: nsWeb},
	}
}
