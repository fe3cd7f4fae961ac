package idle_test

import (
	"context"
	"testing"
	"time"

	"github.com/glenv/glenv/internal/idle"
	"github.com/glenv/glenv/internal/jobs"
	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/store/storetest"
)

// The idle check, on a clock the test moves, pauses through the state
// machine exactly the active environments of integrations with
// --pause-after that nobody visited for that long.
func TestTheIdleCheckPausesOnlyEnvironmentsNobodyVisited(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		q, err := jobs.NewQueue(st, jobs.Deps{Runtime: jobs.RecordRuntime{}}, jobs.QueueConfig{})
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		visits := idle.NewVisits(func() time.Time { return now })
		c := &idle.Checker{Store: st, Visits: visits, Pauser: q, Now: func() time.Time { return now }}

		pausing := integrationWith(t, st, "app", 4*time.Hour)
		never := integrationWith(t, st, "other", 0)
		quiet := environment(t, st, pausing, "quiet")
		visited := environment(t, st, pausing, "visited")
		elsewhere := environment(t, st, never, "quiet")

		now = now.Add(time.Hour)
		if got, err := c.Run(ctx); err != nil || len(got) != 0 {
			t.Fatalf("an hour after the deploy: paused %v, %v", got, err)
		}
		visits.Seen(visited.Host) // only in memory: not written yet
		now = now.Add(3*time.Hour + time.Minute)
		got, err := c.Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0] != quiet.ID {
			t.Fatalf("paused %v, want only %d (quiet)", got, quiet.ID)
		}
		for _, e := range []struct {
			env  store.Environment
			want string
		}{{quiet, store.StatePaused}, {visited, store.StateActive}, {elsewhere, store.StateActive}} {
			cur, err := store.GetEnvironmentByID(ctx, st.Reader(), e.env.ID)
			if err != nil {
				t.Fatal(err)
			}
			if cur.State != e.want {
				t.Errorf("%s of %s is %s, want %s", cur.Name, cur.IntegrationName, cur.State, e.want)
			}
		}
		// A second pass finds it paused already: nothing more.
		if got, err := c.Run(ctx); err != nil || len(got) != 0 {
			t.Fatalf("second pass paused %v, %v", got, err)
		}
	})
}

func integrationWith(t *testing.T, st *store.Store, name string, pauseAfter time.Duration) store.Integration {
	t.Helper()
	in := store.Integration{Name: name, Type: "gitlab", BaseURL: "http://gitlab.invalid", UserFacingURL: "http://gitlab.invalid",
		GitLabProject: "group/" + name, ProjectID: int64(len(name)), ProjectPath: "group/" + name, DefaultBranch: "main", Space: "root",
		PauseAfter: store.PauseAfter(pauseAfter)}
	if err := store.CreateIntegration(context.Background(), st.DB, &in); err != nil {
		t.Fatal(err)
	}
	return in
}

func environment(t *testing.T, st *store.Store, in store.Integration, name string) store.Environment {
	t.Helper()
	env := store.Environment{IntegrationID: in.ID, IntegrationName: in.Name, ProjectID: in.ProjectID, Name: name,
		Slug: name, Host: name + "--" + in.Name, Kind: "branch", Ref: name, Parent: "main", State: store.StateActive,
		HeadSHA: "0123456789012345678901234567890123456789", DeployedSHA: "0123456789012345678901234567890123456789"}
	if err := store.SaveEnvironment(context.Background(), st.DB, &env); err != nil {
		t.Fatal(err)
	}
	return env
}
