// Package integration adds, validates, updates and deletes GitLab
// integrations: it checks the token and project against GitLab before
// storing anything, installs exactly one webhook per integration, and plans
// the first environments. Everything it stores goes through internal/store;
// what happens to environments afterwards is internal/jobs' business.
package integration

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/glenv/glenv/internal/gitlab"
	"github.com/glenv/glenv/internal/slug"
	"github.com/glenv/glenv/internal/store"
)

// Input is what a caller asks for in integration:add or :update. Nil
// pointers mean "not given": the default on add, unchanged on update.
type Input struct {
	Name                         string   `json:"name,omitempty"`
	Type                         string   `json:"type,omitempty"`
	Token                        string   `json:"token,omitempty"`
	BaseURL                      string   `json:"base_url,omitempty"`
	GitLabProject                string   `json:"gitlab_project,omitempty"`
	UserFacingURL                *string  `json:"user_facing_url,omitempty"`
	Space                        *string  `json:"space,omitempty"`
	Labels                       []string `json:"labels,omitempty"`
	Description                  *string  `json:"description,omitempty"`
	FetchBranches                *bool    `json:"fetch_branches,omitempty"`
	PruneBranches                *bool    `json:"prune_branches,omitempty"`
	BuildMergeRequests           *bool    `json:"build_merge_requests,omitempty"`
	BuildDraftMergeRequests      *bool    `json:"build_draft_merge_requests,omitempty"`
	MergeRequestsCloneParentData *bool    `json:"merge_requests_clone_parent_data,omitempty"`
	BuildTags                    *string  `json:"build_tags,omitempty"`
	BuildForks                   *bool    `json:"build_forks,omitempty"`
	// EnvironmentAccess: public (default), signed-in or members (internal/auth).
	EnvironmentAccess *string `json:"environment_access,omitempty"`
	// PauseAfter is --pause-after: "4h", "2d" or "off".
	PauseAfter *string `json:"pause_after,omitempty"`
	// PrebuildBranches is --prebuild-branches (default off).
	PrebuildBranches *bool `json:"prebuild_branches,omitempty"`
	// Ceilings of the integration's environments' .glenv.yml limits, each
	// named after the serve flag it narrows; 0 (or "0") is the server's.
	EnvironmentMaxMemory            *string  `json:"environment_max_memory,omitempty"` // a size: "2G"
	EnvironmentMaxProcesses         *int     `json:"environment_max_processes,omitempty"`
	EnvironmentMaxCPU               *float64 `json:"environment_max_cpu,omitempty"`
	EnvironmentMaxDisk              *string  `json:"environment_max_disk,omitempty"` // a size: "10G"
	ServicesDatabaseConnectionLimit *int     `json:"services_database_connection_limit,omitempty"`
	// Confirm accepts the planned deletions of prune-branches (--yes).
	Confirm bool `json:"confirm,omitempty"`
	// DryRun validates and plans without writing anything or touching GitLab's hooks.
	DryRun bool `json:"dry_run,omitempty"`
}

// FieldError is a bad value: it names the field, the rule and the fix.
type FieldError struct {
	Field string `json:"field"`
	Rule  string `json:"rule"`
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Rule }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Rule: fmt.Sprintf(format, args...)}
}

var (
	projectPathRE = regexp.MustCompile(`^[A-Za-z0-9_.][A-Za-z0-9_.-]*(/[A-Za-z0-9_.][A-Za-z0-9_.-]*)+$`)
	spaceRE       = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,34}[a-z0-9])?$`)
)

// ErrConfirm means prune-branches would delete environments and the caller
// has not confirmed (pass --yes).
var ErrConfirm = errors.New("prune-branches would delete environments: confirm with --yes")

// validateAdd checks every field given to integration:add.
func (in *Input) validateAdd() error {
	if in.Type == "" {
		in.Type = "gitlab"
	}
	if in.Type != "gitlab" {
		return fieldErr("type", "%q is not supported: the only integration type is gitlab (--type=gitlab)", in.Type)
	}
	if strings.TrimSpace(in.Token) == "" {
		return fieldErr("token", "is required: pass a GitLab access token with the api scope (--token)")
	}
	if in.BaseURL == "" {
		in.BaseURL = "https://gitlab.com"
	}
	if err := gitlab.ValidateBaseURL(in.BaseURL); err != nil {
		return fieldErr("base_url", "%s", strings.TrimPrefix(err.Error(), "base_url "))
	}
	in.BaseURL = strings.TrimRight(in.BaseURL, "/")
	if err := validateProject(in.GitLabProject); err != nil {
		return err
	}
	if in.Name == "" {
		in.Name = DefaultName(in.GitLabProject)
	}
	if err := slug.ValidIntegrationName(in.Name); err != nil {
		return &FieldError{Field: "name", Rule: strings.TrimPrefix(err.Error(), "name ")}
	}
	return in.validateCommon()
}

// validateCommon checks the fields add and update share.
func (in *Input) validateCommon() error {
	if strings.ContainsAny(in.Token, " \t\r\n") {
		return fieldErr("token", "must not contain white space: copy the token exactly")
	}
	if in.UserFacingURL != nil && *in.UserFacingURL != "" {
		u, err := url.Parse(*in.UserFacingURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fieldErr("user_facing_url", "%q must be an absolute http(s) URL people can open, e.g. https://gitlab.example.com", *in.UserFacingURL)
		}
	}
	if a := in.EnvironmentAccess; a != nil && *a != "public" && *a != "signed-in" && *a != "members" {
		return fieldErr("environment_access", "%q must be public, signed-in (anyone who signed in to glenv) or members (Reporter or above on the GitLab project)", *a)
	}
	if in.Space != nil && !spaceRE.MatchString(*in.Space) {
		return fieldErr("space", "%q must be 1–36 characters of a-z, 0-9 and '-' (default: root)", *in.Space)
	}
	if len(in.Labels) > 50 {
		return fieldErr("labels", "at most 50 labels; drop %d", len(in.Labels)-50)
	}
	for _, l := range in.Labels {
		if l == "" || len(l) > 100 || strings.TrimSpace(l) != l || strings.ContainsFunc(l, notPrintable) || strings.Contains(l, ",") {
			return fieldErr("labels", "label %q must be 1–100 printable characters without commas or surrounding spaces, e.g. team:web", l)
		}
	}
	if in.Description != nil && len(*in.Description) > 10000 {
		return fieldErr("description", "is %d characters; at most 10,000", len(*in.Description))
	}
	if in.Description != nil && strings.ContainsFunc(*in.Description, func(r rune) bool { return r != '\n' && r != '\t' && notPrintable(r) }) {
		return fieldErr("description", "must be printable markdown: newlines and tabs are fine, escape sequences and other control characters are not")
	}
	if in.BuildTags != nil && *in.BuildTags != "" {
		if len(*in.BuildTags) > 255 {
			return fieldErr("build_tags", "at most 255 characters")
		}
		if _, err := path.Match(*in.BuildTags, ""); err != nil {
			return fieldErr("build_tags", "%q is not a valid glob (use *, ? and [a-z], e.g. v*): %v", *in.BuildTags, err)
		}
	}
	if in.PauseAfter != nil {
		if _, err := store.ParsePauseAfter(*in.PauseAfter); err != nil {
			return fieldErr("pause_after", "%s", strings.TrimPrefix(err.Error(), "pause_after "))
		}
	}
	return nil
}

// notPrintable: control and format characters (newlines, escapes, bidi
// overrides) would forge rows where names and labels are shown.
func notPrintable(r rune) bool {
	return unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp)
}

// Printable reports whether a name glenv owns (a label, a token name) can be
// shown in a table or a log line as it is: valid UTF-8 without control or
// format characters.
func Printable(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsFunc(s, notPrintable)
}

func validateProject(p string) error {
	if p == "" {
		return fieldErr("gitlab_project", "is required: pass the project's path (group/project) or numeric id (--gitlab-project)")
	}
	if n, err := strconv.ParseInt(p, 10, 64); err == nil {
		if n <= 0 {
			return fieldErr("gitlab_project", "id %d must be positive", n)
		}
		return nil
	}
	if !projectPathRE.MatchString(strings.Trim(p, "/")) || strings.Contains(p, "//") || strings.HasSuffix(p, ".git") {
		return fieldErr("gitlab_project", "%q must be a path like group/project (subgroups allowed, no .git) or a numeric id", p)
	}
	return nil
}

// DefaultName derives an integration name from a project path: its last
// segment, lower-cased, reduced to a-z, 0-9 and '-'.
func DefaultName(project string) string {
	p := strings.Trim(project, "/")
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		p = p[i+1:]
	}
	if _, err := strconv.ParseInt(p, 10, 64); err == nil {
		return "project-" + p
	}
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(p) {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9'
		if ok {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	s := b.String()
	if len(s) > 36 {
		s = s[:36]
	}
	return strings.Trim(s, "-")
}
