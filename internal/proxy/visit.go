package proxy

import (
	"net/http"
	"strings"
)

// notVisitors are User-Agent fragments (lowercase) of clients whose
// requests neither keep an environment awake nor wake a paused one (issue
// 17): crawlers, link-preview fetchers (Slackbot, facebookexternalhit,
// Twitterbot, Discordbot, WhatsApp …) and uptime and load-balancer health
// checks.
var notVisitors = []string{
	"bot", "crawler", "spider", "slurp", "facebookexternalhit", "embedly", "preview", "whatsapp",
	"slack-imgproxy", "kube-probe", "healthcheck", "health-check", "elb-healthchecker", "googlehc",
	"uptimerobot", "pingdom", "statuscake", "uptime-kuma", "prometheus", "blackbox",
}

// healthPaths are the paths health checkers conventionally probe.
var healthPaths = map[string]bool{"/healthz": true, "/readyz": true, "/livez": true, "/health": true, "/_health": true}

// countsAsVisit reports whether r is someone using the environment: it
// keeps an active environment from being paused and wakes a paused one.
func countsAsVisit(r *http.Request) bool {
	// Lowered first: strings.ToLower also folds non-ASCII look-alikes
	// (the Kelvin sign), which the front never sees (it takes ASCII only).
	return isVisit(r.URL.Path, strings.ToLower(r.UserAgent()))
}

// isVisit is the rule on a request's path and User-Agent; it allocates
// nothing, as the front calls it on every request.
func isVisit[P, U string | []byte](path P, userAgent U) bool {
	if healthPaths[string(path)] {
		return false
	}
	for _, s := range notVisitors {
		if containsFold(userAgent, s) {
			return false
		}
	}
	return true
}

// containsFold reports whether s contains lower (lower-case ASCII), ignoring
// ASCII case as strings.ToLower then strings.Contains would.
func containsFold[S string | []byte](s S, lower string) bool {
	for i := 0; i+len(lower) <= len(s); i++ {
		j := 0
		for ; j < len(lower); j++ {
			c := s[i+j]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != lower[j] {
				break
			}
		}
		if j == len(lower) {
			return true
		}
	}
	return false
}

// acceptsHTML reports whether r names HTML in Accept, as browsers do; API
// clients (curl's */*, application/json) wait for a waking environment
// instead of getting a page that refreshes.
func acceptsHTML(r *http.Request) bool {
	for _, h := range r.Header.Values("Accept") {
		h = strings.ToLower(h)
		if strings.Contains(h, "text/html") || strings.Contains(h, "application/xhtml+xml") {
			return true
		}
	}
	return false
}
