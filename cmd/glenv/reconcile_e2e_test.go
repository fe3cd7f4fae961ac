package main_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/glenv/glenv/internal/gitlabtest"
)

func (g *glenv) reconcile(integration string) {
	g.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, g.URL+"/api/v1/integrations/"+integration+"/reconcile", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		g.t.Fatalf("reconcile: %d\n%s", resp.StatusCode, g.tail())
	}
	g.settle(integration)
}

func TestReconcileRepairsWhatLostEventsLeftBehind(t *testing.T) {
	g, gl, _ := connected(t, "")
	pid := gl.Project.ID
	// Events GitLab never delivered: a new branch, a moved head, a deleted branch, an MR opened and one closed.
	gl.SetBranch(pid, "lost-branch", sha("lost"))
	gl.SetBranch(pid, "main", sha("main-2"))
	gl.DeleteBranch(pid, "feature/login")
	gl.SetBranch(pid, "feature-y", sha("y1"))
	gl.SetMergeRequest(pid, gitlabtest.MergeRequest{IID: 3, Title: "Y", SourceBranch: "feature-y", TargetBranch: "main", SHA: sha("y1"), State: "opened", UpdatedAt: time.Now()})
	g.reconcile("app")
	envs := g.envs("app")
	if e := envs["lost-branch"]; e.State != "inactive" || e.HeadSHA != sha("lost") || e.Parent != "main" {
		t.Errorf("lost-branch = %+v", e)
	}
	if e := envs["main"]; e.HeadSHA != sha("main-2") || e.DeployedSHA != sha("main-2") {
		t.Errorf("main = %+v: want the new head deployed", e)
	}
	if _, ok := envs["feature/login"]; ok {
		t.Error("the deleted branch's environment survived")
	}
	if e := envs["mr-3"]; e.State != "active" || e.DeployedSHA != sha("y1") {
		t.Errorf("mr-3 = %+v", e)
	}
	gl.SetMergeRequest(pid, gitlabtest.MergeRequest{IID: 3, Title: "Y", SourceBranch: "feature-y", TargetBranch: "main", SHA: sha("y1"), State: "merged", UpdatedAt: time.Now()})
	g.reconcile("app")
	if _, ok := g.envs("app")["mr-3"]; ok {
		t.Error("the merged MR's environment survived")
	}
	// A second reconcile with nothing changed changes nothing.
	var before []struct{ ID int64 }
	g.apiGet("/api/v1/activities?integration=app&limit=1000", &before)
	g.reconcile("app")
	var after []struct{ ID int64 }
	g.apiGet("/api/v1/activities?integration=app&limit=1000", &after)
	if len(after) != len(before) {
		t.Errorf("an idle reconcile recorded %d activities", len(after)-len(before))
	}
}

func TestReconcileUsesAHandfulOfPaginatedCalls(t *testing.T) {
	g, gl, _ := connected(t, "")
	for i := 0; i < 250; i++ {
		gl.SetBranch(gl.Project.ID, fmt.Sprintf("many-%03d", i), sha(fmt.Sprint("m", i)))
	}
	gl.ResetCalls()
	g.reconcile("app")
	// The hook and token health check (internal/feedback/health.go) runs
	// at start and periodically, beside the reconcile: its reads of the
	// webhook and the token are not the reconcile's (a CI run once counted
	// them in, 7 calls).
	var calls []gitlabtest.Call
	for _, c := range gl.Calls() {
		if c.Method == http.MethodGet && (strings.HasSuffix(c.Path, "/personal_access_tokens/self") || strings.Contains(c.Path, "/hooks/")) {
			continue
		}
		calls = append(calls, c)
	}
	if len(calls) > 6 {
		var paths []string
		for _, c := range calls {
			paths = append(paths, c.Method+" "+c.Path+"?"+c.Query)
		}
		t.Fatalf("reconcile of 252 branches made %d GitLab calls:\n%s", len(calls), strings.Join(paths, "\n"))
	}
	if n := len(g.envs("app")); n != 252 {
		t.Fatalf("environments = %d, want 252", n)
	}
}

func TestPeriodicReconcileRunsWithoutBeingAsked(t *testing.T) {
	gl := newGitLab(t)
	g := startGlenv(t, "", "GLENV_RECONCILE_INTERVAL=1s")
	g.mustRun(addArgs(gl)...)
	gl.SetBranch(gl.Project.ID, "appears-later", sha("later"))
	g.waitEnv("app", "appears-later", func(e envJSON, ok bool) bool { return ok && e.HeadSHA == sha("later") })
}
