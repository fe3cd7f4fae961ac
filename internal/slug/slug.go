// Package slug computes the names glenv derives from environment and
// integration names: GitLab's environment slug and the DNS host label an
// environment is served at. It is pure computation: no I/O, no state.
package slug

import (
	"crypto/sha256"
	"encoding/hex"
	"math/big"
	"strings"
)

const (
	// MaxEnvironmentLen is the longest slug GitLab generates.
	MaxEnvironmentLen = 24
	// prefixLen is how much of the cleaned name survives when a suffix is added.
	prefixLen = 17
	suffixLen = 6
)

// Environment returns GitLab's slug for an environment name, exactly as
// Gitlab::Slug::Environment#generate computes it (gitlab/PROTOCOL.md §6), so
// glenv's slugs equal CI_ENVIRONMENT_SLUG and the API's slug field.
//
// The result matches ^[a-z]([a-z0-9-]*[a-z0-9])?$, is at most 24 bytes long and
// never contains "--".
func Environment(name string) string {
	return generate(name, sha256Hex)
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// generate takes the digest function as a parameter because GitLab's own spec
// vectors stub it (to "a"*64), and we test against those vectors.
func generate(name string, hexdigest func(string) string) string {
	s := clean(name)
	if !startsWithLetter(s) {
		s = "env-" + s
	}
	s = squeezeDashes(s)
	if len(s) > MaxEnvironmentLen || s != name {
		if len(s) > prefixLen {
			s = s[:prefixLen]
		}
		if !strings.HasSuffix(s, "-") {
			s += "-"
		}
		return s + suffix(hexdigest(name))
	}
	return strings.TrimSuffix(s, "-")
}

// clean lowercases like Ruby's String#downcase (full Unicode case mapping)
// and replaces every character outside [a-z0-9] with '-'. Only three kinds of
// characters lowercase to ASCII, so they are handled explicitly rather than
// relying on Go's simple case mapping, which differs from Ruby's for 'İ'.
func clean(name string) string {
	var b strings.Builder
	b.Grow(len(name))
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case r >= 'A' && r <= 'Z':
			b.WriteRune(r + ('a' - 'A'))
		case r == '\u212A': // KELVIN SIGN lowercases to 'k'
			b.WriteByte('k')
		case r == '\u0130': // 'İ' lowercases to "i\u0307" in Ruby: two characters
			b.WriteString("i-")
		default:
			b.WriteByte('-')
		}
	}
	return b.String()
}

func squeezeDashes(s string) string {
	if !strings.Contains(s, "--") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '-' && i > 0 && s[i-1] == '-' {
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func startsWithLetter(s string) bool {
	return s != "" && s[0] >= 'a' && s[0] <= 'z'
}

// suffix is Ruby's hexdigest.to_i(16).to_s(36).last(6).
func suffix(hexdigest string) string {
	n, ok := new(big.Int).SetString(hexdigest, 16)
	if !ok {
		// Only reachable with a broken digest function; keep the output valid.
		n = new(big.Int)
	}
	s := n.Text(36)
	if len(s) > suffixLen {
		s = s[len(s)-suffixLen:]
	}
	return s
}
