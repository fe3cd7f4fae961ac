package envapi

import (
	"net/url"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/glenv/glenv/internal/store"
)

// nameRE is Gitlab::Regex.environment_name_regex (PROTOCOL.md §6).
var nameRE = regexp.MustCompile(`\A[a-zA-Z0-9_\$\{\}\. -]([a-zA-Z0-9_/\$\{\}\. \-]*[a-zA-Z0-9_\$\{\}\. -])?\z`)

const nameMessage = "can contain only letters, digits, '-', '_', '/', '$', '{', '}', '.', and spaces, but it cannot start or end with '/'"

var tiers = []string{"production", "staging", "testing", "development", "other"}

// tierGuesses is Environment#guess_tier's table, tried in order. The GitLab
// double (internal/gitlabtest) has the same table; the contract test keeps
// the two in agreement.
var tierGuesses = []struct {
	re   *regexp.Regexp
	tier string
}{
	{regexp.MustCompile(`(?i)(dev|review|trunk)`), "development"},
	{regexp.MustCompile(`(?i)(test|tst|int|ac(ce|)pt|qa|qc|control|quality)`), "testing"},
	{regexp.MustCompile(`(?i)(st(a|)g|mod(e|)l|pre|demo|non)`), "staging"},
	{regexp.MustCompile(`(?i)(pr(o|)d|live)`), "production"},
}

// guessTier is the tier GitLab gives an environment created without one.
func guessTier(name string) string {
	for _, g := range tierGuesses {
		if g.re.MatchString(name) {
			return g.tier
		}
	}
	return "other"
}

// attrs are the writable attributes shared by create and update. glenv
// has no cluster agents and keeps auto_stop_setting "always"; the others
// are checked as GitLab checks them.
type attrs struct {
	externalURL, tier, description, k8sNamespace, fluxPath string
	hasExternalURL, hasTier, hasDescription, clusterAgent  bool
}

// readAttrs declares the parameters in GitLab's order. A `name` sent to
// update is not declared there, so Grape drops it: environments are never renamed.
func readAttrs(g *grape) attrs {
	var a attrs
	a.externalURL, a.hasExternalURL = g.optString("external_url")
	g.absent("slug", "is automatically generated and cannot be changed")
	a.tier, a.hasTier = g.optString("tier")
	g.values("tier", a.tier, a.hasTier, tiers...)
	_, a.clusterAgent = g.optInt("cluster_agent_id")
	a.k8sNamespace, _ = g.optString("kubernetes_namespace")
	a.fluxPath, _ = g.optString("flux_resource_path")
	a.description, a.hasDescription = g.optString("description")
	autoStop, hasAutoStop := g.optString("auto_stop_setting")
	g.values("auto_stop_setting", autoStop, hasAutoStop, "always", "with_action")
	return a
}

func (a attrs) apply(e *store.Environment) {
	if a.hasExternalURL {
		e.ExternalURL = strings.TrimSpace(a.externalURL)
	}
	if a.hasTier {
		e.Tier = a.tier
	}
	if a.hasDescription {
		e.Description = a.description
	}
}

// validate runs the Environment model's validations in their declaration
// order. Name and slug rules apply on create only: update never changes them,
// and glenv's branch environments may carry names GitLab would refuse.
func validate(e store.Environment, creating, nameTaken, slugTaken bool, a attrs) fieldErrors {
	var errs fieldErrors
	if creating {
		if e.Name == "" {
			errs.add("name", "can't be blank")
		}
		if nameTaken {
			errs.add("name", "has already been taken")
		}
		if utf8.RuneCountInString(e.Name) > 255 {
			errs.add("name", "is too long (maximum is 255 characters)")
		}
		if !nameRE.MatchString(e.Name) {
			errs.add("name", nameMessage)
		}
		if slugTaken {
			errs.add("slug", "has already been taken")
		}
	}
	if utf8.RuneCountInString(e.ExternalURL) > 255 {
		errs.add("external_url", "is too long (maximum is 255 characters)")
	}
	if utf8.RuneCountInString(e.Description) > 10000 {
		errs.add("description", "is too long (maximum is 10000 characters)")
	}
	if a.k8sNamespace != "" {
		errs.add("kubernetes_namespace", "cannot be set without a cluster agent")
	}
	if a.fluxPath != "" && a.k8sNamespace == "" {
		errs.add("flux_resource_path", "cannot be set without a kubernetes namespace")
	}
	if e.ExternalURL != "" {
		if u, err := url.Parse(e.ExternalURL); err != nil {
			errs.add("external_url", "URI is invalid")
		} else if slices.Contains([]string{"data", "javascript", "vbscript"}, u.Scheme) {
			errs.add("external_url", u.Scheme+" scheme is not allowed")
		}
	}
	return errs
}
