package feedback_test

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/glenv/glenv/internal/feedback"
	"github.com/glenv/glenv/internal/gitlab"
	"github.com/glenv/glenv/internal/gitlabtest"
	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/store/storetest"
)

// gauges reads the Health collector's samples: name{integration} → value.
func gauges(t *testing.T, h *feedback.Health) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(h)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += "{" + l.GetName() + "=" + l.GetValue() + "}"
			}
			out[key] = m.GetGauge().GetValue()
		}
	}
	return out
}

func TestHookAndTokenHealth(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		health := feedback.NewHealth()
		w := newWorld(t, st, func(d *feedback.Deps) { d.Health = health })
		c, err := gitlab.New(w.gl.URL, w.in.TokenSealed, gitlab.Options{})
		if err != nil {
			t.Fatal(err)
		}
		hook, err := c.EnsureHook(w.ctx, w.pid, publicURL+"/hooks/gitlab/app", "s3cret")
		if err != nil {
			t.Fatal(err)
		}
		w.in.HookID = hook.ID
		update := func() {
			if err := store.UpdateIntegration(w.ctx, w.st.DB, &w.in); err != nil {
				t.Fatal(err)
			}
		}
		update()
		const hookGauge, tokenGauge = "glenv_integration_hook_disabled{integration=app}", "glenv_integration_token_expiry_days{integration=app}"

		t.Run("a hook GitLab disabled is re-enabled with a test delivery", func(t *testing.T) {
			until := time.Now().Add(10 * time.Minute)
			w.gl.SetHookAlert(w.pid, hook.ID, "temporarily_disabled", &until)
			if _, err := w.syncer.CheckHealth(w.ctx); err != nil {
				t.Fatal(err)
			}
			if got := w.gl.Hooks(w.pid)[0].AlertStatus; got != "executable" {
				t.Errorf("hook alert_status %q after the check, want executable", got)
			}
			if !strings.Contains(w.logs.String(), "re-enabled it with a test delivery") {
				t.Errorf("the re-enable is not logged:\n%s", w.logs)
			}
			g := gauges(t, health)
			if v, ok := g[hookGauge]; !ok || v != 0 {
				t.Errorf("%s = %v (present %v), want 0", hookGauge, v, ok)
			}
			if _, ok := g[tokenGauge]; ok {
				t.Errorf("a token without expiry must have no %s", tokenGauge)
			}
		})

		t.Run("a token that expires within 30 days is warned about and measured", func(t *testing.T) {
			exp := time.Now().Add(10 * 24 * time.Hour)
			w.in.TokenSealed = w.gl.AddToken(gitlabtest.Token{UserID: w.bot.ID, Scopes: []string{"api"}, ExpiresAt: &exp})
			update()
			if _, err := w.syncer.CheckHealth(w.ctx); err != nil {
				t.Fatal(err)
			}
			if v := gauges(t, health)[tokenGauge]; v < 9 || v > 10 {
				t.Errorf("%s = %v, want about 10", tokenGauge, v)
			}
			if !strings.Contains(w.logs.String(), "token expires soon") {
				t.Errorf("no expiry warning:\n%s", w.logs)
			}
		})

		t.Run("a missing hook shows in the gauge and names the fix", func(t *testing.T) {
			if err := c.DeleteHook(w.ctx, w.pid, hook.ID); err != nil {
				t.Fatal(err)
			}
			res, err := w.syncer.CheckHealth(w.ctx)
			if err != nil {
				t.Fatal(err)
			}
			if g := gauges(t, health); g[hookGauge] != 1 {
				t.Errorf("gauges %v: want the hook disabled (1)", g)
			}
			if st := res["app"]; !strings.Contains(st.HookProblem, "integration:validate app") {
				t.Errorf("hook problem %q: want the fix named", st.HookProblem)
			}
		})

		t.Run("a rejected token shows as 0 days", func(t *testing.T) {
			w.in.TokenSealed = w.gl.AddToken(gitlabtest.Token{UserID: w.bot.ID, Scopes: []string{"api"}, Revoked: true})
			update()
			res, err := w.syncer.CheckHealth(w.ctx)
			if err != nil {
				t.Fatal(err)
			}
			if g := gauges(t, health); g[tokenGauge] != 0 {
				t.Errorf("gauges %v: want the token at 0 days", g)
			}
			if st := res["app"]; !st.TokenRejected {
				t.Errorf("health %+v: want a rejected token", st)
			}
		})
	})
}
