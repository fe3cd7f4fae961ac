package gitlabtest

import (
	"crypto/sha256"
	"encoding/hex"
	"math/big"
	"regexp"
	"strings"
)

// The slug and tier rules are copied here on purpose: the double must not
// depend on the production packages it helps to test.

// environmentSlug is Gitlab::Slug::Environment#generate (PROTOCOL §6).
func environmentSlug(name string) string {
	return environmentSlugWith(name, func(s string) string {
		sum := sha256.Sum256([]byte(s))
		return hex.EncodeToString(sum[:])
	})
}

// environmentSlugWith takes the hex digest function so GitLab's spec
// vectors, written against a stubbed digest, can be checked.
func environmentSlugWith(name string, hexdigest func(string) string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	slug := b.String()
	if slug == "" || slug[0] < 'a' || slug[0] > 'z' {
		slug = "env-" + slug
	}
	for strings.Contains(slug, "--") {
		slug = strings.ReplaceAll(slug, "--", "-")
	}
	if len(slug) > 24 || slug != name {
		slug = slug[:min(17, len(slug))]
		if !strings.HasSuffix(slug, "-") {
			slug += "-"
		}
		return slug + slugSuffix(hexdigest(name))
	}
	return strings.TrimSuffix(slug, "-")
}

// slugSuffix is Digest::SHA2.hexdigest(name).to_i(16).to_s(36).last(6).
func slugSuffix(hexdigest string) string {
	n, ok := new(big.Int).SetString(hexdigest, 16)
	if !ok {
		return ""
	}
	s := n.Text(36)
	return s[max(0, len(s)-6):]
}

// environmentNameRegex is Gitlab::Regex.environment_name_regex.
var environmentNameRegex = regexp.MustCompile(`\A[a-zA-Z0-9_\$\{\}\. -]([a-zA-Z0-9_/\$\{\}\. \-]*[a-zA-Z0-9_\$\{\}\. -])?\z`)

const environmentNameMessage = "can contain only letters, digits, '-', '_', '/', '$', '{', '}', '.', and spaces, but it cannot start or end with '/'"

var environmentTiers = []string{"production", "staging", "testing", "development", "other"}

var tierGuesses = []struct {
	re   *regexp.Regexp
	tier string
}{
	{regexp.MustCompile(`(?i)(dev|review|trunk)`), "development"},
	{regexp.MustCompile(`(?i)(test|tst|int|ac(ce|)pt|qa|qc|control|quality)`), "testing"},
	{regexp.MustCompile(`(?i)(st(a|)g|mod(e|)l|pre|demo|non)`), "staging"},
	{regexp.MustCompile(`(?i)(pr(o|)d|live)`), "production"},
}

// guessTier is Environment#guess_tier, used when no tier is given.
func guessTier(name string) string {
	for _, g := range tierGuesses {
		if g.re.MatchString(name) {
			return g.tier
		}
	}
	return "other"
}
