package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/store/storetest"
)

func integ(name string) *store.Integration {
	return &store.Integration{Name: name, Type: "gitlab", BaseURL: "https://gitlab.example.com", ProjectID: 42,
		ProjectPath: "group/app", DefaultBranch: "main", TokenSealed: "v1:x", WebhookSecretSealed: "v1:y", Space: "root",
		Labels: []string{"team:web"}, FetchBranches: true}
}

func TestIntegrationsRoundTripAndNamesAreUnique(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		in := integ("app")
		if err := store.CreateIntegration(ctx, s.DB, in); err != nil {
			t.Fatal(err)
		}
		if err := store.CreateIntegration(ctx, s.DB, integ("app")); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("second create with same name: err = %v, want ErrConflict", err)
		}
		got, err := store.GetIntegration(ctx, s.Reader(), "app")
		if err != nil {
			t.Fatal(err)
		}
		if got.ProjectID != 42 || !got.FetchBranches || got.PruneBranches || len(got.Labels) != 1 || got.Labels[0] != "team:web" {
			t.Fatalf("round trip lost fields: %+v", got)
		}
		got.BuildTags = "v*"
		if err := store.UpdateIntegration(ctx, s.DB, &got); err != nil {
			t.Fatal(err)
		}
		again, _ := store.GetIntegration(ctx, s.Reader(), "app")
		if again.BuildTags != "v*" {
			t.Fatalf("update not stored: %+v", again)
		}
		// integration:update writes through the conditional update: every
		// setting it can change must land, private previews and pausing too.
		again.EnvironmentAccess, again.PauseAfter = "members", store.PauseAfter(4*time.Hour)
		if err := store.UpdateIntegrationIfUnchanged(ctx, s.DB, &again, again.UpdatedAt); err != nil {
			t.Fatal(err)
		}
		third, _ := store.GetIntegration(ctx, s.Reader(), "app")
		if third.EnvironmentAccess != "members" || third.PauseAfter != store.PauseAfter(4*time.Hour) {
			t.Fatalf("conditional update lost settings: access %q, pause after %v", third.EnvironmentAccess, third.PauseAfter)
		}
		if _, err := store.GetIntegration(ctx, s.Reader(), "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("missing integration err = %v", err)
		}
	})
}

func TestDeletingAnIntegrationDetachesItsEnvironments(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		in := integ("app")
		store.CreateIntegration(ctx, s.DB, in)
		env := &store.Environment{IntegrationID: in.ID, IntegrationName: "app", ProjectID: 42, Name: "main", Slug: "main",
			Host: "main--app", Kind: "branch", Ref: "main", State: store.StateActive}
		if err := store.SaveEnvironment(ctx, s.DB, env); err != nil {
			t.Fatal(err)
		}
		if err := store.DeleteIntegration(ctx, s.DB, in.ID); err != nil {
			t.Fatal(err)
		}
		got, err := store.GetEnvironment(ctx, s.Reader(), "app", "main")
		if err != nil {
			t.Fatalf("environment gone after integration delete: %v", err)
		}
		if !got.Detached || got.State != store.StateActive {
			t.Fatalf("want detached active env, got %+v", got)
		}
		in2 := integ("app")
		store.CreateIntegration(ctx, s.DB, in2)
		if err := store.ReattachEnvironments(ctx, s.DB, *in2); err != nil {
			t.Fatal(err)
		}
		got, _ = store.GetEnvironment(ctx, s.Reader(), "app", "main")
		if got.Detached || got.IntegrationID != in2.ID {
			t.Fatalf("re-created integration did not get its environment back: %+v", got)
		}
	})
}

func TestProjectEnvironmentsArePagedAndFilteredInTheDatabase(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		in := integ("app")
		store.CreateIntegration(ctx, s.DB, in)
		for i := 0; i < 25; i++ {
			state := store.StateActive
			if i%5 == 0 {
				state = store.StateInactive
			}
			e := &store.Environment{IntegrationID: in.ID, IntegrationName: "app", ProjectID: 42,
				Name: fmt.Sprintf("review/feature_%02d", i), Slug: fmt.Sprintf("s%d", i), Host: fmt.Sprintf("s%d--app", i),
				Kind: "branch", State: state}
			if err := store.SaveEnvironment(ctx, s.DB, e); err != nil {
				t.Fatal(err)
			}
		}
		ids := []int64{in.ID}
		tests := []struct {
			name      string
			q         store.ProjectEnvQuery
			limit     int
			offset    int
			wantLen   int
			wantTotal int
		}{
			{"first page", store.ProjectEnvQuery{IntegrationIDs: ids}, 10, 0, 10, 25},
			{"last page", store.ProjectEnvQuery{IntegrationIDs: ids}, 10, 20, 5, 25},
			{"exact name", store.ProjectEnvQuery{IntegrationIDs: ids, Name: "review/feature_03"}, 10, 0, 1, 1},
			{"search is a case-insensitive prefix", store.ProjectEnvQuery{IntegrationIDs: ids, Prefix: "REVIEW/FEATURE_1"}, 100, 0, 10, 10},
			{"search treats _ and % literally", store.ProjectEnvQuery{IntegrationIDs: ids, Prefix: "review/feature%"}, 100, 0, 0, 0},
			{"stopped = inactive", store.ProjectEnvQuery{IntegrationIDs: ids, GitLabState: "stopped"}, 100, 0, 5, 5},
			{"available", store.ProjectEnvQuery{IntegrationIDs: ids, GitLabState: "available"}, 100, 0, 20, 20},
			{"other integration", store.ProjectEnvQuery{IntegrationIDs: []int64{in.ID + 1}}, 100, 0, 0, 0},
		}
		for _, tt := range tests {
			got, err := store.PageProjectEnvironments(ctx, s.Reader(), tt.q, tt.limit, tt.offset)
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			total, err := store.CountProjectEnvironments(ctx, s.Reader(), tt.q, 10000)
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			if len(got) != tt.wantLen || total != tt.wantTotal {
				t.Errorf("%s: got %d rows total %d, want %d total %d", tt.name, len(got), total, tt.wantLen, tt.wantTotal)
			}
		}
	})
}

func TestDuplicateIdempotencyKeyIsRecordedAsDuplicate(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		d1 := &store.Delivery{IntegrationName: "app", Event: "Push Hook", IdempotencyKey: "k1", Status: store.DeliveryAccepted, Body: "{}", Headers: "{}"}
		dup, err := store.InsertDelivery(ctx, s.DB, d1)
		if err != nil || dup {
			t.Fatalf("first insert dup=%v err=%v", dup, err)
		}
		d2 := &store.Delivery{IntegrationName: "app", Event: "Push Hook", IdempotencyKey: "k1", Status: store.DeliveryAccepted, Body: "{}", Headers: "{}"}
		dup, err = store.InsertDelivery(ctx, s.DB, d2)
		if err != nil || !dup || d2.DuplicateOf != d1.ID || d2.Status != store.DeliveryDuplicate {
			t.Fatalf("second insert dup=%v err=%v d2=%+v", dup, err, d2)
		}
		d3 := &store.Delivery{IntegrationName: "other", Event: "Push Hook", IdempotencyKey: "k1", Status: store.DeliveryAccepted, Body: "{}", Headers: "{}"}
		if dup, _ := store.InsertDelivery(ctx, s.DB, d3); dup {
			t.Fatal("same key on another integration counted as duplicate")
		}
	})
}

func TestAPITokensAuthenticateUntilRevoked(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		v := store.NewTokenValue()
		tok, err := store.CreateAPIToken(ctx, s.DB, "ci", store.RoleMember, v)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := store.Authenticate(ctx, s.Reader(), v); err != nil {
			t.Fatalf("fresh token rejected: %v", err)
		}
		if _, err := store.Authenticate(ctx, s.Reader(), v+"x"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("wrong token accepted: %v", err)
		}
		store.RevokeAPIToken(ctx, s.DB, tok.ID)
		if _, err := store.Authenticate(ctx, s.Reader(), v); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("revoked token accepted: %v", err)
		}
	})
}

func TestMigrationsAreIdempotentAcrossRestarts(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			url := b.URL(t)
			dir := t.TempDir()
			for i := 0; i < 2; i++ {
				s, err := store.Open(context.Background(), url, dir)
				if err != nil {
					t.Fatalf("open #%d: %v", i+1, err)
				}
				ok, err := s.Migrated(context.Background())
				s.Close()
				if err != nil || !ok {
					t.Fatalf("open #%d: migrated=%v err=%v", i+1, ok, err)
				}
			}
		})
	}
}

func TestBadDatabaseURLNamesTheFlag(t *testing.T) {
	_, err := store.Open(context.Background(), "mysql://x", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "--database-url") {
		t.Fatalf("err = %v", err)
	}
}

func TestABatchOfDeliveriesIsDedupedInsideAndAcrossBatches(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		mk := func(key string) *store.Delivery {
			return &store.Delivery{IntegrationName: "app", Event: "Push Hook", IdempotencyKey: key, Status: store.DeliveryAccepted, Body: "{}", Headers: "{}"}
		}
		first := []*store.Delivery{mk("a"), mk(""), mk("b"), mk("a"), mk("")}
		dups, err := store.InsertDeliveries(ctx, s.DB, first)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(dups) != "[false false false true false]" {
			t.Fatalf("dups = %v", dups)
		}
		if first[3].DuplicateOf != first[0].ID || first[3].Status != store.DeliveryDuplicate {
			t.Fatalf("in-batch duplicate = %+v, first id %d", first[3], first[0].ID)
		}
		ids := map[int64]bool{}
		for _, d := range first {
			if d.ID == 0 || ids[d.ID] {
				t.Fatalf("ids not unique or unset: %+v", first)
			}
			ids[d.ID] = true
			got, err := store.GetDelivery(ctx, s.Reader(), d.ID)
			if err != nil || got.IdempotencyKey != d.IdempotencyKey || got.Status != d.Status {
				t.Fatalf("stored %+v (%v), want key %q status %s", got, err, d.IdempotencyKey, d.Status)
			}
		}
		second := []*store.Delivery{mk("b"), mk("c")}
		dups, err = store.InsertDeliveries(ctx, s.DB, second)
		if err != nil || fmt.Sprint(dups) != "[true false]" || second[0].DuplicateOf != first[2].ID {
			t.Fatalf("second batch dups=%v err=%v %+v", dups, err, second[0])
		}
		// A batch larger than one statement's chunk.
		var big []*store.Delivery
		for i := 0; i < 150; i++ {
			big = append(big, mk(fmt.Sprint("k", i%100)))
		}
		dups, err = store.InsertDeliveries(ctx, s.DB, big)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for i, d := range dups {
			if d {
				n++
				if big[i].DuplicateOf != big[i-100].ID {
					t.Fatalf("row %d duplicate of %d, want %d", i, big[i].DuplicateOf, big[i-100].ID)
				}
			}
		}
		if n != 50 {
			t.Fatalf("%d duplicates in the big batch, want 50", n)
		}
	})
}
