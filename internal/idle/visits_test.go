package idle

import (
	"context"
	"testing"
	"time"

	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/store/storetest"
)

// Visits are written once per flush, never move back, and written entries
// leave memory once old: the map holds only recent visitors.
func TestVisitsFlush(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
		v := NewVisits(func() time.Time { return now })
		env := testEnvironment(t, st, "feature", 0)
		v.Seen(env.Host)
		if err := v.Flush(ctx, st); err != nil {
			t.Fatal(err)
		}
		if got := lastRequest(t, st, env.ID); !got.Equal(now) {
			t.Fatalf("last_request_at = %v, want %v", got, now)
		}
		// A stale time from another replica does not move it back.
		if err := store.RecordRequests(ctx, st.DB, map[string]time.Time{env.Host: now.Add(-time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if got := lastRequest(t, st, env.ID); !got.Equal(now) {
			t.Fatalf("last_request_at moved back to %v", got)
		}
		if !v.Last(env.Host).Equal(now) {
			t.Fatalf("a flushed visit is forgotten at once; the idle pass must still see it")
		}
		now = now.Add(keepFlushed + time.Second)
		if err := v.Flush(ctx, st); err != nil {
			t.Fatal(err)
		}
		if !v.Last(env.Host).IsZero() || len(v.last) != 0 {
			t.Fatalf("an old written visit stays in memory: %v", v.last)
		}
	})
}

func lastRequest(t *testing.T, st *store.Store, id int64) time.Time {
	t.Helper()
	var us int64
	if err := st.Reader().QueryRowContext(context.Background(), `SELECT last_request_at FROM environments WHERE id = $1`, id).Scan(&us); err != nil {
		t.Fatal(err)
	}
	return time.UnixMicro(us).UTC()
}

// testEnvironment stores an integration with pauseAfter and an active
// environment of it.
func testEnvironment(t *testing.T, st *store.Store, name string, pauseAfter time.Duration) store.Environment {
	t.Helper()
	ctx := context.Background()
	in := store.Integration{Name: "app", Type: "gitlab", BaseURL: "http://gitlab.invalid", UserFacingURL: "http://gitlab.invalid",
		GitLabProject: "group/app", ProjectID: 7, ProjectPath: "group/app", DefaultBranch: "main", Space: "root",
		PauseAfter: store.PauseAfter(pauseAfter)}
	if err := store.CreateIntegration(ctx, st.DB, &in); err != nil {
		t.Fatal(err)
	}
	env := store.Environment{IntegrationID: in.ID, IntegrationName: in.Name, ProjectID: in.ProjectID, Name: name,
		Slug: name, Host: name + "--app", Kind: "branch", Ref: name, Parent: "main", State: store.StateActive}
	if err := store.SaveEnvironment(ctx, st.DB, &env); err != nil {
		t.Fatal(err)
	}
	return env
}
