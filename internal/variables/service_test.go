package variables_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/glenv/glenv/internal/integration"
	"github.com/glenv/glenv/internal/jobs"
	"github.com/glenv/glenv/internal/lifecycle"
	"github.com/glenv/glenv/internal/secret"
	"github.com/glenv/glenv/internal/slug"
	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/store/storetest"
	"github.com/glenv/glenv/internal/variable"
	"github.com/glenv/glenv/internal/variables"
)

// world is one integration "app" with environments, the variables service
// and the environments service (River not started: the test reads the
// jobs a change enqueues).
type world struct {
	t   *testing.T
	s   *store.Store
	svc *variables.Service
	in  store.Integration
	ids map[string]int64
}

func newWorld(t *testing.T, s *store.Store, buildForks bool) *world {
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
		WebhookSecretSealed: box.Seal("w"), Space: "root", BuildForks: buildForks}
	if err := store.CreateIntegration(ctx, s.DB, &in); err != nil {
		t.Fatal(err)
	}
	q, err := jobs.NewQueue(s, jobs.Deps{Runtime: jobs.RecordRuntime{}, Logger: slog.New(slog.DiscardHandler)}, jobs.QueueConfig{})
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, s: s, svc: &variables.Service{Store: s, Box: box, Redeploy: q}, in: in, ids: map[string]int64{}}
	// main ← feature ← mr-1; main ← idle (inactive); main ← napping (paused).
	w.env("main", "branch", "", store.StateActive)
	w.env("feature", "branch", "main", store.StateActive)
	w.env("mr-1", "mr", "feature", store.StateActive)
	if buildForks {
		// mr-1 comes from a fork (its merge request events said so).
		e, err := store.GetEnvironment(ctx, s.DB, "app", "mr-1")
		if err != nil {
			t.Fatal(err)
		}
		e.FromFork = true
		if err := store.SaveEnvironment(ctx, s.DB, &e); err != nil {
			t.Fatal(err)
		}
	}
	w.env("idle", "branch", "main", store.StateInactive)
	w.env("napping", "branch", "main", store.StatePaused)
	return w
}

func (w *world) env(name, kind, parent, state string) {
	w.t.Helper()
	e := store.Environment{IntegrationID: w.in.ID, IntegrationName: "app", ProjectID: 7, Name: name, Slug: slug.Environment(name),
		Host: slug.Host(slug.Environment(name), "app"), Kind: kind, Ref: name, Parent: parent, HeadSHA: strings.Repeat("a", 40),
		DeployedSHA: strings.Repeat("a", 40), State: state, Tier: lifecycle.Tier(lifecycle.EnvKind(kind), name, "main")}
	if err := store.SaveEnvironment(context.Background(), w.s.DB, &e); err != nil {
		w.t.Fatal(err)
	}
	w.ids[e.Name] = e.ID
}

// redeploysQueued lists the environments with a variables_redeploy job waiting.
func (w *world) redeploysQueued() []string {
	w.t.Helper()
	args := "args::text" // River keeps args as jsonb: text on PostgreSQL,
	if w.s.Dialect == store.SQLite {
		args = "json(args)" // binary JSONB on SQLite
	}
	rows, err := w.s.Reader().QueryContext(context.Background(), `SELECT `+args+` FROM river_job WHERE kind = 'variables_redeploy'`)
	if err != nil {
		w.t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			w.t.Fatal(err)
		}
		var a jobs.VariablesRedeployArgs
		if err := json.Unmarshal(raw, &a); err != nil {
			w.t.Fatal(err)
		}
		for name, id := range w.ids {
			if id == a.EnvironmentID {
				out = append(out, name)
			}
		}
	}
	sort.Strings(out)
	return out
}

func (w *world) clearJobs() {
	w.t.Helper()
	if _, err := w.s.DB.ExecContext(context.Background(), `DELETE FROM river_job WHERE kind = 'variables_redeploy'`); err != nil {
		w.t.Fatal(err)
	}
}

func ptr[T any](v T) *T { return &v }

func at(env string) variables.Level { return variables.Level{Integration: "app", Environment: env} }

func TestAChangeRedeploysExactlyTheEnvironmentsItAffectsOncePerBurst(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		w := newWorld(t, s, false)
		steps := []struct {
			name string
			do   func() (variables.Change, error)
			want []string
		}{
			{"an integration variable reaches every running environment",
				func() (variables.Change, error) {
					return w.svc.Create(ctx, at(""), variables.Input{Name: "MODE", Value: ptr("one")})
				}, []string{"feature", "main", "mr-1"}},
			{"an environment's variable that is not inheritable affects it alone",
				func() (variables.Change, error) {
					return w.svc.Create(ctx, at("feature"), variables.Input{Name: "OWN", Value: ptr("x"), Inheritable: ptr(false)})
				}, []string{"feature"}},
			{"an inheritable variable reaches the environments below",
				func() (variables.Change, error) {
					return w.svc.Create(ctx, at("feature"), variables.Input{Name: "DOWN", Value: ptr("x")})
				}, []string{"feature", "mr-1"}},
			{"a definition shadowed by a nearer one affects nobody below it",
				func() (variables.Change, error) {
					return w.svc.Create(ctx, at("main"), variables.Input{Name: "DOWN", Value: ptr("main's")})
				}, []string{"main"}},
			{"the same value again affects nobody",
				func() (variables.Change, error) {
					return w.svc.Update(ctx, at(""), "MODE", variables.Input{Value: ptr("one")})
				}, nil},
			{"a visibility change is a change",
				func() (variables.Change, error) {
					return w.svc.Update(ctx, at("feature"), "OWN", variables.Input{VisibleBuild: ptr(false)})
				}, []string{"feature"}},
			{"a delete uncovers the farther definition",
				func() (variables.Change, error) { return w.svc.Delete(ctx, at("feature"), "DOWN") },
				[]string{"feature", "mr-1"}},
		}
		for _, st := range steps {
			w.clearJobs()
			ch, err := st.do()
			if err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			got := slices.Clone(ch.Redeploys)
			sort.Strings(got)
			if strings.Join(got, " ") != strings.Join(st.want, " ") {
				t.Errorf("%s: redeploys %v, want %v", st.name, got, st.want)
			}
			if q := w.redeploysQueued(); strings.Join(q, " ") != strings.Join(st.want, " ") {
				t.Errorf("%s: jobs queued for %v, want %v", st.name, q, st.want)
			}
		}

		// A burst of changes leaves one waiting redeploy per environment.
		w.clearJobs()
		for _, v := range []string{"two", "three", "four"} {
			if _, err := w.svc.Update(ctx, at(""), "MODE", variables.Input{Value: ptr(v)}); err != nil {
				t.Fatal(err)
			}
		}
		if q := w.redeploysQueued(); strings.Join(q, " ") != "feature main mr-1" {
			t.Fatalf("after a burst of three changes: jobs for %v, want one each for feature, main, mr-1", q)
		}
	})
}

func TestForkCodeGetsNoVariableAndIsNotRedeployedForThem(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		w := newWorld(t, s, true) // mr-1 comes from a fork
		ch, err := w.svc.Create(ctx, at(""), variables.Input{Name: "API_KEY", Value: ptr("s3cret-value"), Sensitive: ptr(true)})
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(ch.Redeploys, " ") != "feature main" && strings.Join(ch.Redeploys, " ") != "main feature" {
			t.Fatalf("creating a sensitive variable redeploys %v, want main and feature (fork code sees no variable)", ch.Redeploys)
		}
		w.clearJobs()
		for _, change := range []func() (variables.Change, error){
			func() (variables.Change, error) {
				return w.svc.Update(ctx, at(""), "API_KEY", variables.Input{Value: ptr("rotated-value")})
			},
			func() (variables.Change, error) {
				return w.svc.Create(ctx, at(""), variables.Input{Name: "MODE", Value: ptr("plain")})
			},
		} {
			ch, err := change()
			if err != nil {
				t.Fatal(err)
			}
			if slices.Contains(ch.Redeploys, "mr-1") {
				t.Fatalf("a variable change redeploys fork code, which sees no variable: %v", ch.Redeploys)
			}
		}
		d, err := w.svc.ForDeploy(ctx, w.in, store.Environment{Name: "mr-1", Parent: "feature"}, map[string]string{"API_KEY": "repo"}, true)
		if err != nil {
			t.Fatal(err)
		}
		if d.Build["API_KEY"] != "repo" || d.Run["API_KEY"] != "repo" || d.Run["MODE"] != "" || d.Withheld != 2 {
			t.Fatalf("fork code got %v / %v (withheld %d); want only its repository's API_KEY, no MODE, two withheld", d.Build, d.Run, d.Withheld)
		}
	})
}

func TestSensitiveValuesAreSealedAtRestAndNeverShown(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		w := newWorld(t, s, false)
		const value = "super-secret-value-42"
		ch, err := w.svc.Create(ctx, at("main"), variables.Input{Name: "DB_PASSWORD", Value: ptr(value), Sensitive: ptr(true)})
		if err != nil {
			t.Fatal(err)
		}
		var raw string
		if err := s.Reader().QueryRowContext(ctx, `SELECT value FROM variables WHERE name = 'DB_PASSWORD'`).Scan(&raw); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(raw, value) || !strings.HasPrefix(raw, "v1:") {
			t.Fatalf("stored in clear: %q", raw)
		}
		got, err := w.svc.Get(ctx, at("main"), "DB_PASSWORD")
		if err != nil {
			t.Fatal(err)
		}
		list, err := w.svc.List(ctx, at("mr-1"))
		if err != nil {
			t.Fatal(err)
		}
		all, err := w.svc.List(ctx, at(""))
		if err != nil {
			t.Fatal(err)
		}
		for what, v := range map[string]any{"create": ch, "get": got, "list of mr-1": list, "list": all} {
			b, _ := json.Marshal(v)
			if strings.Contains(string(b), value) {
				t.Errorf("%s shows the value: %s", what, b)
			}
			if !strings.Contains(string(b), `"value_set":true`) || !strings.Contains(string(b), `"sensitive":true`) {
				t.Errorf("%s does not say a sensitive value is set: %s", what, b)
			}
		}
		if len(list) != 1 || list[0].Environment != "main" || list[0].Level != "environment" {
			t.Fatalf("mr-1 resolves to %+v, want DB_PASSWORD from main", list)
		}
		// The deploy gets it in clear, with the value to redact.
		d, err := w.svc.ForDeploy(ctx, w.in, store.Environment{Name: "mr-1", Parent: "feature"}, nil, false)
		if err != nil || d.Run["DB_PASSWORD"] != value || !slices.Contains(d.Sensitive, value) || d.BuildDigest == "" {
			t.Fatalf("deploy gets %+v, %v", d, err)
		}
		_, err = w.svc.Update(ctx, at("main"), "DB_PASSWORD", variables.Input{Sensitive: ptr(false)})
		var fe *integration.FieldError
		if !errors.As(err, &fe) || fe.Field != "sensitive" {
			t.Fatalf("making a sensitive variable visible: %v, want a sensitive field error", err)
		}
	})
}

func TestBadInputIsRefusedNamingTheFieldAndWritesNothing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		w := newWorld(t, s, false)
		if _, err := w.svc.Create(ctx, at(""), variables.Input{Name: "TAKEN", Value: ptr("x")}); err != nil {
			t.Fatal(err)
		}
		w.clearJobs()
		tests := []struct {
			name  string
			lv    variables.Level
			in    variables.Input
			field string
			is    error
		}{
			{"a name that is not POSIX", at(""), variables.Input{Name: "API-KEY", Value: ptr("x")}, "name", nil},
			{"a name starting with a digit", at(""), variables.Input{Name: "2FA", Value: ptr("x")}, "name", nil},
			{"no value", at(""), variables.Input{Name: "KEY"}, "value", nil},
			{"a value over 64 KiB", at(""), variables.Input{Name: "KEY", Value: ptr(strings.Repeat("x", variable.MaxValueBytes+1))}, "value", nil},
			{"visible nowhere", at(""), variables.Input{Name: "KEY", Value: ptr("x"), VisibleBuild: ptr(false), VisibleRun: ptr(false)}, "visible_build", nil},
			{"an unknown integration", variables.Level{Integration: "nope"}, variables.Input{Name: "KEY", Value: ptr("x")}, "integration", store.ErrNotFound},
			{"an unknown environment", at("nope"), variables.Input{Name: "KEY", Value: ptr("x")}, "environment", store.ErrNotFound},
			{"a name taken at the level", at(""), variables.Input{Name: "TAKEN", Value: ptr("y")}, "", store.ErrConflict},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := w.svc.Create(ctx, tt.lv, tt.in)
				if err == nil {
					t.Fatal("accepted")
				}
				if tt.is != nil && !errors.Is(err, tt.is) {
					t.Fatalf("err = %v, want %v", err, tt.is)
				}
				if tt.field != "" && !strings.HasPrefix(err.Error(), tt.field+":") {
					t.Fatalf("err = %q, want it to name %s first", err, tt.field)
				}
			})
		}
		all, err := store.VariablesOfIntegration(ctx, s.Reader(), w.in.ID)
		if err != nil || len(all) != 1 {
			t.Fatalf("after the refusals: %d variables (%v), want only TAKEN", len(all), err)
		}
		if q := w.redeploysQueued(); len(q) != 0 {
			t.Fatalf("refused changes queued redeploys: %v", q)
		}
	})
}

func TestALevelHoldsAtMostMaxPerLevel(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		w := newWorld(t, s, false)
		tx, err := s.DB.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := range variable.MaxPerLevel {
			v := store.Variable{IntegrationID: w.in.ID, Environment: "main", Name: "V" + strings.Repeat("_", i%3) + string(rune('A'+i%26)) + itoa(i),
				Value: "x", Inheritable: true, VisibleBuild: true, VisibleRun: true}
			if err := store.CreateVariable(ctx, tx, &v); err != nil {
				tx.Rollback()
				t.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		_, err = w.svc.Create(ctx, at("main"), variables.Input{Name: "ONE_MORE", Value: ptr("x")})
		if err == nil || !strings.Contains(err.Error(), "1000") {
			t.Fatalf("the 1001st variable of a level: %v, want a refusal naming the bound", err)
		}
		if _, err := w.svc.Create(ctx, at("feature"), variables.Input{Name: "ONE_MORE", Value: ptr("x")}); err != nil {
			t.Fatalf("another level is not full: %v", err)
		}
	})
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}
