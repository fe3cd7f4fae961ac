package cli

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// cell makes s safe to print as one table cell: names come from GitLab
// (branches, merge request titles) and from API callers, and a newline, a
// tab or an escape sequence in one would forge rows or rewrite the
// terminal. Control and format characters (bidi overrides included), line
// separators and invalid UTF-8 are shown as Go escapes instead.
func cell(s string) string {
	if !needsEscape(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteString(`\x` + strconv.FormatUint(uint64(s[i]), 16))
		case unsafeRune(r):
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

func needsEscape(s string) bool {
	if !utf8.ValidString(s) {
		return true
	}
	return strings.IndexFunc(s, unsafeRune) >= 0
}

func unsafeRune(r rune) bool {
	return unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp)
}
