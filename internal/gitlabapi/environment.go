package gitlabapi

import (
	"net/url"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

// EnvironmentNameRE is Gitlab::Regex.environment_name_regex (PROTOCOL.md §6).
var EnvironmentNameRE = regexp.MustCompile(`\A[a-zA-Z0-9_\$\{\}\. -]([a-zA-Z0-9_/\$\{\}\. \-]*[a-zA-Z0-9_\$\{\}\. -])?\z`)

// EnvironmentNameMessage is the name's format error.
const EnvironmentNameMessage = "can contain only letters, digits, '-', '_', '/', '$', '{', '}', '.', and spaces, but it cannot start or end with '/'"

// KubernetesNamespaceRE and KubernetesNamespaceMessage are
// Gitlab::Regex.kubernetes_namespace_regex and its message (lib/gitlab/regex.rb).
var KubernetesNamespaceRE = regexp.MustCompile(`\A[a-z0-9]([-a-z0-9]*[a-z0-9])?\z`)

const KubernetesNamespaceMessage = "can contain only lowercase letters, digits, and '-'. Must start with a letter, and cannot end with '-'"

// EnvironmentTiers are the values tier accepts.
var EnvironmentTiers = []string{"production", "staging", "testing", "development", "other"}

// tierGuesses is Environment#guess_tier's table, tried in order.
var tierGuesses = []struct {
	re   *regexp.Regexp
	tier string
}{
	{regexp.MustCompile(`(?i)(dev|review|trunk)`), "development"},
	{regexp.MustCompile(`(?i)(test|tst|int|ac(ce|)pt|qa|qc|control|quality)`), "testing"},
	{regexp.MustCompile(`(?i)(st(a|)g|mod(e|)l|pre|demo|non)`), "staging"},
	{regexp.MustCompile(`(?i)(pr(o|)d|live)`), "production"},
}

// GuessTier is Environment#guess_tier: the tier GitLab gives an environment
// created without one.
func GuessTier(name string) string {
	for _, g := range tierGuesses {
		if g.re.MatchString(name) {
			return g.tier
		}
	}
	return "other"
}

// CheckEnvironmentName runs the Environment model's name and slug
// validations in their declaration order. The caller knows whether another
// environment of the project has the name or the slug.
func CheckEnvironmentName(errs *FieldErrors, name string, nameTaken, slugTaken bool) {
	// Rails' presence check is blank?: white space only is blank too
	// (ActiveSupport's String#blank?, /\A[[:space:]]*\z/).
	if strings.TrimSpace(name) == "" {
		errs.Add("name", "can't be blank")
	}
	if nameTaken {
		errs.Add("name", "has already been taken")
	}
	if utf8.RuneCountInString(name) > 255 {
		errs.Add("name", "is too long (maximum is 255 characters)")
	}
	if !EnvironmentNameRE.MatchString(name) {
		errs.Add("name", EnvironmentNameMessage)
	}
	if slugTaken {
		errs.Add("slug", "has already been taken")
	}
}

// CheckEnvironmentFields runs the validations that follow the name's, in
// their declaration order: lengths, the cluster-agent rules of
// kubernetes_namespace and flux_resource_path (no agent can be set), and
// external_url's scheme.
func CheckEnvironmentFields(errs *FieldErrors, externalURL, description, k8sNamespace, fluxPath string) {
	if utf8.RuneCountInString(externalURL) > 255 {
		errs.Add("external_url", "is too long (maximum is 255 characters)")
	}
	if utf8.RuneCountInString(description) > 10000 {
		errs.Add("description", "is too long (maximum is 10000 characters)")
	}
	// validates :kubernetes_namespace, allow_nil: true, length: 1..63,
	// format:, absence: { unless: :cluster_agent } (app/models/environment.rb),
	// each rule's message in that order; blank was nullified before.
	if k8sNamespace != "" {
		if utf8.RuneCountInString(k8sNamespace) > 63 {
			errs.Add("kubernetes_namespace", "is too long (maximum is 63 characters)")
		}
		if !KubernetesNamespaceRE.MatchString(k8sNamespace) {
			errs.Add("kubernetes_namespace", KubernetesNamespaceMessage)
		}
		errs.Add("kubernetes_namespace", "cannot be set without a cluster agent")
	}
	// validates :flux_resource_path, length: { maximum: 255 }, allow_nil:
	// true, absence: { unless: :kubernetes_namespace }.
	if fluxPath != "" {
		if utf8.RuneCountInString(fluxPath) > 255 {
			errs.Add("flux_resource_path", "is too long (maximum is 255 characters)")
		}
		if k8sNamespace == "" {
			errs.Add("flux_resource_path", "cannot be set without a kubernetes namespace")
		}
	}
	if externalURL != "" {
		if u, err := url.Parse(externalURL); err != nil {
			errs.Add("external_url", "URI is invalid")
		} else if slices.Contains([]string{"data", "javascript", "vbscript"}, u.Scheme) {
			errs.Add("external_url", u.Scheme+" scheme is not allowed")
		}
	}
}
