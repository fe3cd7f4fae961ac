package feedback_test

import (
	"strings"
	"testing"

	"github.com/glenv/glenv/internal/feedback"
	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/store/storetest"
)

// Issue 14: the MR note and the statuses of a deploy in progress link to
// the environment's page on glenv's dashboard, as well as to the app.
func TestGitLabLinksToTheDashboardAsWellAsTheApp(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		page := func(e store.Environment) string {
			return "http://glenv/environments/" + e.IntegrationName + "/" + e.Name
		}
		w := newWorld(t, st, func(d *feedback.Deps) { d.DashboardURL = page })
		env, d1 := w.openMR(7, "feature", sha("a"))
		d1.start()
		w.sync(env)
		running := w.gl.Statuses(w.pid, sha("a"))
		if len(running) == 0 || running[len(running)-1].TargetURL != page(*env) {
			t.Fatalf("a running deploy's status should point at its dashboard page, got %+v", running)
		}
		d1.succeed()
		w.sync(env)
		done := w.gl.Statuses(w.pid, sha("a"))
		if got := done[len(done)-1]; got.Status != "success" || strings.Contains(got.TargetURL, "/environments/") {
			t.Errorf("a deployed status should point at the app, got %+v", got)
		}
		notes := w.notes(7)
		if len(notes) != 1 || !strings.Contains(notes[0].Body, "| **Dashboard** | [mr-7 on glenv]("+page(*env)+") |") {
			t.Fatalf("the note should link the dashboard page, got %+v", notes)
		}
	})
}
