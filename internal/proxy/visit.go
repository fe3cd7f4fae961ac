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
	if healthPaths[r.URL.Path] {
		return false
	}
	ua := strings.ToLower(r.UserAgent())
	for _, s := range notVisitors {
		if strings.Contains(ua, s) {
			return false
		}
	}
	return true
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
