package gitlabapi

import (
	"encoding/json"
	"strings"
	"time"
)

// NullIfEmpty is a string field GitLab shows as null when it is empty.
func NullIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// EnvironmentBasic is API::Entities::EnvironmentBasic (review_apps answers,
// a deployment's environment).
type EnvironmentBasic struct {
	ID          int64   `json:"id"`
	Name        string  `json:"name"`
	Slug        string  `json:"slug"`
	ExternalURL *string `json:"external_url"`
	CreatedAt   string  `json:"created_at"`
	UpdatedAt   string  `json:"updated_at"`
}

// NewEnvironmentBasic shapes an environment; an empty external URL is null.
func NewEnvironmentBasic(id int64, name, slug, externalURL string, created, updated time.Time) EnvironmentBasic {
	return EnvironmentBasic{ID: id, Name: name, Slug: slug, ExternalURL: NullIfEmpty(externalURL),
		CreatedAt: FormatTime(created), UpdatedAt: FormatTime(updated)}
}

// Environment is API::Entities::Environment. Every endpoint but GET one
// shows it with the project (P, the server's project entity) and without
// last_deployment; GET one the other way round.
type Environment[P any] struct {
	EnvironmentBasic
	Tier                string          `json:"tier"`
	Project             *P              `json:"project,omitempty"`
	LastDeployment      json.RawMessage `json:"last_deployment,omitempty"`
	State               string          `json:"state"`
	AutoStopAt          *string         `json:"auto_stop_at"`
	ClusterAgent        any             `json:"cluster_agent"`
	KubernetesNamespace *string         `json:"kubernetes_namespace"`
	FluxResourcePath    *string         `json:"flux_resource_path"`
	Description         *string         `json:"description"`
	AutoStopSetting     string          `json:"auto_stop_setting"`
}

// Detail turns e into GET one's shape: no project, last_deployment as
// given (nil shows null).
func (e Environment[P]) Detail(lastDeployment json.RawMessage) Environment[P] {
	e.Project = nil
	e.LastDeployment = json.RawMessage("null")
	if lastDeployment != nil {
		e.LastDeployment = lastDeployment
	}
	return e
}

// Deployment is API::Entities::Deployment. An environment's
// last_deployment leaves out Environment.
type Deployment struct {
	ID          int64             `json:"id"`
	IID         int64             `json:"iid"`
	Ref         string            `json:"ref"`
	SHA         string            `json:"sha"`
	CreatedAt   string            `json:"created_at"`
	UpdatedAt   string            `json:"updated_at"`
	FinishedAt  *string           `json:"finished_at"`
	User        any               `json:"user"`
	Environment *EnvironmentBasic `json:"environment,omitempty"`
	Deployable  any               `json:"deployable"`
	Status      string            `json:"status"`
}

// BasicProject is the part of API::Entities::BasicProjectDetails that
// follows from a project's path and where it is served; the servers add
// what else they know, and the namespace, after it.
type BasicProject struct {
	ID                int64    `json:"id"`
	Description       *string  `json:"description"`
	Name              string   `json:"name"`
	NameWithNamespace string   `json:"name_with_namespace"`
	Path              string   `json:"path"`
	PathWithNamespace string   `json:"path_with_namespace"`
	CreatedAt         string   `json:"created_at"`
	DefaultBranch     *string  `json:"default_branch"`
	TagList           []string `json:"tag_list"`
	Topics            []string `json:"topics"`
	SSHURLToRepo      string   `json:"ssh_url_to_repo"`
	HTTPURLToRepo     string   `json:"http_url_to_repo"`
	WebURL            string   `json:"web_url"`
}

// NewBasicProject shapes the project at fullPath ("group/sub/app") served
// from web (the instance URL, no trailing slash); sshHost is the host of
// its SSH clone URL.
func NewBasicProject(id int64, fullPath, web, sshHost string, created time.Time, defaultBranch *string) BasicProject {
	name := fullPath[strings.LastIndex(fullPath, "/")+1:]
	return BasicProject{
		ID: id, Name: name, NameWithNamespace: strings.ReplaceAll(fullPath, "/", " / "), Path: name,
		PathWithNamespace: fullPath, CreatedAt: FormatTime(created), DefaultBranch: defaultBranch,
		TagList: []string{}, Topics: []string{}, SSHURLToRepo: "git@" + sshHost + ":" + fullPath + ".git",
		HTTPURLToRepo: web + "/" + fullPath + ".git", WebURL: web + "/" + fullPath,
	}
}

// Namespace is the part of API::Entities::NamespaceBasic that follows from
// a project's path: its parent group, or the user of a top-level project.
type Namespace struct {
	Name     string `json:"name"`
	Path     string `json:"path"`
	Kind     string `json:"kind"`
	FullPath string `json:"full_path"`
	WebURL   string `json:"web_url"`
}

// NamespaceOf is the namespace of the project at fullPath served from web.
func NamespaceOf(fullPath, web string) Namespace {
	ns := ""
	if i := strings.LastIndex(fullPath, "/"); i >= 0 {
		ns = fullPath[:i]
	}
	last := ns[strings.LastIndex(ns, "/")+1:]
	if ns == "" {
		return Namespace{Name: last, Path: last, Kind: "user", FullPath: ns, WebURL: web}
	}
	return Namespace{Name: last, Path: last, Kind: "group", FullPath: ns, WebURL: web + "/groups/" + ns}
}
