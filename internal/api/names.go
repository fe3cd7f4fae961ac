package api

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// printableName reports whether a name glenv owns can be shown in a table
// or a log line as it is: valid UTF-8 without control or format characters
// (newlines, escape sequences, bidi overrides) that could forge rows.
func printableName(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool {
		return unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp)
	})
}
