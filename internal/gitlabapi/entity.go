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

// NullIfBlank is Environment's nullify_if_blank (app/models/environment.rb:
// `nullify_if_blank :external_url, :kubernetes_namespace,
// :flux_resource_path, :description`): a value of only white space is
// stored as nil and shown as null.
func NullIfBlank(s string) *string {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	return &s
}

// EnvironmentBasic is API::Entities::EnvironmentBasic
// (lib/api/entities/environment_basic.rb: id, name, slug, external_url,
// created_at, updated_at), shown in review_apps answers and a deployment's
// environment.
type EnvironmentBasic struct {
	ID          int64   `json:"id"`
	Name        string  `json:"name"`
	Slug        string  `json:"slug"`
	ExternalURL *string `json:"external_url"`
	CreatedAt   string  `json:"created_at"`
	UpdatedAt   string  `json:"updated_at"`
}

// NewEnvironmentBasic shapes an environment; a blank external URL is null.
func NewEnvironmentBasic(id int64, name, slug, externalURL string, created, updated time.Time) EnvironmentBasic {
	return EnvironmentBasic{ID: id, Name: name, Slug: slug, ExternalURL: NullIfBlank(externalURL),
		CreatedAt: FormatTime(created), UpdatedAt: FormatTime(updated)}
}

// Environment is API::Entities::Environment (lib/api/entities/environment.rb
// lines 8-17). Every endpoint but GET one shows it with the project (P, the
// server's project entity) and without last_deployment; GET one the other
// way round (lib/api/environments.rb:279-281). cluster_agent,
// kubernetes_namespace and flux_resource_path are exposed only
// `if can_read_cluster_agent?`, which is false without an agent
// (environment.rb:21-22): neither server has agents, so the keys are absent,
// not null.
type Environment[P any] struct {
	EnvironmentBasic
	Tier                string          `json:"tier"`
	Project             *P              `json:"project,omitempty"`
	LastDeployment      json.RawMessage `json:"last_deployment,omitempty"`
	State               string          `json:"state"`
	AutoStopAt          *string         `json:"auto_stop_at"`
	ClusterAgent        any             `json:"cluster_agent,omitempty"`
	KubernetesNamespace *string         `json:"kubernetes_namespace,omitempty"`
	FluxResourcePath    *string         `json:"flux_resource_path,omitempty"`
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

// Deployment is API::Entities::Deployment (lib/api/entities/deployment.rb
// lines 6-15: id, iid, ref, sha, created_at, updated_at, user, environment,
// deployable, status), and nothing more. An environment's last_deployment
// leaves out Environment (lib/api/environments.rb:280).
type Deployment struct {
	ID          int64             `json:"id"`
	IID         int64             `json:"iid"`
	Ref         string            `json:"ref"`
	SHA         string            `json:"sha"`
	CreatedAt   string            `json:"created_at"`
	UpdatedAt   string            `json:"updated_at"`
	User        *UserBasic        `json:"user"`
	Environment *EnvironmentBasic `json:"environment,omitempty"`
	Deployable  any               `json:"deployable"`
	Status      string            `json:"status"`
}

// UserBasic is API::Entities::UserBasic (lib/api/entities/user_basic.rb:
// UserSafe's id, username, name, then state, locked, avatar_url, web_url).
type UserBasic struct {
	ID        int64   `json:"id"`
	Username  string  `json:"username"`
	Name      string  `json:"name"`
	State     string  `json:"state"`
	Locked    bool    `json:"locked"`
	AvatarURL *string `json:"avatar_url"`
	WebURL    string  `json:"web_url"`
}

// BasicProjectDetails is API::Entities::BasicProjectDetails
// (lib/api/entities/basic_project_details.rb) as a caller with read_code
// sees it, in GitLab's key order: ProjectIdentity's id, description, name,
// name_with_namespace, path, path_with_namespace, created_at
// (lib/api/entities/project_identity.rb), then default_branch (GitLab's
// default_branch_or_main), tag_list, topics, ssh_url_to_repo,
// http_url_to_repo, web_url, readme_url, forks_count, avatar_url,
// star_count, last_activity_at and the namespace. license, custom_attributes
// and repository_storage appear only on request or for admins, so not here.
type BasicProjectDetails struct {
	ID                int64          `json:"id"`
	Description       *string        `json:"description"`
	Name              string         `json:"name"`
	NameWithNamespace string         `json:"name_with_namespace"`
	Path              string         `json:"path"`
	PathWithNamespace string         `json:"path_with_namespace"`
	CreatedAt         string         `json:"created_at"`
	DefaultBranch     *string        `json:"default_branch"`
	TagList           []string       `json:"tag_list"`
	Topics            []string       `json:"topics"`
	SSHURLToRepo      string         `json:"ssh_url_to_repo"`
	HTTPURLToRepo     string         `json:"http_url_to_repo"`
	WebURL            string         `json:"web_url"`
	ReadmeURL         *string        `json:"readme_url"`
	ForksCount        int            `json:"forks_count"`
	AvatarURL         *string        `json:"avatar_url"`
	StarCount         int            `json:"star_count"`
	LastActivityAt    string         `json:"last_activity_at"`
	Namespace         NamespaceBasic `json:"namespace"`
}

// NewBasicProject shapes the project at fullPath ("group/sub/app") served
// from web (the instance URL, no trailing slash); sshHost is the host of
// its SSH clone URL. Facts only GitLab knows (counts, avatars, the
// namespace's ids) start at their empty values; callers that know them set
// them.
func NewBasicProject(id int64, fullPath, web, sshHost string, created time.Time, defaultBranch *string) BasicProjectDetails {
	name := fullPath[strings.LastIndex(fullPath, "/")+1:]
	return BasicProjectDetails{
		ID: id, Name: name, NameWithNamespace: strings.ReplaceAll(fullPath, "/", " / "), Path: name,
		PathWithNamespace: fullPath, CreatedAt: FormatTime(created), DefaultBranch: defaultBranch,
		TagList: []string{}, Topics: []string{}, SSHURLToRepo: "git@" + sshHost + ":" + fullPath + ".git",
		HTTPURLToRepo: web + "/" + fullPath + ".git", WebURL: web + "/" + fullPath,
		LastActivityAt: FormatTime(created), Namespace: NamespaceOf(fullPath, web),
	}
}

// NamespaceBasic is API::Entities::NamespaceBasic
// (lib/api/entities/namespace_basic.rb: id, name, path, kind, full_path,
// parent_id, avatar_url, web_url). ID is null where the server does not
// know GitLab's id.
type NamespaceBasic struct {
	ID        *int64  `json:"id"`
	Name      string  `json:"name"`
	Path      string  `json:"path"`
	Kind      string  `json:"kind"`
	FullPath  string  `json:"full_path"`
	ParentID  *int64  `json:"parent_id"`
	AvatarURL *string `json:"avatar_url"`
	WebURL    string  `json:"web_url"`
}

// NamespaceOf is the namespace of the project at fullPath served from web:
// its parent group, or the user of a top-level project.
func NamespaceOf(fullPath, web string) NamespaceBasic {
	ns := ""
	if i := strings.LastIndex(fullPath, "/"); i >= 0 {
		ns = fullPath[:i]
	}
	last := ns[strings.LastIndex(ns, "/")+1:]
	if ns == "" {
		return NamespaceBasic{Name: last, Path: last, Kind: "user", FullPath: ns, WebURL: web}
	}
	return NamespaceBasic{Name: last, Path: last, Kind: "group", FullPath: ns, WebURL: web + "/groups/" + ns}
}
