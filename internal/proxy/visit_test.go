package proxy

import (
	"net/http/httptest"
	"testing"
)

func TestCountsAsVisit(t *testing.T) {
	tests := []struct {
		name, ua, path string
		want           bool
	}{
		{"a browser counts", "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0", "/", true},
		{"an API client counts", "curl/8.5.0", "/api/items", true},
		{"no user agent counts", "", "/", true},
		{"a search crawler does not count", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "/", false},
		{"Slack's link preview does not count", "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", "/", false},
		{"Facebook's link preview does not count", "facebookexternalhit/1.1", "/", false},
		{"a spider does not count", "Baiduspider", "/", false},
		{"a Kubernetes probe does not count", "kube-probe/1.29", "/", false},
		{"an uptime monitor does not count", "Mozilla/5.0+(compatible; UptimeRobot/2.0)", "/", false},
		{"a health path does not count", "curl/8.5.0", "/healthz", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "http://feature--app.localhost"+tt.path, nil)
			if tt.ua != "" {
				r.Header.Set("User-Agent", tt.ua)
			}
			if got := countsAsVisit(r); got != tt.want {
				t.Fatalf("countsAsVisit(%q %s) = %v, want %v", tt.ua, tt.path, got, tt.want)
			}
		})
	}
}

func TestAcceptsHTML(t *testing.T) {
	tests := []struct {
		name, accept string
		want         bool
	}{
		{"a browser names HTML", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", true},
		{"curl's wildcard waits", "*/*", false},
		{"a JSON client waits", "application/json", false},
		{"no Accept waits", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "http://x.localhost/", nil)
			if tt.accept != "" {
				r.Header.Set("Accept", tt.accept)
			}
			if got := acceptsHTML(r); got != tt.want {
				t.Fatalf("acceptsHTML(%q) = %v, want %v", tt.accept, got, tt.want)
			}
		})
	}
}
