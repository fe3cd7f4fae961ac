package gitlabapi

import (
	"net/http"
	"strings"
	"time"
	"unicode/utf8"
)

// The parameters the Environments API (lib/api/environments.rb) declares,
// and its fixed answers.

// NoClusterAgent is the 400 reason for a cluster_agent_id that cannot be
// associated (neither glenv nor the double has cluster agents).
const NoClusterAgent = "cluster agent doesn't exist or cannot be associated with this environment"

// EnvironmentAttrs are the writable attributes create and update declare.
// KubernetesNamespace and FluxResourcePath are nullified when blank, as
// the model does (nullify_if_blank).
type EnvironmentAttrs struct {
	ExternalURL, Tier, Description, AutoStopSetting, KubernetesNamespace, FluxResourcePath string

	HasExternalURL, HasTier, HasDescription, HasAutoStopSetting bool
	// GuessTier reports tier was sent as null: ensure_environment_tier
	// guesses it again from the name (`self.tier ||= guess_tier`).
	GuessTier bool
	// ClusterAgent reports a valid cluster_agent_id was sent.
	ClusterAgent bool
}

// ReadEnvironmentName declares create's required name. Grape's presence
// check looks for the key only (PresenceValidator#validate_param!:
// params.key?), so a JSON null gets through to the model as nil, where it
// fails the name's validations as a blank name does.
func ReadEnvironmentName(g *Grape) string {
	if g.p.Null("name") {
		return ""
	}
	name, _ := g.RequireString("name")
	return name
}

// ReadEnvironmentAttrs declares the attributes in GitLab's order. A `name`
// sent to update is not declared there, so Grape drops it: environments
// are never renamed. A JSON null is kept by declared_params(include_missing:
// false) (lib/api/environments.rb:127) and assigned: external_url and
// description are cleared, tier guessed again. auto_stop_setting sent as
// null is ignored (GitLab would write nil into a NOT NULL enum column).
func ReadEnvironmentAttrs(g *Grape) EnvironmentAttrs {
	var a EnvironmentAttrs
	a.ExternalURL, a.HasExternalURL = g.OptString("external_url")
	a.HasExternalURL = a.HasExternalURL || g.p.Null("external_url")
	g.Absent("slug", "is automatically generated and cannot be changed")
	a.Tier, a.HasTier = g.OptString("tier")
	g.Values("tier", a.Tier, a.HasTier, EnvironmentTiers...)
	a.GuessTier = g.p.Null("tier")
	_, a.ClusterAgent = g.OptInt("cluster_agent_id")
	a.KubernetesNamespace, _ = g.OptString("kubernetes_namespace")
	a.KubernetesNamespace = nullIfBlank(a.KubernetesNamespace)
	a.FluxResourcePath, _ = g.OptString("flux_resource_path")
	a.FluxResourcePath = nullIfBlank(a.FluxResourcePath)
	a.Description, a.HasDescription = g.OptString("description")
	a.HasDescription = a.HasDescription || g.p.Null("description")
	a.AutoStopSetting, a.HasAutoStopSetting = g.OptString("auto_stop_setting")
	g.Values("auto_stop_setting", a.AutoStopSetting, a.HasAutoStopSetting, AutoStopSettings...)
	return a
}

// nullIfBlank is NullifyIfBlank's rule (app/models/concerns/nullify_if_blank.rb:
// `blank?`, so whitespace only too), with "" standing for nil.
func nullIfBlank(s string) string {
	if strings.TrimSpace(s) == "" {
		return ""
	}
	return s
}

// DefaultAutoStopSetting is what create stores when auto_stop_setting is not
// sent (lib/api/environments.rb:74, `default: "always"`); update leaves the
// stored value alone (line 126, include_missing: false).
const DefaultAutoStopSetting = "always"

// Apply sets the attributes that were sent onto the fields of the
// environment called name. external_url is stored as sent (the model has
// no strip); a blank external_url or description is stored empty, which
// both servers show as null (nullify_if_blank); a tier sent as null is
// guessed again from the name.
func (a EnvironmentAttrs) Apply(name string, externalURL, tier, description *string) {
	if a.HasExternalURL {
		*externalURL = nullIfBlank(a.ExternalURL)
	}
	switch {
	case a.HasTier:
		*tier = a.Tier
	case a.GuessTier:
		*tier = GuessTier(name)
	}
	if a.HasDescription {
		*description = nullIfBlank(a.Description)
	}
}

// ApplyAutoStopSetting sets auto_stop_setting when it was sent.
func (a EnvironmentAttrs) ApplyAutoStopSetting(setting *string) {
	if a.HasAutoStopSetting {
		*setting = a.AutoStopSetting
	}
}

// ReadStaleBefore declares stop_stale's required `before`.
func ReadStaleBefore(g *Grape) time.Time {
	before, _ := g.RequireTime("before")
	return before
}

// CheckStaleBefore is stop_stale's date rule: `before` must lie between
// ten years and a week before now. Otherwise it answers GitLab's
// 400 "Invalid Date" and returns false.
func CheckStaleBefore(w http.ResponseWriter, before, now time.Time) bool {
	if before.Before(now.AddDate(-10, 0, 0)) || before.After(now.Add(-7*24*time.Hour)) {
		BadRequest(w, "Invalid Date")
		return false
	}
	return true
}

// StaleStopped is stop_stale's answer once the stop was requested.
const StaleStopped = "Successfully requested stop for all stale environments"

// ReviewApps are the parameters of DELETE …/environments/review_apps.
type ReviewApps struct {
	Before                         time.Time
	Limit                          int64
	DryRun                         bool
	hasBefore, hasLimit, hasDryRun bool
}

// MaxReviewAppsLimit is the largest limit review_apps accepts (values: 1..1000).
const MaxReviewAppsLimit = 1000

// ReadReviewApps declares before, limit and dry_run. Call Defaults to fill
// in those not sent.
func ReadReviewApps(g *Grape) ReviewApps {
	var r ReviewApps
	r.Before, r.hasBefore = g.OptTime("before")
	r.Limit, r.hasLimit = g.OptInt("limit")
	if r.hasLimit && (r.Limit < 1 || r.Limit > MaxReviewAppsLimit) {
		g.Fail("limit", "does not have a valid value")
	}
	r.DryRun, r.hasDryRun = g.OptBool("dry_run")
	return r
}

// Defaults fills in GitLab's defaults: before 30 days before now, limit
// 100, dry_run true (nothing is deleted).
func (r ReviewApps) Defaults(now time.Time) ReviewApps {
	if !r.hasBefore {
		r.Before = now.Add(-30 * 24 * time.Hour)
	}
	if !r.hasLimit {
		r.Limit = 100
	}
	if !r.hasDryRun {
		r.DryRun = true
	}
	return r
}

// ReviewAppsResult is review_apps' answer: 200 when something was
// scheduled, else 400 as a {"message": …} whose Message is NothingToDelete.
type ReviewAppsResult struct {
	Scheduled     []EnvironmentBasic `json:"scheduled_entries"`
	Unprocessable []EnvironmentBasic `json:"unprocessable_entries"`
	Message       string             `json:"message,omitempty"`
}

// NewReviewAppsResult has empty lists, which GitLab shows as [].
func NewReviewAppsResult() ReviewAppsResult {
	return ReviewAppsResult{Scheduled: []EnvironmentBasic{}, Unprocessable: []EnvironmentBasic{}}
}

// NoPermissionToDestroy is review_apps' answer to a caller who may read the
// project's environments but not destroy them, with status 401
// (schedule_to_delete_review_apps_service.rb #validate: `status:
// :unauthorized`; lib/api/environments.rb renders it with
// render_api_error!(response.merge!(message: …), result.status); spec
// "as a reporter rejects the request": :unauthorized).
const NoPermissionToDestroy = "You do not have permission to destroy environments in this project"

// NothingToDelete is review_apps' message when some of the environments
// found may not be deleted by the caller
// (app/services/environments/schedule_to_delete_review_apps_service.rb,
// #unsafe_mark_deletable_environments).
const NothingToDelete = "Failed to authorize deletions for some or all of the environments. " +
	"Ask someone with more permissions to delete the environments."

// NoneFound is review_apps' 400 message when no stopped review app matched
// at all. The message is current GitLab's (issue 15); the stored copy of
// schedule_to_delete_review_apps_service.rb predates it and answered
// NothingToDelete for this case too.
const NoneFound = "No environments found for scheduled deletion. Either your query did not match any " +
	"environments (default parameters match environments that are 30 days or older), or you have " +
	"insufficient permissions to delete matching environments."

// ScheduledDeletionDelay is how long review_apps waits before a scheduled
// environment is deleted (environment.rb: `def self.schedule_to_delete(at_time = 1.week.from_now)`).
const ScheduledDeletionDelay = 7 * 24 * time.Hour

// EnvironmentFilter is what GET …/environments filters by.
type EnvironmentFilter struct {
	Name, Search, States string
	HasStates            bool
}

// MinSearchLength is API::Environments::MIN_SEARCH_LENGTH; a shorter
// search is BadRequest(SearchTooShort).
const MinSearchLength = 3

// SearchTooShort is the 400 reason for a search under MinSearchLength.
const SearchTooShort = "Search query is less than 3 characters"

// MaxNameLength is the longest environment name (environment.rb:
// `validates :name, length: { maximum: 255 }`). A name or search filter
// longer than that matches no environment, so both servers answer it with
// GitLab's empty list without asking their store (a 50,000-character
// search once failed SQLite's LIKE with a 500).
const MaxNameLength = 255

// CannotMatch reports a name or search filter longer than any name.
func CannotMatch(f EnvironmentFilter) bool {
	return utf8.RuneCountInString(f.Name) > MaxNameLength || utf8.RuneCountInString(f.Search) > MaxNameLength
}

// ReadEnvironmentFilter declares name, search and states.
func ReadEnvironmentFilter(g *Grape) EnvironmentFilter {
	var f EnvironmentFilter
	name, hasName := g.OptString("name")
	search, hasSearch := g.OptString("search")
	f.Name, f.Search = name, search
	f.States, f.HasStates = g.OptString("states")
	g.Values("states", f.States, f.HasStates, "available", "stopping", "stopped")
	if hasName && hasSearch {
		g.Fail("name, search", "cannot be used together")
	}
	return f
}

// SearchMatches is GET …/environments' search
// (app/finders/environments/environments_finder.rb #by_search): the union
// of Environment.for_name_like, a case-insensitive prefix of the name, and
// for_name_like_within_folder, the same prefix of the name without its
// folder. The folder (environment_type) is the first '/'-separated segment
// of a name that has several (Environment#set_environment_type), stripped
// as LTRIM(LTRIM(name, environment_type), '/') strips it: by the set of its
// characters, then any slashes.
func SearchMatches(name, search string) bool {
	q := strings.ToLower(search)
	if strings.HasPrefix(strings.ToLower(name), q) {
		return true
	}
	folder, _, many := strings.Cut(name, "/")
	if !many {
		return false
	}
	rest := strings.TrimLeft(strings.TrimLeft(name, folder), "/")
	return strings.HasPrefix(strings.ToLower(rest), q)
}
