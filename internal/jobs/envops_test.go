package jobs

import (
	"context"
	"fmt"
	"testing"

	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/store/storetest"
)

func TestAnAppTheRuntimeGaveUpOnMarksItsEnvironmentFailed(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		q, err := NewQueue(s, Deps{Runtime: RecordRuntime{}}, QueueConfig{})
		if err != nil {
			t.Fatal(err)
		}
		mk := func(name, state string) *store.Environment {
			e := &store.Environment{IntegrationName: "app", ProjectID: 1, Name: name, Slug: name, Host: name + "--app",
				Kind: "branch", State: state, DeployedSHA: "abc"}
			if err := store.SaveEnvironment(ctx, s.DB, e); err != nil {
				t.Fatal(err)
			}
			return e
		}
		active, inactive := mk("main", store.StateActive), mk("idle", store.StateInactive)
		for _, e := range []*store.Environment{active, inactive} {
			if err := q.MarkFailed(ctx, e.ID, "the app exited (exit status 1)"); err != nil {
				t.Fatal(err)
			}
		}
		if err := q.MarkFailed(ctx, 9999, "gone"); err != nil {
			t.Fatalf("an unknown environment: %v", err)
		}
		got, _ := store.GetEnvironmentByID(ctx, s.Reader(), active.ID)
		if got.State != store.StateFailed {
			t.Fatalf("active environment is %s, want failed", got.State)
		}
		if got, _ := store.GetEnvironmentByID(ctx, s.Reader(), inactive.ID); got.State != store.StateInactive {
			t.Fatalf("an inactive environment became %s", got.State)
		}
		acts, _ := store.ListActivities(ctx, s.Reader(), store.ActivityFilter{EnvironmentID: active.ID})
		if len(acts) != 1 || acts[0].State != store.ActivityFailed || acts[0].Result != "the app exited (exit status 1)" {
			t.Fatalf("activities = %+v", acts)
		}
	})
}

func TestMergeSeenReportsAdditionsEvenAtTheBound(t *testing.T) {
	full := make([]string, 200)
	for i := range full {
		full[i] = fmt.Sprint("sha", i)
	}
	got, added := mergeSeen(full, []string{"new"})
	if !added || len(got) != 200 || got[199] != "new" || got[0] != "sha1" {
		t.Fatalf("at the bound: added=%v len=%d last=%q first=%q", added, len(got), got[len(got)-1], got[0])
	}
	if _, added := mergeSeen([]string{"a"}, []string{"a", ""}); added {
		t.Fatal("nothing new was reported as added")
	}
}
