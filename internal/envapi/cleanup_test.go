package envapi_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/riverqueue/river"
	gitlab "gitlab.com/gitlab-org/api/client-go/v2"

	"github.com/glenv/glenv/internal/envapi"
	"github.com/glenv/glenv/internal/jobs"
	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/store/storetest"
)

// TestScheduledReviewAppsAreDeletedWhenDue drives review_apps with
// dry_run=false, then the periodic job at several clocks: nothing happens
// before the week is over, a due and still stopped review app is deleted
// (tombstone, delete activity, runtime removal queued), one started again
// meanwhile is kept, and the attributes of deleted environments are
// forgotten.
func TestScheduledReviewAppsAreDeletedWhenDue(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		g := startGlenv(t, s, jobs.RecordRuntime{})
		ctx := context.Background()
		c := g.client(t)
		month := time.Now().AddDate(0, 0, -40).UnixMicro()
		var ids []int64
		for _, name := range []string{"review/gone", "review/restarted"} {
			e, _, err := c.Environments.CreateEnvironment(appID, &gitlab.CreateEnvironmentOptions{Name: ptr(name)})
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := c.Environments.StopEnvironment(appID, e.ID, nil); err != nil {
				t.Fatal(err)
			}
			if _, err := s.DB.ExecContext(ctx, `UPDATE environments SET created_at = $1 WHERE id = $2`, month, e.ID); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, e.ID)
		}
		req, _ := c.NewRequest(http.MethodDelete, "projects/42/environments/review_apps", nil, nil)
		req.URL.RawQuery = url.Values{"dry_run": {"false"}}.Encode()
		if resp, err := c.Do(req, nil); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("review_apps: %v", err)
		}
		// Started again after it was scheduled: GitLab's auto_deletable
		// takes only stopped environments.
		if _, err := s.DB.ExecContext(ctx, `UPDATE environments SET state = $1 WHERE id = $2`, store.StateActive, ids[1]); err != nil {
			t.Fatal(err)
		}

		if n, err := envapi.DeleteScheduled(ctx, s, g.queue, time.Now().AddDate(0, 0, 6)); err != nil || n != 0 {
			t.Fatalf("six days later: %d deleted, err %v; want none before the week is over", n, err)
		}
		n, err := envapi.DeleteScheduled(ctx, s, g.queue, time.Now().AddDate(0, 0, 8))
		if err != nil || n != 1 {
			t.Fatalf("eight days later: %d deleted, err %v; want the stopped one", n, err)
		}
		gone, err := store.GetEnvironmentOrTombstone(ctx, s.Reader(), ids[0])
		if err != nil || gone.DeletedAt.IsZero() || gone.State != store.StateDeleted {
			t.Errorf("review/gone after its deletion was due: %+v %v, want a tombstone", gone, err)
		}
		acts, err := store.ListActivities(ctx, s.Reader(), store.ActivityFilter{EnvironmentID: ids[0], Kind: store.ActivityDelete})
		if err != nil || len(acts) != 1 {
			t.Errorf("delete activities of review/gone: %v %v, want one", acts, err)
		}
		if kept, err := store.GetEnvironmentByID(ctx, s.Reader(), ids[1]); err != nil || kept.State != store.StateActive {
			t.Errorf("review/restarted: %+v %v, want it kept running", kept, err)
		}
		var rows int
		if err := s.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM envapi_environments WHERE environment_id = $1`, ids[0]).Scan(&rows); err != nil || rows != 0 {
			t.Errorf("attributes of the deleted environment: %d rows, err %v; want them forgotten", rows, err)
		}
	})
}

// TestThePeriodicJobDeletesDueEnvironments wires the job as server.go does
// (envapi.Register in the queue's workers, envapi.PeriodicJobs added to
// River) and checks that it runs on start and deletes a due environment.
func TestThePeriodicJobDeletesDueEnvironments(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		g := startGlenv(t, s, jobs.RecordRuntime{})
		var q *jobs.Queue
		q, err := jobs.NewQueue(s, jobs.Deps{Runtime: jobs.RecordRuntime{},
			Register: []func(*river.Workers){envapi.Register(s, &q, nil)}}, jobs.QueueConfig{})
		if err != nil {
			t.Fatal(err)
		}
		q.River.PeriodicJobs().AddMany(envapi.PeriodicJobs())
		e := saveBranchEnv(t, g, "review/due", store.StateInactive)
		if err := store.ScheduleDeletion(ctx, s.DB, e, time.Now().Add(-time.Minute)); err != nil {
			t.Fatal(err)
		}
		runCtx, cancel := context.WithCancel(ctx)
		if err := q.Start(runCtx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cancel()
			stopCtx, done := context.WithTimeout(context.Background(), 5*time.Second)
			defer done()
			_ = q.Stop(stopCtx)
		})
		waitFor(t, "the periodic job deleted review/due", func() bool {
			cur, err := store.GetEnvironmentOrTombstone(ctx, s.Reader(), e.ID)
			return err == nil && !cur.DeletedAt.IsZero()
		})
	})
}

// TestARevivedEnvironmentDoesNotInheritAScheduledDeletion: glenv reuses a
// deleted environment's id when its name comes back (a branch pushed again),
// so the GitLab attributes are tied to the environment's created_at and a
// deletion scheduled for the old one never deletes the new one.
func TestARevivedEnvironmentDoesNotInheritAScheduledDeletion(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		g := startGlenv(t, s, jobs.RecordRuntime{})
		old := saveBranchEnv(t, g, "review/again", store.StateInactive)
		if err := store.SetAutoStopSetting(ctx, s.DB, old, "with_action"); err != nil {
			t.Fatal(err)
		}
		if err := store.ScheduleDeletion(ctx, s.DB, old, time.Now().Add(-time.Minute)); err != nil {
			t.Fatal(err)
		}
		// Deleted by the lifecycle, then revived under the same name.
		old.State, old.DeletedAt = store.StateDeleted, store.Now()
		if err := store.SaveEnvironment(ctx, s.DB, &old); err != nil {
			t.Fatal(err)
		}
		revived := saveBranchEnv(t, g, "review/again", store.StateInactive)
		if revived.ID != old.ID {
			t.Fatalf("revived as %d, want the tombstone's id %d", revived.ID, old.ID)
		}
		if n, err := envapi.DeleteScheduled(ctx, s, g.queue, time.Now()); err != nil || n != 0 {
			t.Fatalf("%d deleted, err %v: the old environment's schedule reached the revived one", n, err)
		}
		got, _, err := g.client(t).Environments.GetEnvironment(appID, revived.ID)
		if err != nil || got.State != "stopped" || got.AutoStopSetting != "always" {
			t.Errorf("revived environment %+v, %v; want it stopped with GitLab's default auto_stop_setting", got, err)
		}
	})
}
