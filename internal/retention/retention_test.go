package retention_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/glenv/glenv/internal/activitylog"
	"github.com/glenv/glenv/internal/retention"
	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/store/storetest"
)

func TestCutoffs(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	tests := []struct {
		name string
		s    retention.Settings
		want retention.Cutoffs
	}{
		{"deliveries and bodies go N days after receipt, tombstones N days after the delete, logs N days after completion",
			retention.Settings{Deliveries: 90 * day, DeliveryBodies: 7 * day, DeletedEnvironments: 30 * day, Logs: 90 * day},
			retention.Cutoffs{Deliveries: now.Add(-90 * day), Bodies: now.Add(-7 * day), Tombstones: now.Add(-30 * day), Logs: now.Add(-90 * day)}},
		{"a zero age keeps that kind forever", retention.Settings{DeliveryBodies: 0, DeletedEnvironments: day},
			retention.Cutoffs{Tombstones: now.Add(-day)}},
		{"nothing set keeps everything", retention.Settings{}, retention.Cutoffs{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := retention.CutoffsAt(now, tt.s); got != tt.want {
				t.Fatalf("CutoffsAt = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// One pass over a database with something of each kind: old bodies of done
// deliveries go (headers and results stay), a waiting delivery keeps its
// body, an old tombstone goes with its activities and logs, a recent one
// stays, and a log over the cap keeps its tail. Batches of one prove the
// passes loop over a backlog.
func TestAPassDropsWhatIsOldAndKeepsWhatIsNot(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		in := &store.Integration{Name: "app", Type: "gitlab", BaseURL: "https://gitlab.example.com", ProjectID: 42,
			ProjectPath: "group/app", DefaultBranch: "main", TokenSealed: "v1:x", WebhookSecretSealed: "v1:y", Space: "root"}
		if err := store.CreateIntegration(ctx, s.DB, in); err != nil {
			t.Fatal(err)
		}
		deliveries := addDeliveries(t, s, store.DeliveryProcessed, store.DeliveryProcessed, store.DeliveryAccepted)
		env := func(name string, deletedAgo time.Duration) (envID, activityID int64) {
			e := &store.Environment{IntegrationID: in.ID, IntegrationName: "app", ProjectID: 42, Name: name, Slug: name,
				Host: name + "--app", Kind: "branch", Ref: name, State: store.StateActive}
			if deletedAgo > 0 {
				e.State, e.DeletedAt = store.StateDeleted, store.Now().Add(-deletedAgo)
			}
			if err := store.SaveEnvironment(ctx, s.DB, e); err != nil {
				t.Fatal(err)
			}
			a := store.Activity{IntegrationName: "app", EnvironmentID: e.ID, Kind: store.ActivityDeploy, State: store.ActivityComplete}
			if err := store.InsertActivity(ctx, s.DB, &a); err != nil {
				t.Fatal(err)
			}
			for i := range 20 {
				if _, err := store.AppendLog(ctx, s.DB, a.ID, strings.Repeat(string(rune('a'+i)), 99)+"\n"); err != nil {
					t.Fatal(err)
				}
			}
			return e.ID, a.ID
		}
		oldEnv, _ := env("old", 10*24*time.Hour)
		recentEnv, recentAct := env("recent", time.Hour)
		_, liveAct := env("live", 0)
		_, oldAct := env("live-for-long", 0)
		if _, err := s.DB.ExecContext(ctx, `UPDATE activities SET completed_at = $1 WHERE id = $2`, store.Now().Add(-100*24*time.Hour).UnixMicro(), oldAct); err != nil {
			t.Fatal(err)
		}

		r := retention.New(s, retention.Settings{DeliveryBodies: time.Nanosecond, DeletedEnvironments: 24 * time.Hour,
			LogMaxSize: 500, Logs: 90 * 24 * time.Hour, Batch: 1}, nil)
		rep, err := r.Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if rep.BodiesDropped != 2 || rep.EnvironmentsPurged != 1 || rep.LogsDropped != 1 || rep.LogsCapped != 2 || rep.LogBytesCut != 2*1500 {
			t.Fatalf("report %+v; want 2 bodies, 1 environment, 1 old log dropped, 2 logs capped by 1500 bytes each", rep)
		}
		p, err := activitylog.Read(ctx, s.Reader(), oldAct, 0)
		if err != nil || !strings.HasPrefix(p.Text, "[… 2000 bytes cut") || !strings.HasSuffix(p.Text, "…]\n") || p.Next != 2000 {
			t.Errorf("log of an activity completed 100 days ago: %q (next %d) %v; want only the notice", p.Text, p.Next, err)
		}
		var activities int
		if err := s.Reader().QueryRowContext(ctx, `SELECT COUNT(*) FROM activities WHERE id = $1`, oldAct).Scan(&activities); err != nil || activities != 1 {
			t.Errorf("the activity whose log was dropped went too: %d %v", activities, err)
		}
		for i, id := range deliveries {
			d, err := store.GetDelivery(ctx, s.Reader(), id)
			if err != nil {
				t.Fatal(err)
			}
			waiting := i == 2
			if (d.Body != "") != waiting || d.Headers == "" || (!waiting && d.Result != "done") {
				t.Errorf("delivery %d (%s): body %d bytes, headers %q, result %q", id, d.Status, len(d.Body), d.Headers, d.Result)
			}
		}
		if _, err := store.GetEnvironmentOrTombstone(ctx, s.Reader(), oldEnv); err != store.ErrNotFound {
			t.Errorf("the old tombstone is still there: %v", err)
		}
		if e, err := store.GetEnvironmentOrTombstone(ctx, s.Reader(), recentEnv); err != nil || e.DeletedAt.IsZero() {
			t.Errorf("the recent tombstone went: %v", err)
		}
		for _, id := range []int64{recentAct, liveAct} {
			p, err := activitylog.Read(ctx, s.Reader(), id, 0)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(p.Text, "[… 1500 bytes cut") || !strings.HasSuffix(p.Text, strings.Repeat("t", 99)+"\n") || p.Next != 2000 {
				t.Errorf("log of activity %d after the pass: %q (next %d)", id, p.Text, p.Next)
			}
		}
		// A second pass finds nothing more to do.
		if rep, err := r.Run(ctx); err != nil || rep != (retention.Report{}) {
			t.Fatalf("second pass: %+v %v", rep, err)
		}
	})
}

// Deliveries older than --delivery-retention go whole, with their bodies,
// in batches; one still waiting for its job stays however old, and so do
// recent ones. A forgotten delivery's dedupe key is free again: GitLab
// resending it has it accepted as new.
func TestAPassForgetsOldDeliveriesWhole(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		ids := addDeliveries(t, s, store.DeliveryProcessed, store.DeliveryFailed, store.DeliveryAccepted, store.DeliveryProcessed)
		old := store.Now().Add(-100 * 24 * time.Hour).UnixMicro()
		if _, err := s.DB.ExecContext(ctx, `UPDATE deliveries SET received_at = $1 WHERE id IN ($2, $3, $4)`, old, ids[0], ids[1], ids[2]); err != nil {
			t.Fatal(err)
		}
		r := retention.New(s, retention.Settings{Deliveries: 90 * 24 * time.Hour, Batch: 1}, nil)
		rep, err := r.Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if rep != (retention.Report{DeliveriesForgotten: 2}) {
			t.Fatalf("report %+v, want 2 deliveries forgotten and nothing else", rep)
		}
		for i, id := range ids {
			d, err := store.GetDelivery(ctx, s.Reader(), id)
			var bodies int
			if err := s.Reader().QueryRowContext(ctx, `SELECT COUNT(*) FROM delivery_bodies WHERE delivery_id = $1`, id).Scan(&bodies); err != nil {
				t.Fatal(err)
			}
			if gone := i < 2; gone {
				if err != store.ErrNotFound || bodies != 0 {
					t.Errorf("old delivery %d: %v, %d bodies; want it forgotten with its body", id, err, bodies)
				}
			} else if err != nil || d.Body != strings.Repeat("b", 100+i) || bodies != 1 {
				t.Errorf("delivery %d (waiting or recent): %v, body %d bytes; want it kept whole", id, err, len(d.Body))
			}
		}
		again := &store.Delivery{IntegrationName: "app", Event: "Push Hook", Headers: `{}`, IdempotencyKey: "key-0", Body: "{}", Status: store.DeliveryAccepted}
		if dup, err := store.InsertDelivery(ctx, s.DB, again); err != nil || dup {
			t.Fatalf("resent after it was forgotten: duplicate %v, %v; want accepted as new", dup, err)
		}
		if rep, err := r.Run(ctx); err != nil || rep != (retention.Report{}) {
			t.Fatalf("second pass: %+v %v", rep, err)
		}
	})
}

// addDeliveries stores one delivery for each status, in order: the i-th
// has the idempotency key key-i, a body of 100+i bytes and, once done
// with, the result "done".
func addDeliveries(t *testing.T, s *store.Store, statuses ...string) []int64 {
	t.Helper()
	ctx := context.Background()
	var ids []int64
	for i, status := range statuses {
		d := &store.Delivery{IntegrationName: "app", Event: "Push Hook", Headers: `{"X-Gitlab-Event":"Push Hook"}`,
			IdempotencyKey: fmt.Sprintf("key-%d", i), Body: strings.Repeat("b", 100+i), Status: store.DeliveryAccepted}
		if _, err := store.InsertDelivery(ctx, s.DB, d); err != nil {
			t.Fatal(err)
		}
		if status != store.DeliveryAccepted {
			if err := store.FinishDelivery(ctx, s.DB, d.ID, status, "done"); err != nil {
				t.Fatal(err)
			}
		}
		ids = append(ids, d.ID)
	}
	return ids
}

// --activity-history keeps each environment's newest activities and
// forgets older ones with their logs and GitLab bookkeeping, except those
// something still needs however old: the last successful deploy, the
// newest of each kind, one not finished, one GitLab does not fully show
// yet. A forgotten deploy's GitLab deployment stays claimed.
func TestAPassKeepsEachEnvironmentsNewestActivities(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		env := func(name string) int64 {
			e := &store.Environment{IntegrationName: "app", ProjectID: 42, Name: name, Slug: name, Host: name + "--app",
				Kind: "branch", Ref: name, State: store.StateActive}
			if err := store.SaveEnvironment(ctx, s.DB, e); err != nil {
				t.Fatal(err)
			}
			return e.ID
		}
		busy, quiet := env("main"), env("quiet")
		add := func(envID int64, kind, state string) int64 {
			a := store.Activity{IntegrationName: "app", EnvironmentID: envID, Kind: kind, State: state, SHA: "abc"}
			if err := store.InsertActivity(ctx, s.DB, &a); err != nil {
				t.Fatal(err)
			}
			if state != store.ActivityPending {
				if err := store.SetActivityState(ctx, s.DB, a.ID, state, ""); err != nil {
					t.Fatal(err)
				}
			}
			return a.ID
		}
		if err := store.SaveFeedbackEnv(ctx, s.DB, &store.FeedbackEnv{EnvironmentID: busy, GitLabEnvID: 5}); err != nil {
			t.Fatal(err)
		}
		feedback := func(id int64, deployment int64, settled string) {
			d := store.FeedbackDeploy{ActivityID: id, EnvironmentID: busy, StatusSent: "success", DeploymentID: deployment,
				DeploymentStatus: "success", Settled: settled}
			if err := store.SaveFeedbackDeploy(ctx, s.DB, &d); err != nil {
				t.Fatal(err)
			}
		}
		// The busy environment's oldest twenty-one: fourteen that must stay,
		// seven that go.
		unreported := add(busy, store.ActivityDeploy, store.ActivityFailed) // never recorded by feedback, and 20 deploys are newer: it goes
		lastGood := add(busy, store.ActivityDeploy, store.ActivityComplete) // every later deploy failed
		feedback(lastGood, 70, store.ActivityComplete)
		shown := add(busy, store.ActivityDeploy, store.ActivityFailed) // GitLab shows it: it goes
		feedback(shown, 77, store.ActivityFailed)
		notShown := add(busy, store.ActivityDeploy, store.ActivityFailed) // GitLab still shows it running
		feedback(notShown, 80, store.ActivityRunning)
		stuck := add(busy, store.ActivityDeploy, store.ActivityRunning)
		var unreportedYet []int64 // feedback has not recorded them (GitLab down), and they are among the newest 20 deploys
		for range 8 {
			unreportedYet = append(unreportedYet, add(busy, store.ActivityDeploy, store.ActivityFailed))
		}
		// Finished, and its environment not yet told so (apply clears it in
		// the same transaction that finishes a deploy; a stop job's may not).
		pending := add(busy, store.ActivityStop, store.ActivityComplete)
		if _, err := s.DB.ExecContext(ctx, `UPDATE environments SET pending_activity_id = $1 WHERE id = $2`, pending, busy); err != nil {
			t.Fatal(err)
		}
		add(busy, store.ActivityStop, store.ActivityComplete)                 // a newer stop, so kind alone keeps nothing of the above
		prebuild := add(busy, store.ActivityPrebuild, store.ActivityComplete) // the newest prebuild
		var going []int64
		for range 5 {
			going = append(going, add(busy, store.ActivitySync, store.ActivityComplete))
		}
		if _, err := store.AppendLog(ctx, s.DB, going[0], "old log\n"); err != nil {
			t.Fatal(err)
		}
		going = append(going, shown, unreported)
		var newest []int64
		for i := range 20 {
			kind, state := store.ActivitySync, store.ActivityComplete
			if i%2 == 0 {
				kind, state = store.ActivityDeploy, store.ActivityFailed
			}
			newest = append(newest, add(busy, kind, state))
		}
		var few []int64
		for range 5 {
			few = append(few, add(quiet, store.ActivitySync, store.ActivityComplete))
		}

		r := retention.New(s, retention.Settings{ActivityHistory: 20, Batch: 2}, nil)
		rep, err := r.Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if rep != (retention.Report{ActivitiesForgotten: len(going)}) {
			t.Fatalf("report %+v, want %d activities forgotten and nothing else", rep, len(going))
		}
		kept := func(envID int64) []int64 {
			acts, err := store.ListActivities(ctx, s.Reader(), store.ActivityFilter{EnvironmentID: envID, Limit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			var ids []int64
			for _, a := range acts {
				ids = append([]int64{a.ID}, ids...)
			}
			return ids
		}
		want := slices.Concat([]int64{lastGood, notShown, stuck}, unreportedYet, []int64{pending, pending + 1, prebuild}, newest)
		if got := kept(busy); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("the busy environment kept %v, want %v", got, want)
		}
		if got := kept(quiet); fmt.Sprint(got) != fmt.Sprint(few) {
			t.Errorf("the quiet environment kept %v, want all of %v", got, few)
		}
		var chunks, deploys int
		if err := s.Reader().QueryRowContext(ctx, `SELECT COUNT(*) FROM activity_log_chunks WHERE activity_id = $1`, going[0]).Scan(&chunks); err != nil {
			t.Fatal(err)
		}
		if err := s.Reader().QueryRowContext(ctx, `SELECT COUNT(*) FROM feedback_deploys WHERE activity_id = $1`, shown).Scan(&deploys); err != nil {
			t.Fatal(err)
		}
		if chunks != 0 || deploys != 0 {
			t.Errorf("a forgotten activity left %d log chunks and %d feedback rows", chunks, deploys)
		}
		claims, err := store.FeedbackDeploymentClaims(ctx, s.Reader(), busy)
		if err != nil {
			t.Fatal(err)
		}
		for id, want := range map[int64]bool{70: true, 77: true, 76: true, 80: true, 81: false} {
			if claims.Has(id) != want {
				t.Errorf("GitLab deployment %d claimed: %v, want %v (claims %+v)", id, !want, want, claims)
			}
		}
		if a, err := store.LastSuccessfulDeploy(ctx, s.Reader(), busy); err != nil || a.ID != lastGood {
			t.Errorf("last successful deploy %d %v, want %d", a.ID, err, lastGood)
		}
		// A second pass finds nothing more to do.
		if rep, err := r.Run(ctx); err != nil || rep != (retention.Report{}) {
			t.Fatalf("second pass: %+v %v", rep, err)
		}
	})
}

// The first pass after an upgrade, or after lowering --activity-history,
// finds long histories: one environment's 19,900 new finished activities
// (20,000 with the 100 the last pass kept) cut to 100; ns/op is one whole
// pass, on each database.
func BenchmarkForgetALongHistory(b *testing.B) {
	for _, backend := range storetest.Backends() {
		b.Run(backend.Name, func(b *testing.B) {
			s := storetest.Open(b, backend)
			ctx := context.Background()
			r := retention.New(s, retention.Settings{ActivityHistory: 100}, nil)
			acts := make([]store.Activity, 20_000)
			for i := range acts {
				acts[i] = store.Activity{IntegrationName: "app", EnvironmentID: 1, Kind: store.ActivitySync, State: store.ActivityComplete}
			}
			for b.Loop() {
				b.StopTimer()
				if err := store.InsertActivities(ctx, s.DB, acts[100:]); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				rep, err := r.Run(ctx)
				if err != nil || rep.ActivitiesForgotten < len(acts)-200 {
					b.Fatalf("forgot %d activities, %v; want at least %d", rep.ActivitiesForgotten, err, len(acts)-200)
				}
			}
		})
	}
}
