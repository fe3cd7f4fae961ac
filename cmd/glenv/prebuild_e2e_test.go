package main_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glenv/glenv/internal/gitlabtest"
)

type prebuildJSON struct {
	SHA    string `json:"sha"`
	Status string `json:"status"`
	Ready  bool   `json:"ready"`
}

// prebuildActivity is the newest prebuild activity of environment id at sha.
func (g *glenv) prebuildActivity(envID int64, sha string) (activityJSON, bool) {
	var acts []activityJSON
	g.apiGet(fmt.Sprintf("/api/v1/activities?kind=prebuild&environment_id=%d", envID), &acts)
	for _, a := range acts {
		if a.SHA == sha {
			return a, true
		}
	}
	return activityJSON{}, false
}

func (g *glenv) waitPrebuild(envID int64, sha string, cond func(a activityJSON) bool) activityJSON {
	g.t.Helper()
	var got activityJSON
	waitFor(g.t, g, "the prebuild of "+sha[:8], func() bool {
		a, ok := g.prebuildActivity(envID, sha)
		got = a
		return ok && cond(a)
	})
	return got
}

// Issue 17, prebuilds: off by default; with --prebuild-branches a push to an
// inactive branch environment builds its head without running it (the
// environment stays inactive, nothing serves), environment:get says the
// prebuild is ready for the head, and activating the environment reuses
// the build (its deploy log shows no build step). A newer push supersedes a
// prebuild that is still building.
func TestPrebuildsBuildInactiveBranchesAndActivationReusesTheBuild(t *testing.T) {
	g, gl, secret := processWorld(t, "")
	pid := gl.Project.ID
	static, _ := filepath.Abs("../../examples/static")
	push := func(branch, before string, files map[string]string) string {
		t.Helper()
		sha := gl.Commit(t, pid, gitlabtest.Commit{Branch: branch, Dir: static, Files: files})
		if code, body := g.deliver("app", secret, "Push Hook", pushPayload(t, pid, branch, before, sha), ""); code != 202 {
			t.Fatalf("push to %s: %d %s", branch, code, body)
		}
		return sha
	}
	buildFiles := func(steps int, page string) map[string]string {
		return map[string]string{".glenv.yml": slowBuild(steps), "index.html": page}
	}

	// Off by default: a new branch is recorded, not built.
	off := push("quiet", zeroSHA, buildFiles(1, "<p>quiet</p>\n"))
	quiet := g.waitEnv("app", "quiet", func(e envJSON, ok bool) bool { return ok && e.State == "inactive" && e.HeadSHA == off })

	// The option is checked and shown.
	if _, stderr, code := g.run("", "integration:update", "app", "--prebuild-branches=maybe"); code == 0 || !strings.Contains(stderr, "prebuild-branches") {
		t.Fatalf("--prebuild-branches=maybe: exit %d %q", code, stderr)
	}
	var upd struct {
		Integration struct {
			PrebuildBranches bool `json:"prebuild_branches"`
		} `json:"integration"`
	}
	g.mustJSON(&upd, "integration:update", "app", "--prebuild-branches")
	if !upd.Integration.PrebuildBranches {
		t.Fatalf("prebuild_branches after the update: %+v", upd)
	}

	// A new branch is prebuilt: built, not run, still inactive.
	sha1 := push("feature", zeroSHA, buildFiles(3, "<p>feature 1</p>\n"))
	feature := g.waitEnv("app", "feature", func(e envJSON, ok bool) bool { return ok && e.HeadSHA == sha1 })
	a := g.waitPrebuild(feature.ID, sha1, func(a activityJSON) bool { return a.State == "complete" || a.State == "failed" })
	if a.State != "complete" {
		t.Fatalf("the prebuild of %s: %+v\n%s", sha1[:8], a, g.activityLog(a.ID))
	}
	if log := g.activityLog(a.ID); !strings.Contains(log, "building step 3") || !strings.Contains(log, "prebuilt") {
		t.Fatalf("the prebuild's log shows no build:\n%s", log)
	}
	var got struct {
		State    string        `json:"state"`
		Prebuild *prebuildJSON `json:"prebuild"`
	}
	g.mustJSON(&got, "environment:get", "feature", "-i", "app")
	if got.State != "inactive" || got.Prebuild == nil || !got.Prebuild.Ready || got.Prebuild.SHA != sha1 || got.Prebuild.Status != "ready" {
		t.Fatalf("environment:get after the prebuild: %+v %+v", got, got.Prebuild)
	}
	if out := g.mustRun("environment:get", "feature", "-i", "app"); !strings.Contains(out, "ready for the head") {
		t.Fatalf("environment:get's table does not say the prebuild is ready:\n%s", out)
	}
	if code, body, _ := g.getEnv("feature--app"); code == 200 && strings.Contains(body, "feature 1") {
		t.Fatalf("a prebuilt environment serves its app: %d %q", code, body)
	}
	if acts := g.prebuildCount(quiet.ID); acts != 0 {
		t.Fatalf("the branch pushed before --prebuild-branches was prebuilt (%d)", acts)
	}

	// Activation reuses the build: no build step runs.
	g.mustRun("environment:activate", "feature", "-i", "app")
	g.waitEnvLong("app", "feature", func(e envJSON, ok bool) bool { return ok && e.State == "active" && e.DeployedSHA == sha1 })
	d, _ := g.deployActivity(feature.ID, sha1)
	if log := g.activityLog(d.ID); !strings.Contains(log, "reusing build") || strings.Contains(log, "building step") {
		t.Fatalf("the activation after a prebuild built again:\n%s", log)
	}
	if code, body, _ := g.getEnv("feature--app"); code != 200 || !strings.Contains(body, "feature 1") {
		t.Fatalf("feature after activation: %d %q", code, body)
	}

	// A newer push supersedes a prebuild still building.
	n1 := push("next", zeroSHA, buildFiles(200, "<p>next 1</p>\n"))
	next := g.waitEnv("app", "next", func(e envJSON, ok bool) bool { return ok && e.HeadSHA == n1 })
	first := g.waitPrebuild(next.ID, n1, func(a activityJSON) bool {
		return a.State == "running" && strings.Contains(g.activityLog(a.ID), "building step")
	})
	n2 := push("next", n1, buildFiles(1, "<p>next 2</p>\n"))
	g.waitPrebuild(next.ID, n2, func(a activityJSON) bool { return a.State == "complete" })
	old := g.waitPrebuild(next.ID, n1, func(a activityJSON) bool { return a.State != "running" && a.State != "pending" })
	if old.ID != first.ID || old.State != "cancelled" {
		t.Fatalf("the superseded prebuild of %s: %+v", n1[:8], old)
	}
	g.mustJSON(&got, "environment:get", "next", "-i", "app")
	if got.State != "inactive" || got.Prebuild == nil || !got.Prebuild.Ready || got.Prebuild.SHA != n2 {
		t.Fatalf("environment:get after the superseding push: %+v %+v", got, got.Prebuild)
	}
}

func (g *glenv) prebuildCount(envID int64) int {
	var acts []activityJSON
	g.apiGet(fmt.Sprintf("/api/v1/activities?kind=prebuild&environment_id=%d", envID), &acts)
	return len(acts)
}
