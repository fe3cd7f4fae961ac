package feedback

import (
	"strings"
	"testing"

	"github.com/glenv/glenv/internal/gitlab"
	"github.com/glenv/glenv/internal/store"
)

func TestWhatGitLabShowsForADeploy(t *testing.T) {
	for _, c := range []struct {
		activity, status, deployment string
	}{
		{store.ActivityPending, "pending", ""}, // GitLab's API cannot create a deployment that has not started
		{store.ActivityRunning, "running", "running"},
		{store.ActivityComplete, "success", "success"},
		{store.ActivityFailed, "failed", "failed"},
		{store.ActivityCancelled, "canceled", "canceled"}, // superseded
	} {
		if got := commitState(c.activity); got != c.status {
			t.Errorf("%s: commit status %q, want %q", c.activity, got, c.status)
		}
		if got := deploymentState(c.activity); got != c.deployment {
			t.Errorf("%s: deployment %q, want %q", c.activity, got, c.deployment)
		}
	}
}

func TestADeployIsSettledWhenGitLabShowsAllOfIt(t *testing.T) {
	for _, c := range []struct {
		name string
		d    store.FeedbackDeploy
		want bool
	}{
		{"queued, pending sent", store.FeedbackDeploy{State: "pending", StatusSent: "pending"}, true},
		{"running without its deployment", store.FeedbackDeploy{State: "running", StatusSent: "running"}, false},
		{"complete, all sent", store.FeedbackDeploy{State: "complete", StatusSent: "success", DeploymentStatus: "success"}, true},
		{"superseded before it ran", store.FeedbackDeploy{State: "cancelled", StatusSent: "canceled", DeploymentStatus: skipped}, true},
		{"a final status whose answer was lost", store.FeedbackDeploy{State: "complete", StatusTrying: "success", DeploymentStatus: "success"}, false},
	} {
		if got := settled(c.d); got != c.want {
			t.Errorf("%s: settled %v, want %v", c.name, got, c.want)
		}
	}
}

func TestGitLabEnvironmentNames(t *testing.T) {
	for _, c := range []struct{ env, want string }{
		{"mr-7", "glenv/mr-7"},
		{"feature/login", "glenv/feature/login"},
		{"fix+ümlaut@x", "glenv/fix--mlaut-x"},
		{"trailing/", "glenv/trailing"},
		{strings.Repeat("a", 300), "glenv/" + strings.Repeat("a", 249)},
	} {
		if got := gitlabEnvName(store.Environment{Name: c.env}); got != c.want {
			t.Errorf("%q: %q, want %q", c.env, got, c.want)
		}
	}
}

func TestStatusFieldsAreCutNotRejected(t *testing.T) {
	if got := gitlab.Cut(strings.Repeat("é", 300), 255); len([]rune(got)) != 255 || !strings.HasSuffix(got, "…") {
		t.Errorf("cut to %d runes (%q…)", len([]rune(got)), got[:10])
	}
	if got := gitlab.Cut("short", 255); got != "short" {
		t.Errorf("a short value changed: %q", got)
	}
	env := store.Environment{Name: "mr-7", Ref: "feature"}
	failed := statusFor(env, store.FeedbackDeploy{SHA: strings.Repeat("a", 40), State: store.ActivityFailed,
		Result: ".glenv.yml: key \"run\" is required\nadd run: <command>"}, "http://env/", "http://glenv/log")
	if failed.TargetURL != "http://glenv/log" || failed.Description != `Deploy failed: .glenv.yml: key "run" is required add run: <command>` {
		t.Errorf("failed status %+v: want the log and the reason on one line", failed)
	}
}

func TestTheNoteIsEditedForOutcomesOnly(t *testing.T) {
	for _, c := range []struct {
		envState, newest string
		want             bool
	}{
		{store.StateDeploying, store.ActivityRunning, false},
		{store.StateBuilding, store.ActivityPending, false},
		{store.StateActive, store.ActivityComplete, true},
		{store.StateFailed, store.ActivityFailed, true},
		{store.StateStopping, store.ActivityComplete, false},
		{store.StateDeleted, store.ActivityCancelled, true},
	} {
		v := noteView{Env: store.Environment{State: c.envState}, Newest: &store.FeedbackDeploy{State: c.newest}}
		if got := v.settled(); got != c.want {
			t.Errorf("%s/%s: edit %v, want %v", c.envState, c.newest, got, c.want)
		}
	}
}
