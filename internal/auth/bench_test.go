package auth_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/glenv/glenv/internal/auth"
	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/store/storetest"
)

// BenchmarkEnvGate is what the private-preview gate adds to every request
// the proxy serves for a public environment, next to the cheapest gate
// possible (one that passes the request on) as the same-run baseline.
func BenchmarkEnvGate(b *testing.B) {
	st := storetest.Open(b, storetest.Backends()[0])
	in := store.Integration{Name: "app", Type: "gitlab", BaseURL: "https://gitlab.example.com", UserFacingURL: "https://gitlab.example.com",
		GitLabProject: "g/app", ProjectID: 1, ProjectPath: "g/app", DefaultBranch: "main", TokenSealed: "x", WebhookSecretSealed: "x", Space: "root"}
	if err := store.CreateIntegration(ctx(), st.DB, &in); err != nil {
		b.Fatal(err)
	}
	if _, err := st.DB.Exec(`INSERT INTO environments (integration_id, integration_name, project_id, name, slug, host, kind, ref, parent,
		head_sha, deployed_sha, state, tier, external_url, description, created_at, updated_at)
		VALUES ($1,'app',1,'main','main','main--app','branch','main','','','','active','production','','',0,0)`, in.ID); err != nil {
		b.Fatal(err)
	}
	svc := &auth.Service{Store: st, Log: quiet()}
	pass := func(w http.ResponseWriter, r *http.Request, label string) (*http.Request, bool) { return r, true }
	for _, c := range []struct {
		name string
		gate func(http.ResponseWriter, *http.Request, string) (*http.Request, bool)
	}{{"baseline-pass", pass}, {"public-environment", svc.EnvGate}} {
		b.Run(c.name, func(b *testing.B) {
			w := httptest.NewRecorder()
			r := httptest.NewRequest("GET", "http://main--app.localhost/", nil)
			r.Header.Set("Cookie", "mine=1")
			for b.Loop() {
				if _, ok := c.gate(w, r, "main--app"); !ok {
					b.Fatal("refused")
				}
			}
		})
	}
}
