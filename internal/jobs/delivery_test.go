package jobs

import (
	"context"
	"strings"
	"testing"

	"github.com/glenv/glenv/internal/slug"
	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/store/storetest"
)

// Deliveries are applied without a savepoint each; when one of a batch can
// never apply (its host is taken), the batch is redone with each delivery
// isolated: that one is marked failed, the ones before and after it apply
// exactly once.
func TestADeliveryThatCannotApplyIsFailedAloneAndTheBatchStillApplies(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		w := newWorld(t, s)
		squatter := &store.Environment{IntegrationID: w.in.ID, IntegrationName: "app", ProjectID: 7, Name: "squatter",
			Slug: "taken", Host: slug.Host(slug.Environment("taken"), "app"), Kind: "branch", State: store.StateInactive}
		if err := store.SaveEnvironment(ctx, s.DB, squatter); err != nil {
			t.Fatal(err)
		}
		var ds []*store.Delivery
		for _, branch := range []string{"before", "taken", "after"} {
			ds = append(ds, &store.Delivery{IntegrationID: w.in.ID, IntegrationName: "app", Event: "Push Hook",
				IdempotencyKey: branch, Headers: "{}", Body: pushBody(branch), Status: store.DeliveryAccepted})
		}
		if _, err := store.InsertDeliveries(ctx, s.DB, ds); err != nil {
			t.Fatal(err)
		}
		err := (&deliveryWorker{q: w.q, deps: w.q.deps}).Work(ctx, jobFor(ProcessDeliveryArgs{DeliveryIDs: []int64{ds[0].ID, ds[1].ID, ds[2].ID}}))
		if err != nil {
			t.Fatal(err)
		}
		for i, want := range []string{store.DeliveryProcessed, store.DeliveryFailed, store.DeliveryProcessed} {
			d, err := store.GetDelivery(ctx, s.Reader(), ds[i].ID)
			if err != nil || d.Status != want {
				t.Fatalf("delivery %s: %q %q (%v), want %s", ds[i].IdempotencyKey, d.Status, d.Result, err, want)
			}
			if want == store.DeliveryFailed && !strings.Contains(d.Result, "rename the branch") {
				t.Fatalf("the failed delivery's result %q does not say what to do", d.Result)
			}
		}
		for _, d := range []*store.Delivery{ds[0], ds[2]} {
			acts, err := store.ListActivities(ctx, s.Reader(), store.ActivityFilter{Integration: "app", DeliveryID: d.ID, Limit: 10})
			if err != nil || len(acts) != 1 {
				t.Fatalf("%s: %d activities (%v), want exactly one: the redone batch applies it once", d.IdempotencyKey, len(acts), err)
			}
		}
		if _, err := store.GetEnvironment(ctx, s.Reader(), "app", "taken"); err == nil {
			t.Fatal("the colliding environment was created")
		}
	})
}
