package gitlabtest

import (
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/glenv/glenv/internal/gitlabapi"
)

// Hook is a project webhook. Token is the secret GitLab never returns.
type Hook struct {
	ID                        int64
	ProjectID                 int64
	URL                       string
	Name                      string
	Description               string
	Token                     string
	PushEvents                bool
	PushEventsBranchFilter    string
	BranchFilterStrategy      string // wildcard, regex or all_branches
	TagPushEvents             bool
	MergeRequestsEvents       bool
	IssuesEvents              bool
	ConfidentialIssuesEvents  bool
	NoteEvents                bool
	ConfidentialNoteEvents    bool
	JobEvents                 bool
	PipelineEvents            bool
	WikiPageEvents            bool
	DeploymentEvents          bool
	FeatureFlagEvents         bool
	ReleasesEvents            bool
	MilestoneEvents           bool
	EmojiEvents               bool
	ResourceAccessTokenEvents bool
	VulnerabilityEvents       bool
	EnableSSLVerification     bool
	CustomWebhookTemplate     string
	AlertStatus               string // executable, temporarily_disabled or disabled
	DisabledUntil             *time.Time
	CreatedAt                 time.Time
}

// maxHooks is the plan limit on project hooks (GitLab.com: 100).
const maxHooks = 100

// hookFlags are the boolean hook attributes, in the order of
// project_hook_properties.
var hookFlags = []struct {
	key   string
	field func(*Hook) *bool
}{
	{"push_events", func(h *Hook) *bool { return &h.PushEvents }},
	{"issues_events", func(h *Hook) *bool { return &h.IssuesEvents }},
	{"confidential_issues_events", func(h *Hook) *bool { return &h.ConfidentialIssuesEvents }},
	{"merge_requests_events", func(h *Hook) *bool { return &h.MergeRequestsEvents }},
	{"tag_push_events", func(h *Hook) *bool { return &h.TagPushEvents }},
	{"note_events", func(h *Hook) *bool { return &h.NoteEvents }},
	{"confidential_note_events", func(h *Hook) *bool { return &h.ConfidentialNoteEvents }},
	{"job_events", func(h *Hook) *bool { return &h.JobEvents }},
	{"pipeline_events", func(h *Hook) *bool { return &h.PipelineEvents }},
	{"wiki_page_events", func(h *Hook) *bool { return &h.WikiPageEvents }},
	{"deployment_events", func(h *Hook) *bool { return &h.DeploymentEvents }},
	{"feature_flag_events", func(h *Hook) *bool { return &h.FeatureFlagEvents }},
	{"releases_events", func(h *Hook) *bool { return &h.ReleasesEvents }},
	{"milestone_events", func(h *Hook) *bool { return &h.MilestoneEvents }},
	{"emoji_events", func(h *Hook) *bool { return &h.EmojiEvents }},
	{"resource_access_token_events", func(h *Hook) *bool { return &h.ResourceAccessTokenEvents }},
	{"vulnerability_events", func(h *Hook) *bool { return &h.VulnerabilityEvents }},
	{"enable_ssl_verification", func(h *Hook) *bool { return &h.EnableSSLVerification }},
}

// hookStrings are the string hook attributes besides url.
var hookStrings = []struct {
	key   string
	field func(*Hook) *string
}{
	{"name", func(h *Hook) *string { return &h.Name }},
	{"description", func(h *Hook) *string { return &h.Description }},
	{"token", func(h *Hook) *string { return &h.Token }},
	{"push_events_branch_filter", func(h *Hook) *string { return &h.PushEventsBranchFilter }},
	{"custom_webhook_template", func(h *Hook) *string { return &h.CustomWebhookTemplate }},
}

// hookTriggers are the values POST …/hooks/:hook_id/test/:trigger accepts.
var hookTriggers = []string{
	"push_events", "tag_push_events", "issues_events", "confidential_issues_events", "note_events",
	"confidential_note_events", "merge_requests_events", "job_events", "pipeline_events",
	"wiki_page_events", "deployment_events", "feature_flag_events", "releases_events",
	"milestone_events", "emoji_events", "resource_access_token_events", "resource_deploy_token_events",
	"vulnerability_events",
}

// Hooks returns a snapshot of a project's hooks, secrets included.
func (s *Server) Hooks(projectID int64) []Hook {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []Hook{}
	for _, h := range s.mustProject(projectID).hooks {
		out = append(out, *h)
	}
	return out
}

// SetHookAlert sets a hook's auto-disabling state, as GitLab does after
// failed deliveries.
func (s *Server) SetHookAlert(projectID, hookID int64, status string, disabledUntil *time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, h := range s.mustProject(projectID).hooks {
		if h.ID == hookID {
			h.AlertStatus, h.DisabledUntil = status, nil
			if disabledUntil != nil {
				until := disabledUntil.UTC().Truncate(time.Millisecond)
				h.DisabledUntil = &until
			}
			return
		}
	}
	panic("gitlabtest: unknown hook " + itoa(hookID))
}

// hookEntity is API::Entities::ProjectHook; the token is write-only.
func hookEntity(h *Hook) map[string]any {
	m := map[string]any{
		"id":                        h.ID,
		"url":                       h.URL,
		"name":                      h.Name,
		"description":               h.Description,
		"project_id":                h.ProjectID,
		"created_at":                gitlabapi.FormatTime(h.CreatedAt),
		"push_events_branch_filter": gitlabapi.NullIfEmpty(h.PushEventsBranchFilter),
		"branch_filter_strategy":    h.BranchFilterStrategy,
		"custom_webhook_template":   gitlabapi.NullIfEmpty(h.CustomWebhookTemplate),
		"custom_headers":            []any{},
		"url_variables":             []any{},
		"repository_update_events":  false,
		"alert_status":              h.AlertStatus,
		"disabled_until":            gitlabapi.FormatTimePtr(h.DisabledUntil),
		"token_present":             h.Token != "",
	}
	for _, f := range hookFlags {
		m[f.key] = *f.field(h)
	}
	return m
}

// hookURLValid is the web hook URL validation: an absolute http(s) URL.
func hookURLValid(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// hookAttrs validates and collects the hook_properties of a create or edit;
// set applies them to a hook. It reports whether any attribute was sent.
func hookAttrs(rq *request, urlRequired bool) (set func(*Hook), sent, ok bool) {
	g := rq.p.Grape()
	var applies []func(*Hook)
	if urlRequired {
		v, _ := g.RequireString("url")
		applies = append(applies, func(h *Hook) { h.URL = v })
	} else if v, has := g.OptString("url"); has {
		applies = append(applies, func(h *Hook) { h.URL = v })
	}
	for _, f := range hookStrings {
		if v, has := g.OptString(f.key); has {
			applies = append(applies, func(h *Hook) { *f.field(h) = v })
		}
	}
	strategy, hasStrategy := g.OptString("branch_filter_strategy")
	g.Values("branch_filter_strategy", strategy, hasStrategy, "wildcard", "regex", "all_branches")
	if hasStrategy {
		applies = append(applies, func(h *Hook) { h.BranchFilterStrategy = strategy })
	}
	for _, f := range hookFlags {
		if v, has := g.OptBool(f.key); has {
			applies = append(applies, func(h *Hook) { *f.field(h) = v })
		}
	}
	if !g.OK(rq.w) {
		return nil, false, false
	}
	return func(h *Hook) {
		for _, a := range applies {
			a(h)
		}
	}, len(applies) > 0, true
}

// findHook is find_hook: a miss is a plain ActiveRecord 404.
func (rq *request) findHook(p *project) (*Hook, bool) {
	id, ok := rq.pathInt("hook_id")
	if !ok {
		return nil, false
	}
	for _, h := range p.hooks {
		if h.ID == id {
			return h, true
		}
	}
	gitlabapi.RecordNotFound(rq.w)
	return nil, false
}

func (s *Server) listHooks(rq *request) {
	p, ok := rq.project(accessMaintainer)
	if !ok {
		return
	}
	page, ok := paginate(rq, p.hooks)
	if !ok {
		return
	}
	out := make([]map[string]any, 0, len(page))
	for _, h := range page {
		out = append(out, hookEntity(h))
	}
	gitlabapi.WriteJSON(rq.w, http.StatusOK, out)
}

func (s *Server) getHook(rq *request) {
	p, ok := rq.project(accessMaintainer)
	if !ok {
		return
	}
	if h, ok := rq.findHook(p); ok {
		gitlabapi.WriteJSON(rq.w, http.StatusOK, hookEntity(h))
	}
}

func (s *Server) createHook(rq *request) {
	p, ok := rq.project(accessMaintainer)
	if !ok {
		return
	}
	set, _, ok := hookAttrs(rq, true)
	if !ok {
		return
	}
	h := &Hook{
		ProjectID: p.ID, PushEvents: true, EnableSSLVerification: true,
		BranchFilterStrategy: "wildcard", AlertStatus: "executable", CreatedAt: s.now(),
	}
	set(h)
	if !hookURLValid(h.URL) {
		gitlabapi.WriteJSON(rq.w, http.StatusUnprocessableEntity, map[string]string{"error": "Invalid url given"})
		return
	}
	if len(p.hooks) >= maxHooks {
		var e gitlabapi.FieldErrors
		e.Add("base", "Maximum number of project hooks ("+itoa(maxHooks)+") exceeded")
		gitlabapi.Message(rq.w, http.StatusUnprocessableEntity, e)
		return
	}
	h.ID = s.ids.take(&s.ids.hook, 0)
	p.hooks = append(p.hooks, h)
	gitlabapi.WriteJSON(rq.w, http.StatusCreated, hookEntity(h))
}

func (s *Server) editHook(rq *request) {
	p, ok := rq.project(accessMaintainer)
	if !ok {
		return
	}
	h, ok := rq.findHook(p)
	if !ok {
		return
	}
	set, sent, ok := hookAttrs(rq, false)
	if !ok {
		return
	}
	if !sent {
		gitlabapi.GrapeError(rq.w, "No parameters provided")
		return
	}
	edited := *h
	set(&edited)
	if !hookURLValid(edited.URL) {
		gitlabapi.WriteJSON(rq.w, http.StatusUnprocessableEntity, map[string]string{"error": "Invalid url given"})
		return
	}
	*h = edited
	gitlabapi.WriteJSON(rq.w, http.StatusOK, hookEntity(h))
}

func (s *Server) deleteHook(rq *request) {
	p, ok := rq.project(accessMaintainer)
	if !ok {
		return
	}
	h, ok := rq.findHook(p)
	if !ok {
		return
	}
	p.hooks = slices.DeleteFunc(p.hooks, func(x *Hook) bool { return x == h })
	gitlabapi.NoContent(rq.w)
}

// hookTestLimit is the application rate limit on hook tests: 5 per minute
// per project and user (web_hook_test_api_endpoint_rate_limit).
const hookTestLimit = 5

// testHook answers as GitLab does when the test delivery succeeded; the
// double delivers nothing. A successful test re-enables a disabled hook.
func (s *Server) testHook(rq *request) {
	p, ok := rq.project(accessMaintainer)
	if !ok {
		return
	}
	h, ok := rq.findHook(p)
	if !ok {
		return
	}
	g := rq.p.Grape()
	trigger := rq.vars["trigger"]
	g.Values("trigger", trigger, true, hookTriggers...)
	if !g.OK(rq.w) {
		return
	}
	key := [2]int64{p.ID, rq.user.ID}
	now := time.Now()
	recent := slices.DeleteFunc(s.hookTests[key], func(t time.Time) bool { return now.Sub(t) >= time.Minute })
	if len(recent) >= hookTestLimit {
		s.hookTests[key] = recent
		gitlabapi.Message(rq.w, http.StatusTooManyRequests,
			map[string]string{"error": "This endpoint has been requested too many times. Try again later."})
		return
	}
	s.hookTests[key] = append(recent, now)
	h.AlertStatus, h.DisabledUntil = "executable", nil
	gitlabapi.Message(rq.w, http.StatusCreated, "201 Created")
}
