package main_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/glenv/glenv/internal/gitlabtest"
)

// feedbackCalls returns the feedback calls (statuses, notes, environments,
// deployments) in the double's log, compactly, and empties the log.
func feedbackCalls(gl *gitlabWorld) []string {
	var out []string
	prefix := fmt.Sprintf("/api/v4/projects/%d/", gl.Project.ID)
	for _, c := range gl.Calls() {
		path, _ := url.PathUnescape(strings.TrimPrefix(c.Path, prefix))
		parts := strings.Split(path, "/")
		switch {
		case parts[0] == "statuses":
			path = "statuses/" + parts[1][:8]
		case len(parts) >= 3 && parts[0] == "merge_requests" && parts[2] == "notes":
			path = "notes"
		case parts[0] == "environments" || parts[0] == "deployments":
			path = parts[0]
			if len(parts) > 2 {
				path += "/" + strings.Join(parts[2:], "/") // without the id
			}
		default:
			continue // hooks, branches, tokens: not feedback
		}
		line := c.Method + " " + path
		var body map[string]any
		_ = json.Unmarshal(c.Body, &body)
		for _, k := range []string{"state", "status"} {
			if v, ok := body[k].(string); ok {
				line += " " + v
			}
		}
		if c.Status >= 300 {
			line += fmt.Sprintf(" → %d", c.Status)
		}
		out = append(out, line)
	}
	gl.ResetCalls()
	return out
}

// waitFor polls cond for up to 15s.
func waitFor(t *testing.T, g *glenv, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not after 15s\n%s", what, g.tail())
}

// TestFeedbackShowsAMergeRequestInGitLab drives glenv serve with webhooks
// and reads what it told the GitLab double.
func TestFeedbackShowsAMergeRequestInGitLab(t *testing.T) {
	for name, db := range backends(t) {
		t.Run(name, func(t *testing.T) {
			g, gl, secret := connected(t, db())
			pid := gl.Project.ID
			A, B := sha("fb-A"), sha("fb-B")
			gl.SetBranch(pid, "feature-x", A)
			gl.SetMergeRequest(pid, gitlabtest.MergeRequest{IID: 7, SourceBranch: "feature-x", TargetBranch: "main", SHA: A})
			statusOf := func(commit string) string {
				st := gl.Statuses(pid, commit)
				if len(st) != 1 {
					return fmt.Sprint(len(st), " statuses")
				}
				return st[0].Status
			}
			send := func(p payload) {
				t.Helper()
				if code, body := g.deliver("app", secret, "Merge Request Hook", p, ""); code != 202 {
					t.Fatalf("delivery: %d %s", code, body)
				}
				g.settle("app")
			}
			waitFor(t, g, "main shows its deploy", func() bool { return statusOf(sha("main-1")) == "success" })
			feedbackCalls(gl)

			t0 := time.Now().Add(-time.Hour)
			send(mrPayload(t, pid, "merge_request_open.json", 7, A, t0))
			waitFor(t, g, "MR open shown", func() bool {
				n := gl.Notes(pid, 7)
				return statusOf(A) == "success" && len(n) == 1 && strings.Contains(n[0].Body, "is live")
			})
			open := feedbackCalls(gl)
			t.Logf("MR open: %d calls %q", len(open), open)

			gl.SetBranch(pid, "feature-x", B)
			send(mrPayload(t, pid, "merge_request_update.json", 7, B, t0.Add(time.Minute)).mr("action", "update", "oldrev", A))
			waitFor(t, g, "push shown", func() bool {
				n := gl.Notes(pid, 7)
				return statusOf(B) == "success" && len(n) == 1 && strings.Contains(n[0].Body, "`"+B[:8]+"` is live")
			})
			// The note's log link works without an API token, and only with its signature.
			link := regexp.MustCompile(`http://[^\s)]+/logs/\d+\?sig=[\w-]+`).FindString(gl.Notes(pid, 7)[0].Body)
			if link == "" {
				t.Fatalf("no log link in the note:\n%s", gl.Notes(pid, 7)[0].Body)
			}
			var logText string
			g.apiGetText(strings.TrimPrefix(link, g.URL), &logText)
			if !strings.Contains(logText, "deploy") || !strings.Contains(logText, B) {
				t.Errorf("log link shows %q", logText)
			}
			if resp, err := http.Get(link[:len(link)-2] + "xx"); err != nil || resp.StatusCode != 404 {
				t.Errorf("a tampered log link was served: %v %v", resp.StatusCode, err)
			}
			g.feedbackQuiet(t) // anything late would show now
			push := feedbackCalls(gl)
			if want := []string{"POST statuses/" + B[:8] + " success", "POST deployments success", "PUT notes"}; strings.Join(push, "|") != strings.Join(want, "|") {
				t.Errorf("push: calls %q, want %q", push, want)
			}
			if len(push) > 5 {
				t.Errorf("push: %d GitLab calls, at most 5 allowed", len(push))
			}

			send(mrPayload(t, pid, "merge_request_close.json", 7, B, t0.Add(2*time.Minute)))
			waitFor(t, g, "close shown", func() bool {
				for _, e := range gl.Environments(pid) {
					if e.Name == "glenv/mr-7" {
						return false
					}
				}
				n := gl.Notes(pid, 7)
				return len(n) == 1 && strings.Contains(n[0].Body, "deleted")
			})
			closed := feedbackCalls(gl)
			if want := []string{"PUT notes", "POST environments/stop", "DELETE environments"}; strings.Join(closed, "|") != strings.Join(want, "|") {
				t.Errorf("close: calls %q, want %q", closed, want)
			}

			// Hook health is checked at start and every --reconcile-interval;
			// the check at start may have run before integration:add. After
			// a restart the first check has the integration to report.
			g.restart()
			waitFor(t, g, "glenv_integration_hook_disabled reported as 0", func() bool {
				var metrics string
				g.apiGetText("/metrics", &metrics)
				return metricValue(metrics, `glenv_integration_hook_disabled{integration="app"}`) == 0
			})
		})
	}
}
