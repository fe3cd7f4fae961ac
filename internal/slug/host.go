package slug

import (
	"fmt"
	"regexp"
	"strings"
)

// MaxIntegrationNameLen is the longest integration name. With the 24-byte
// slug and the "--" separator it keeps a host label within DNS's 63 bytes.
const MaxIntegrationNameLen = 36

// hostSep separates the environment slug from the integration name.
const hostSep = "--"

var (
	integrationNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,34}[a-z0-9])?$`)
	environmentSlugRE = regexp.MustCompile(`^[a-z]([a-z0-9-]*[a-z0-9])?$`)
)

// Host returns the DNS label an environment is served at:
// "<envSlug>--<integration>", at most 24+2+36 = 62 bytes.
//
// The label is unambiguous although integration names may contain "--":
// an environment slug never contains "--" (Environment squeezes dashes), so
// the first "--" in the label always ends the slug. ParseHost relies on this.
func Host(envSlug, integration string) string {
	return envSlug + hostSep + integration
}

// ParseHost splits a host label made by Host. ASCII case is ignored because
// DNS names are case-insensitive. ok is false unless both parts are valid.
func ParseHost(label string) (envSlug, integration string, ok bool) {
	label = strings.ToLower(label)
	envSlug, integration, found := strings.Cut(label, hostSep)
	if !found || !validEnvironmentSlug(envSlug) || ValidIntegrationName(integration) != nil {
		return "", "", false
	}
	return envSlug, integration, true
}

func validEnvironmentSlug(s string) bool {
	return len(s) <= MaxEnvironmentLen && environmentSlugRE.MatchString(s) && !strings.Contains(s, hostSep)
}

// ValidIntegrationName reports whether name can name an integration. The
// error names the field, the rule and a fix, for showing to users as is.
func ValidIntegrationName(name string) error {
	if integrationNameRE.MatchString(name) {
		return nil
	}
	msg := fmt.Sprintf("name %q is invalid: it must be 1–36 characters of a-z, 0-9 and '-', starting and ending with a letter or digit", name)
	if s := suggestIntegrationName(name); s != "" {
		return fmt.Errorf("%s; try %q", msg, s)
	}
	return fmt.Errorf("%s; choose a name such as \"my-app\"", msg)
}

// suggestIntegrationName turns a rejected name into a valid one, or "" when
// nothing of it is usable.
func suggestIntegrationName(name string) string {
	s := squeezeDashes(clean(name))
	if len(s) > MaxIntegrationNameLen {
		s = s[:MaxIntegrationNameLen]
	}
	s = strings.Trim(s, "-")
	if !integrationNameRE.MatchString(s) {
		return ""
	}
	return s
}
