package auth

import (
	"fmt"
	"net/url"
	"strings"
)

// CleanReturnTo accepts only a path inside glenv, so a sign-in can never be
// turned into an open redirect: it must start with one "/", and neither
// "//host" nor "/\host" (which browsers read as another host), nor a scheme,
// nor control characters may appear. Empty means "/".
func CleanReturnTo(v string) (string, error) {
	if v == "" {
		return "/", nil
	}
	bad := func(why string) (string, error) {
		return "", fieldErr("return_to", "%q %s: give a path inside glenv, e.g. /environments", v, why)
	}
	if len(v) > 2000 {
		return bad("is longer than 2000 characters")
	}
	if !strings.HasPrefix(v, "/") {
		return bad("must start with /")
	}
	if strings.HasPrefix(v, "//") || strings.Contains(v, "\\") {
		return bad("names another host")
	}
	for _, c := range v {
		if c < 0x20 || c == 0x7f {
			return bad("contains control characters")
		}
	}
	u, err := url.Parse(v)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return bad("is not a plain path")
	}
	// Decoding must not reveal another host either (/%2F%2Fevil).
	if p, err := url.PathUnescape(u.EscapedPath()); err != nil || strings.HasPrefix(p, "//") || strings.Contains(p, "\\") {
		return bad(fmt.Sprintf("decodes to %q", p))
	}
	return v, nil
}
