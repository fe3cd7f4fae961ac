package envapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/glenv/glenv/internal/envapi"
	"github.com/glenv/glenv/internal/gitlabtest"
	"github.com/glenv/glenv/internal/jobs"
	"github.com/glenv/glenv/internal/slug"
	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/store/storetest"
)

// TestGoldenCases holds glenv, on every database, and the GitLab double to
// GitLab's recorded answers in testdata/golden (see golden_test.go).
func TestGoldenCases(t *testing.T) {
	cases := loadGoldenCases(t)
	names := make([]string, 0, len(cases))
	for n := range cases {
		names = append(names, n)
	}
	slices.Sort(names)
	run := func(t *testing.T, tg goldenTarget) {
		for _, n := range names {
			t.Run(n, func(t *testing.T) { runGolden(t, tg, cases[n]) })
		}
	}
	for _, b := range storetest.Backends() {
		t.Run("glenv-"+b.Name, func(t *testing.T) { run(t, glenvGolden(t, b)) })
	}
	t.Run("double", func(t *testing.T) { run(t, doubleGolden(t)) })
}

// glenvGolden is glenv on a fresh store; each case gets an integration of
// its own, connecting project 1000+n at group/app-n.
func glenvGolden(t *testing.T, b storetest.Backend) goldenTarget {
	s := storetest.Open(t, b)
	g := startGlenv(t, s, jobs.RecordRuntime{})
	ctx := context.Background()
	byProject := map[int64]store.Integration{}
	n := 0
	newProject := func(t *testing.T) (int64, string) {
		n++
		in := store.Integration{Name: fmt.Sprintf("p%d", n), Type: "gitlab", BaseURL: "https://gitlab.example.com",
			UserFacingURL: "https://gitlab.example.com", GitLabProject: fmt.Sprintf("group/app-%d", n),
			ProjectID: int64(1000 + n), ProjectPath: fmt.Sprintf("group/app-%d", n), DefaultBranch: "main",
			TokenSealed: "sealed", WebhookSecretSealed: "sealed", Space: "root"}
		if err := store.CreateIntegration(ctx, s.DB, &in); err != nil {
			t.Fatal(err)
		}
		byProject[in.ProjectID] = in
		return in.ProjectID, in.ProjectPath
	}
	save := func(t *testing.T, in store.Integration, name, kind, state string) int64 {
		e := store.Environment{IntegrationID: in.ID, IntegrationName: in.Name, ProjectID: in.ProjectID, Name: name,
			Slug: slug.Environment(name), Kind: kind, Ref: name, State: state, Tier: "production"}
		e.Host = slug.Host(e.Slug, in.Name)
		if err := store.SaveEnvironment(ctx, s.DB, &e); err != nil {
			t.Fatal(err)
		}
		return e.ID
	}
	exec := func(t *testing.T, q string, args ...any) {
		if _, err := s.DB.ExecContext(ctx, q, args...); err != nil {
			t.Fatal(err)
		}
	}
	fixture := func(t *testing.T, pid int64, st goldenStep, ids map[string]int64) {
		switch st.Fixture {
		case "stopping":
			exec(t, `UPDATE environments SET state = $1 WHERE id = $2`, store.StateStopping, ids[st.Env])
		case "age":
			at := time.Now().AddDate(0, 0, -st.Days).UnixMicro()
			exec(t, `UPDATE environments SET created_at = $1, updated_at = $1 WHERE id = $2`, at, ids[st.Env])
			// Its GitLab attributes are the same environment's still (they are
			// keyed by id and creation time, so a reused id starts afresh).
			exec(t, `UPDATE envapi_environments SET environment_created_at = $1 WHERE environment_id = $2`, at, ids[st.Env])
		case "unstoppable":
			// The default branch's environment, which glenv never stops.
			ids["unstoppable"] = save(t, byProject[pid], "main", "branch", store.StateActive)
		case "deployed":
			a := store.Activity{IntegrationName: byProject[pid].Name, EnvironmentID: ids[st.Env], EnvironmentName: st.Env,
				Kind: store.ActivityDeploy, State: store.ActivityPending, SHA: "0123456789abcdef0123456789abcdef01234567"}
			if err := store.InsertActivity(ctx, s.DB, &a); err != nil {
				t.Fatal(err)
			}
			if err := store.SetActivityState(ctx, s.DB, a.ID, store.ActivityComplete, ""); err != nil {
				t.Fatal(err)
			}
		case "foreign":
			other, _ := newProject(t)
			ids[st.Env] = save(t, byProject[other], st.Env, envapi.KindManual, store.StateActive)
		default:
			t.Fatalf("unknown fixture %q", st.Fixture)
		}
	}
	// A Reporter and a Developer: people with glenv's read and write roles
	// (auth.RoleFromAccessLevel), through tokens of their own.
	asRole := map[string]string{}
	for as, role := range map[string]string{"reporter": "read", "developer": "write"} {
		u, err := store.CreateUser(ctx, s.DB, store.User{Username: as, Name: as})
		if err != nil {
			t.Fatal(err)
		}
		if err := store.PutGrant(ctx, s.DB, store.Grant{UserID: u.ID, Space: "root", Role: role}); err != nil {
			t.Fatal(err)
		}
		asRole[as] = store.NewTokenValue()
		if _, err := store.CreateUserToken(ctx, s.DB, store.APIToken{Name: as, Role: store.RoleMember, UserID: u.ID}, asRole[as]); err != nil {
			t.Fatal(err)
		}
	}
	return goldenTarget{name: "glenv", url: g.url, project: newProject, fixture: fixture,
		token: func(as string) string {
			if tok, ok := asRole[as]; ok {
				return tok
			}
			return g.token // a Maintainer; "restricted" is answered by the unstoppable fixture
		}}
}

// doubleGolden is the GitLab double with a Maintainer, a Developer and a Reporter; each
// case gets a project of its own.
func doubleGolden(t *testing.T) goldenTarget {
	d := gitlabtest.New(t)
	maintainer := d.AddUser(gitlabtest.User{Username: "maintainer"})
	reporter := d.AddUser(gitlabtest.User{Username: "reporter"})
	tok := d.AddToken(gitlabtest.Token{UserID: maintainer.ID, Scopes: []string{"api"}})
	developer := d.AddUser(gitlabtest.User{Username: "developer"})
	restricted := d.AddToken(gitlabtest.Token{UserID: reporter.ID, Scopes: []string{"api"}})
	asDeveloper := d.AddToken(gitlabtest.Token{UserID: developer.ID, Scopes: []string{"api"}})
	n := 0
	newProject := func(t *testing.T) (int64, string) {
		n++
		p := d.AddProject(gitlabtest.Project{ID: int64(1000 + n), PathWithNamespace: fmt.Sprintf("group/app-%d", n),
			Members: map[int64]int{maintainer.ID: 40, developer.ID: 30, reporter.ID: 20}})
		return p.ID, p.PathWithNamespace
	}
	post := func(t *testing.T, path string, body any) map[string]any {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(http.MethodPost, d.URL+"/api/v4/"+path, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("PRIVATE-TOKEN", tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusCreated {
			t.Fatalf("POST %s: %d %v %v", path, resp.StatusCode, out, err)
		}
		return out
	}
	createEnv := func(t *testing.T, pid int64, name string) int64 {
		return int64(post(t, fmt.Sprintf("projects/%d/environments", pid), map[string]any{"name": name})["id"].(float64))
	}
	fixture := func(t *testing.T, pid int64, st goldenStep, ids map[string]int64) {
		switch st.Fixture {
		case "stopping":
			// GitLab's stop leaves an environment with stop jobs in stopping.
			d.UpdateEnvironment(pid, ids[st.Env], func(e *gitlabtest.Environment) { e.State = "stopping" })
		case "age":
			at := time.Now().AddDate(0, 0, -st.Days).UTC()
			d.UpdateEnvironment(pid, ids[st.Env], func(e *gitlabtest.Environment) { e.CreatedAt, e.UpdatedAt = at, at })
		case "unstoppable":
			// Any environment: the restricted caller (a Reporter) may not stop it.
			ids["unstoppable"] = createEnv(t, pid, "unstoppable")
		case "deployed":
			sha := "0123456789abcdef0123456789abcdef01234567"
			d.SetBranch(pid, "main", sha)
			post(t, fmt.Sprintf("projects/%d/deployments", pid), map[string]any{"environment": st.Env, "sha": sha,
				"ref": "main", "tag": false, "status": "success"})
		case "foreign":
			other, _ := newProject(t)
			ids[st.Env] = createEnv(t, other, st.Env)
		default:
			t.Fatalf("unknown fixture %q", st.Fixture)
		}
	}
	return goldenTarget{name: "double", url: d.URL, project: newProject, fixture: fixture,
		token: func(as string) string {
			switch as {
			case "restricted", "reporter":
				return restricted
			case "developer":
				return asDeveloper
			}
			return tok
		}}
}
