package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/store/storetest"
)

func TestVariablesAreUniquePerLevelAndGoWithTheirIntegration(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		in := integ("app")
		if err := store.CreateIntegration(ctx, s.DB, in); err != nil {
			t.Fatal(err)
		}
		mk := func(env, name string) *store.Variable {
			return &store.Variable{IntegrationID: in.ID, Environment: env, Name: name, Value: "v", Inheritable: true, VisibleBuild: true, VisibleRun: true}
		}
		for _, v := range []*store.Variable{mk("", "KEY"), mk("main", "KEY"), mk("feature", "KEY")} {
			if err := store.CreateVariable(ctx, s.DB, v); err != nil {
				t.Fatalf("one name at several levels: %v", err)
			}
		}
		if err := store.CreateVariable(ctx, s.DB, mk("main", "KEY")); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("the same name twice at one level: %v, want ErrConflict", err)
		}
		v, err := store.GetVariable(ctx, s.Reader(), in.ID, "main", "KEY")
		if err != nil {
			t.Fatal(err)
		}
		v.Value, v.Sensitive, v.VisibleBuild = "sealed", true, false
		if err := store.UpdateVariable(ctx, s.DB, &v); err != nil {
			t.Fatal(err)
		}
		got, err := store.GetVariable(ctx, s.Reader(), in.ID, "main", "KEY")
		if err != nil || got.Value != "sealed" || !got.Sensitive || got.VisibleBuild || !got.VisibleRun || !got.Inheritable {
			t.Fatalf("after the update: %+v %v", got, err)
		}
		if n, err := store.CountVariablesAt(ctx, s.Reader(), in.ID, ""); err != nil || n != 1 {
			t.Fatalf("integration level count = %d %v, want 1", n, err)
		}
		if err := store.DeleteEnvironmentVariables(ctx, s.DB, in.ID, "feature"); err != nil {
			t.Fatal(err)
		}
		all, err := store.VariablesOfIntegration(ctx, s.Reader(), in.ID)
		if err != nil || len(all) != 2 || all[0].Environment != "" || all[1].Environment != "main" {
			t.Fatalf("after deleting feature's: %+v %v", all, err)
		}
		if err := store.DeleteIntegration(ctx, s.DB, in.ID); err != nil {
			t.Fatal(err)
		}
		if all, err := store.VariablesOfIntegration(ctx, s.Reader(), in.ID); err != nil || len(all) != 0 {
			t.Fatalf("after deleting the integration: %+v %v", all, err)
		}
	})
}
