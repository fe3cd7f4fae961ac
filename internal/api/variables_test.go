package api_test

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/glenv/glenv/internal/api"
	"github.com/glenv/glenv/internal/secret"
	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/store/storetest"
	"github.com/glenv/glenv/internal/variable"
	"github.com/glenv/glenv/internal/variables"
)

const (
	readerToken = "glenv_api_test_reader_0123456789"
	writerToken = "glenv_api_test_writer_0123456789"
	secretValue = "hunter2-but-longer-0xC0FFEE"
)

// variablesAPI serves /api/v1 with the variables service over s, an
// integration "app" with environments main and feature/login, and tokens
// of an admin, a user with write in root and one with read.
func variablesAPI(t *testing.T, s *store.Store) *httptest.Server {
	t.Helper()
	ctx := context.Background()
	key := make([]byte, 32)
	rand.Read(key)
	box, err := secret.NewBox(key)
	if err != nil {
		t.Fatal(err)
	}
	in := store.Integration{Name: "app", Type: "gitlab", BaseURL: "http://gitlab.invalid", UserFacingURL: "http://gitlab.invalid",
		GitLabProject: "group/app", ProjectID: 7, ProjectPath: "group/app", DefaultBranch: "main", TokenSealed: box.Seal("t"),
		WebhookSecretSealed: box.Seal("w"), Space: "root"}
	if err := store.CreateIntegration(ctx, s.DB, &in); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"main", "feature/login"} {
		e := store.Environment{IntegrationID: in.ID, IntegrationName: "app", ProjectID: 7, Name: name, Slug: name, Host: strings.ReplaceAll(name, "/", "-") + "--app",
			Kind: "branch", Ref: name, State: store.StateInactive}
		if err := store.SaveEnvironment(ctx, s.DB, &e); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.EnsureAPIToken(ctx, s.DB, "test", store.RoleAdmin, token); err != nil {
		t.Fatal(err)
	}
	for tok, role := range map[string]string{readerToken: "read", writerToken: "write"} {
		u, err := store.CreateUser(ctx, s.DB, store.User{Username: role + "-user", Name: role})
		if err != nil {
			t.Fatal(err)
		}
		if err := store.PutGrant(ctx, s.DB, store.Grant{UserID: u.ID, Space: "root", Role: role}); err != nil {
			t.Fatal(err)
		}
		if _, err := store.CreateUserToken(ctx, s.DB, store.APIToken{Name: role, Role: store.RoleMember, UserID: u.ID}, tok); err != nil {
			t.Fatal(err)
		}
	}
	a := &api.API{Store: s, Log: slog.New(slog.DiscardHandler), Variables: &variables.Service{Store: s, Box: box}}
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	return srv
}

func call(t *testing.T, srv *httptest.Server, tok, method, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestVariablesAPIChecksRolesAndNeverAnswersASensitiveValue(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		srv := variablesAPI(t, s)
		integ := "/api/v1/integrations/app/variables"
		feature := "/api/v1/integrations/app/environments/" + url.PathEscape("feature/login") + "/variables"
		var answers []string
		steps := []struct {
			name, tok, method, path, body string
			code                          int
			contains                      string
		}{
			{"an admin creates a sensitive integration variable", token, "POST", integ,
				`{"name":"API_KEY","value":"` + secretValue + `","sensitive":true}`, 201, `"value_set": true`},
			{"a writer may not change the integration's variables", writerToken, "POST", integ,
				`{"name":"MODE","value":"x"}`, 403, "admin"},
			{"a writer creates a variable of one environment (a branch name with a slash)", writerToken, "POST", feature,
				`{"name":"MODE","value":"feature","inheritable":false}`, 201, `"environment": "feature/login"`},
			{"a reader may not change an environment's variables", readerToken, "PATCH", feature + "/MODE",
				`{"value":"y"}`, 403, "write"},
			{"a reader lists the integration's variables", readerToken, "GET", integ, "", 200, `"sensitive": true`},
			{"a reader sees non-sensitive values", readerToken, "GET", feature + "/MODE", "", 200, `"value": "feature"`},
			{"an environment lists what it resolves to, with levels", readerToken, "GET", feature, "", 200, `"level": "integration"`},
			{"a sensitive value is not answered to an admin either", token, "GET", integ + "/API_KEY", "", 200, `"value_set": true`},
			{"a rotated sensitive value is not echoed", token, "PATCH", integ + "/API_KEY", `{"value":"` + secretValue + `-2"}`, 200, `"sensitive": true`},
			{"a bad name names the field and the rule", token, "POST", integ, `{"name":"API-KEY","value":"x"}`, 400, "POSIX"},
			{"an unknown environment names the field", writerToken, "POST", "/api/v1/integrations/app/environments/nope/variables",
				`{"name":"K","value":"x"}`, 404, `"field": "environment"`},
			{"an unknown integration is not found", token, "GET", "/api/v1/integrations/nope/variables", "", 404, "not found"},
			{"a value over 64 KiB names the field", token, "POST", integ,
				`{"name":"BIG","value":"` + strings.Repeat("x", variable.MaxValueBytes+1) + `"}`, 400, "value"},
			{"a value far over the bound is refused before parsing", token, "POST", integ,
				`{"name":"BIG","value":"` + strings.Repeat("x", 8*variable.MaxValueBytes) + `"}`, 400, "64 KiB"},
			{"an unknown field is refused", token, "POST", integ, `{"name":"K","value":"x","secret":true}`, 400, "secret"},
			{"a missing variable names what to do", token, "GET", integ + "/NOPE", "", 404, "variable:list"},
			{"an admin deletes it; the answer hides the value", token, "DELETE", integ + "/API_KEY", "", 200, `"sensitive": true`},
		}
		for _, st := range steps {
			code, body := call(t, srv, st.tok, st.method, st.path, st.body)
			answers = append(answers, body)
			if code != st.code || !strings.Contains(body, st.contains) {
				t.Errorf("%s: %d %.300s; want %d with %q", st.name, code, body, st.code, st.contains)
			}
		}
		for _, a := range answers {
			if strings.Contains(a, secretValue) {
				t.Fatalf("an answer shows the sensitive value: %.300s", a)
			}
		}
		// Changes are audited, without their values.
		code, audit := call(t, srv, token, "GET", "/api/v1/audit", "")
		if code != 200 || !strings.Contains(audit, "variable:create") || !strings.Contains(audit, "variable:app/feature/login/MODE") || strings.Contains(audit, secretValue) {
			t.Fatalf("audit %d: %.600s", code, audit)
		}
	})
}
