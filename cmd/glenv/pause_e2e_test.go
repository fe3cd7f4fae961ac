package main_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// visit GETs / of an environment through glenv's listener with the given
// User-Agent and Accept headers.
func (g *glenv) visit(host, userAgent, accept string) (int, http.Header, string) {
	g.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, g.URL+"/", nil)
	req.Host = host + ".localhost"
	req.Header.Set("User-Agent", userAgent)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	client := &http.Client{Timeout: 60 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		g.t.Fatalf("GET %s: %v\n%s", host, err, g.tail())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

const (
	browserUA   = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
	browserHTML = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
)

// Issue 17: a paused environment runs no process; a bot's visit leaves it
// paused; a person's visit sees the waking page, then the app, and the
// environment is active again; an API client's request waits for the app.
func TestAPausedEnvironmentRunsNothingAndAVisitWakesIt(t *testing.T) {
	g, _, _ := processWorld(t, "")
	host := "main--app"

	// --pause-after is an integration setting, checked and shown.
	if _, stderr, code := g.run("", "integration:update", "app", "--pause-after", "10s"); code == 0 || !strings.Contains(stderr, "pause_after") || !strings.Contains(stderr, "at least 1m") {
		t.Fatalf("--pause-after 10s: exit %d, %q", code, stderr)
	}
	var upd struct {
		Integration struct {
			PauseAfter string `json:"pause_after"`
		} `json:"integration"`
	}
	g.mustJSON(&upd, "integration:update", "app", "--pause-after", "4h")
	if upd.Integration.PauseAfter != "4h0m0s" {
		t.Fatalf("pause_after after the update: %q", upd.Integration.PauseAfter)
	}
	if code, _, body := g.visit(host, browserUA, browserHTML); code != 200 {
		t.Fatalf("before the pause: %d %q", code, body)
	}
	apps := descendants(g.cmd.Process.Pid)
	if len(apps) == 0 {
		t.Fatalf("no app process runs under glenv before the pause")
	}

	g.mustRun("environment:pause", "main", "--integration", "app")
	g.waitEnv("app", "main", func(e envJSON, ok bool) bool { return ok && e.State == "paused" })
	waitGone(t, g, "pause", apps)

	// A link preview does not wake it.
	code, _, body := g.visit(host, "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", browserHTML)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "paused") {
		t.Fatalf("a bot's visit: %d %q", code, body)
	}
	var e envJSON
	g.mustJSON(&e, "environment:get", "main", "--integration", "app")
	if e.State != "paused" {
		t.Fatalf("a bot's visit woke the environment: %s", e.State)
	}
	if left := descendants(g.cmd.Process.Pid); len(living(left)) != 0 {
		t.Fatalf("a bot's visit started processes: %v", living(left))
	}

	// A person's visit: the waking page, which reloads itself, then the app.
	code, hdr, body := g.visit(host, browserUA, browserHTML)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "Waking up") ||
		!strings.Contains(body, "http-equiv=refresh content=1") || hdr.Get("Retry-After") == "" {
		t.Fatalf("the first visit to a paused environment: %d %v %q", code, hdr, body)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, _, body = g.visit(host, browserUA, browserHTML)
		if code == 200 {
			break
		}
		if !strings.Contains(body, "Waking up") {
			t.Fatalf("while waking, a reload shows %d %q", code, body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("not awake after 30s: %d %q\n%s", code, body, g.tail())
		}
		time.Sleep(100 * time.Millisecond) // the page's own reload, faster
	}
	g.waitEnv("app", "main", func(e envJSON, ok bool) bool { return ok && e.State == "active" })

	// An API client does not get a page: its request waits for the app.
	g.mustRun("environment:pause", "main", "--integration", "app")
	g.waitEnv("app", "main", func(e envJSON, ok bool) bool { return ok && e.State == "paused" })
	if code, _, body := g.visit(host, "curl/8.5.0", "*/*"); code != 200 {
		t.Fatalf("an API client's request to a paused environment: %d %q\n%s", code, body, g.tail())
	}
	g.mustRun("environment:pause", "main", "--integration", "app")
	g.waitEnv("app", "main", func(e envJSON, ok bool) bool { return ok && e.State == "paused" })
	g.mustRun("environment:resume", "main", "--integration", "app")
	g.waitEnv("app", "main", func(e envJSON, ok bool) bool { return ok && e.State == "active" })
}
