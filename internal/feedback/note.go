package feedback

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/glenv/glenv/internal/gitsha"
	"github.com/glenv/glenv/internal/store"
)

// marker starts glenv's one note on a merge request. It is hidden when
// GitLab renders the note, and it is how the note is found again after a
// crash lost its id: a note is glenv's only if its body starts with it.
func marker(env store.Environment) string {
	return fmt.Sprintf("<!-- glenv:environment=%s/%s -->", env.IntegrationName, env.Name)
}

// noteView is what the note shows.
type noteView struct {
	Env        store.Environment
	EnvURL     string
	ProjectURL string // user-facing web URL of the project, for compare links
	// Newest is the newest deploy; Previous the newest successful one before
	// it at another SHA (nil when there is none).
	Newest, Previous *store.FeedbackDeploy
	LogURL           string // Newest's log
	DashboardURL     string // the environment's page on glenv's dashboard
}

// settledView reports whether the note shows an outcome rather than work in
// progress. An existing note is only edited for outcomes: that keeps a push
// to a merge request at one note edit.
func (v noteView) settled() bool {
	switch v.Env.State {
	case store.StateStopping:
		return false // on its way to deleted or inactive: show that instead
	case store.StateDeleted, store.StateInactive, store.StatePaused:
		return true
	}
	return v.Newest == nil || (v.Newest.State != store.ActivityPending && v.Newest.State != store.ActivityRunning)
}

// maxReason bounds the failure reason quoted in the note.
const maxReason = 4000

func (v noteView) body() string {
	var b strings.Builder
	env := v.Env
	fmt.Fprintf(&b, "%s\n", marker(env))
	head, state := v.headline()
	fmt.Fprintf(&b, "#### %s glenv environment `%s`: %s\n\n", head, env.Name, state)
	b.WriteString("| | |\n|---|---|\n")
	if env.State != store.StateDeleted && v.EnvURL != "" {
		fmt.Fprintf(&b, "| **URL** | %s |\n", v.EnvURL)
	}
	if env.State != store.StateDeleted && v.DashboardURL != "" {
		fmt.Fprintf(&b, "| **Dashboard** | [%s on glenv](%s) |\n", env.Name, v.DashboardURL)
	}
	fmt.Fprintf(&b, "| **State** | %s |\n", env.State)
	if env.DeployedSHA != "" && env.State != store.StateDeleted {
		fmt.Fprintf(&b, "| **Deployed** | %s |\n", v.commit(env.DeployedSHA))
	}
	if n := v.Newest; n != nil {
		if n.SHA != env.DeployedSHA || env.State == store.StateDeleted {
			fmt.Fprintf(&b, "| **Latest deploy** | %s (%s) |\n", v.commit(n.SHA), n.State)
		}
		if p := v.Previous; p != nil && p.SHA != n.SHA {
			fmt.Fprintf(&b, "| **Changed** | %s → %s%s |\n", v.commit(p.SHA), v.commit(n.SHA), v.compare(p.SHA, n.SHA))
		} else {
			b.WriteString("| **Changed** | first deploy |\n")
		}
		if v.LogURL != "" {
			fmt.Fprintf(&b, "| **Log** | [deploy log](%s) |\n", v.LogURL)
		}
		if n.State == store.ActivityFailed && env.State != store.StateDeleted {
			reason := strings.TrimSpace(n.Result)
			if len(reason) > maxReason {
				reason = reason[:maxReason] + "\n…"
			}
			fence := "```"
			for strings.Contains(reason, fence) {
				fence += "`"
			}
			fmt.Fprintf(&b, "\nThe deploy of %s failed:\n\n%s\n%s\n%s\n", v.commit(n.SHA), fence, reason, fence)
		}
	}
	return b.String()
}

// headline is an emoji and a few words for the environment's situation.
func (v noteView) headline() (string, string) {
	switch v.Env.State {
	case store.StateDeleted:
		return "🗑️", "deleted (the merge request was closed or merged)"
	case store.StateStopping:
		return "⏹️", "stopping"
	case store.StateInactive:
		return "⏸️", "stopped"
	case store.StatePaused:
		// Issue 17: paused while idle, woken by the next visit.
		return "💤", "paused while idle (the next visit wakes it)"
	}
	if v.Newest == nil {
		return "⏳", "waiting for a deploy"
	}
	sha := gitsha.Short(v.Newest.SHA)
	switch v.Newest.State {
	case store.ActivityPending:
		return "⏳", "deploy of `" + sha + "` queued"
	case store.ActivityRunning:
		return "🚀", "deploying `" + sha + "`"
	case store.ActivityComplete:
		return "✅", "`" + sha + "` is live"
	case store.ActivityFailed:
		return "❌", "deploy of `" + sha + "` failed"
	}
	return "⏭️", "deploy of `" + sha + "` was superseded"
}

func (v noteView) commit(sha string) string {
	if v.ProjectURL == "" {
		return "`" + gitsha.Short(sha) + "`"
	}
	return fmt.Sprintf("[`%s`](%s/-/commit/%s)", gitsha.Short(sha), v.ProjectURL, sha)
}

func (v noteView) compare(from, to string) string {
	if v.ProjectURL == "" {
		return ""
	}
	return fmt.Sprintf(" ([compare](%s/-/compare/%s...%s))", v.ProjectURL, from, to)
}

// newNoteView picks the newest deploy and the last successful one before it.
func newNoteView(env store.Environment, deploys []store.FeedbackDeploy) noteView {
	v := noteView{Env: env}
	if len(deploys) == 0 {
		return v
	}
	n := deploys[len(deploys)-1]
	v.Newest = &n
	for i := len(deploys) - 2; i >= 0; i-- {
		if d := deploys[i]; d.State == store.ActivityComplete && d.SHA != n.SHA {
			v.Previous = &d
			break
		}
	}
	return v
}

func hashBody(body string) string {
	sum := sha256.Sum256([]byte(body))
	return hex.EncodeToString(sum[:])
}
