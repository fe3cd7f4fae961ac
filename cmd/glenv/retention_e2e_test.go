package main_test

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// A deploy's log reads back through activity:log (whole, and with --follow,
// which ends with the activity), and the retention job glenv serve runs
// drops processed deliveries' bodies after --delivery-body-retention while
// their headers and results stay.
func TestDeployLogsReadBackAndRetentionDropsOldBodies(t *testing.T) {
	for name, db := range backends(t) {
		t.Run(name, func(t *testing.T) {
			gl := newGitLab(t)
			g := startGlenv(t, db(), "GLENV_DELIVERY_BODY_RETENTION=1s", "GLENV_RETENTION_INTERVAL=1s")
			var res integrationJSON
			g.mustJSON(&res, addArgs(gl)...)
			g.settle("app")
			if code, body := g.deliver("app", res.WebhookSecret, "Push Hook", pushPayload(t, gl.Project.ID, "main", sha("main-1"), sha("main-2")), ""); code != 202 {
				t.Fatalf("push: %d %s", code, body)
			}
			g.settle("app")

			var acts []struct {
				ID    int64  `json:"id"`
				State string `json:"state"`
			}
			g.apiGet("/api/v1/activities?integration=app&kind=deploy&limit=1", &acts)
			if len(acts) != 1 || acts[0].State != "complete" {
				t.Fatalf("deploy activities: %+v", acts)
			}
			id := fmt.Sprint(acts[0].ID)
			out := g.mustRun("activity:log", id)
			if !strings.Contains(out, "recorded main at "+sha("main-2")[:8]) {
				t.Fatalf("activity:log %s = %q", id, out)
			}
			if follow := g.mustRun("activity:log", id, "--follow"); follow != out {
				t.Fatalf("activity:log --follow of a finished activity = %q, want %q", follow, out)
			}

			type delivery struct {
				Status        string     `json:"status"`
				Headers       string     `json:"headers"`
				Result        string     `json:"result"`
				BodyDroppedAt *time.Time `json:"body_dropped_at"`
			}
			var ds []delivery
			waitFor(t, g, "the push's body dropped by retention", func() bool {
				ds = nil
				g.apiGet("/api/v1/deliveries?integration=app", &ds)
				return len(ds) > 0 && ds[0].BodyDroppedAt != nil
			})
			if d := ds[0]; d.Status != "processed" || !strings.Contains(d.Headers, "Push Hook") || d.Result == "" {
				t.Fatalf("retention took more than the body: %+v", d)
			}
		})
	}
}
