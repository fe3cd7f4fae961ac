package store_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/store/storetest"
)

func TestIntegrationCeilingsAreStoredByEveryWrite(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		c := store.Ceilings{MaxMemory: 512 << 20, MaxProcesses: 64, MaxCPU: 0.25, MaxDisk: 1 << 30, DatabaseConnectionLimit: 5}
		in := integ("app")
		in.Ceilings = c
		if err := store.CreateIntegration(ctx, s.DB, in); err != nil {
			t.Fatal(err)
		}
		got, err := store.GetIntegration(ctx, s.Reader(), "app")
		if err != nil || got.Ceilings != c {
			t.Fatalf("created with %+v, read %+v (%v)", c, got.Ceilings, err)
		}
		got.Ceilings.MaxCPU, got.Ceilings.MaxMemory = 1.5, 0
		if err := store.UpdateIntegration(ctx, s.DB, &got); err != nil {
			t.Fatal(err)
		}
		again, _ := store.GetIntegration(ctx, s.Reader(), "app")
		if again.MaxCPU != 1.5 || again.MaxMemory != 0 || again.MaxDisk != 1<<30 {
			t.Fatalf("update stored %+v", again.Ceilings)
		}
		again.DatabaseConnectionLimit = 7
		if err := store.UpdateIntegrationIfUnchanged(ctx, s.DB, &again, again.UpdatedAt); err != nil {
			t.Fatal(err)
		}
		third, _ := store.GetIntegration(ctx, s.Reader(), "app")
		if third.DatabaseConnectionLimit != 7 {
			t.Fatalf("conditional update stored %+v", third.Ceilings)
		}
	})
}

func TestCeilingsInJSONAreNamedAfterTheServeFlagsAndSizesReadBack(t *testing.T) {
	t.Parallel()
	c := store.Ceilings{MaxMemory: 512 << 20, MaxProcesses: 64, MaxCPU: 0.5, DatabaseConnectionLimit: 5}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"environment_max_memory":"512M","environment_max_processes":64,"environment_max_cpu":0.5,"environment_max_disk":"0","services_database_connection_limit":5}`
	if string(b) != want {
		t.Fatalf("got %s\nwant %s", b, want)
	}
	var back store.Ceilings
	if err := json.Unmarshal(b, &back); err != nil || back != c {
		t.Fatalf("read back %+v, %v", back, err)
	}
	var n store.Size
	if err := json.Unmarshal([]byte(`1048576`), &n); err != nil || n != 1<<20 {
		t.Fatalf("a size in bytes reads as %d, %v", n, err)
	}
	if err := json.Unmarshal([]byte(`"lots"`), &n); err == nil {
		t.Fatal("a size that is no size was read")
	}
}
