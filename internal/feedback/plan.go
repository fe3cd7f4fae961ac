package feedback

import (
	"fmt"
	"strings"

	"github.com/glenv/glenv/internal/gitlab"
	"github.com/glenv/glenv/internal/gitsha"
	"github.com/glenv/glenv/internal/store"
)

// Pure decisions: what GitLab should show for a deploy activity. No I/O.

// skipped is the deployment status of a deploy that gets no GitLab
// deployment (superseded before it ran, or GitLab refused its ref).
const skipped = "skipped"

// commitState is the commit status GitLab shows for an activity state.
func commitState(activity string) string {
	switch activity {
	case store.ActivityPending:
		return "pending"
	case store.ActivityRunning:
		return "running"
	case store.ActivityComplete:
		return "success"
	case store.ActivityFailed:
		return "failed"
	default:
		return "canceled"
	}
}

// deploymentState is the GitLab deployment status for an activity state;
// "" while it waits to start (GitLab's API cannot create a deployment that
// has not started).
func deploymentState(activity string) string {
	if activity == store.ActivityPending {
		return ""
	}
	if s := commitState(activity); s != "pending" {
		return s
	}
	return ""
}

// final reports whether a commit status or deployment status is final:
// GitLab never moves it on, and repeating it would create a second one.
func final(state string) bool {
	switch state {
	case "success", "failed", "canceled", skipped:
		return true
	}
	return false
}

// settled reports whether GitLab shows all of deploy d's current state.
func settled(d store.FeedbackDeploy) bool {
	if d.StatusSent != commitState(d.State) {
		return false
	}
	want := deploymentState(d.State)
	return want == "" || d.DeploymentStatus == want || d.DeploymentStatus == skipped
}

// statusName is the commit status and GitLab environment name of a glenv environment.
func statusName(env store.Environment) string { return "glenv/" + env.Name }

// gitlabEnvName is statusName made a valid GitLab environment name: letters,
// digits and `_/${}. -`, not ending in '/', at most 255 characters.
func gitlabEnvName(env store.Environment) string {
	name := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', strings.ContainsRune("_/${}. -", r):
			return r
		}
		return '-'
	}, statusName(env))
	if len(name) > 255 {
		name = name[:255]
	}
	return strings.TrimRight(name, "/")
}

// statusFor is the commit status a deploy shows: target_url is the
// environment, or its log when the deploy failed.
func statusFor(env store.Environment, d store.FeedbackDeploy, envURL, logURL string) gitlab.CommitStatus {
	st := gitlab.CommitStatus{SHA: d.SHA, State: commitState(d.State), Ref: env.Ref, Name: statusName(env), TargetURL: envURL}
	sha := gitsha.Short(d.SHA)
	switch d.State {
	case store.ActivityPending:
		st.Description = fmt.Sprintf("Queued: glenv will deploy %s to %s", sha, env.Name)
	case store.ActivityRunning:
		st.Description = fmt.Sprintf("Deploying %s to %s", sha, env.Name)
	case store.ActivityComplete:
		st.Description = fmt.Sprintf("Deployed %s: %s is live", sha, env.Name)
	case store.ActivityFailed:
		st.Description = "Deploy failed: " + oneLine(d.Result)
		st.TargetURL = logURL
	default:
		st.Description = "Not deployed: " + oneLine(d.Result)
	}
	return st
}

func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return "no reason recorded"
	}
	return strings.Join(strings.Fields(s), " ")
}
