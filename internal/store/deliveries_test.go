package store_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/store/storetest"
)

// A worker reads its batch of deliveries in one query: each with its
// body, the ones that no longer exist left out.
func TestGetDeliveriesReadsABatchWithBodiesAndSkipsMissingOnes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		var batch []*store.Delivery
		for i := range 3 {
			batch = append(batch, &store.Delivery{IntegrationName: "app", Event: "Push Hook", IdempotencyKey: fmt.Sprint("k", i),
				Headers: "{}", Body: fmt.Sprintf(`{"n":%d}`, i), Status: store.DeliveryAccepted})
		}
		if _, err := store.InsertDeliveries(ctx, s.DB, batch); err != nil {
			t.Fatal(err)
		}
		got, err := store.GetDeliveries(ctx, s.DB, []int64{batch[2].ID, 999999, batch[0].ID})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[batch[0].ID].Body != `{"n":0}` || got[batch[2].ID].Body != `{"n":2}` || got[batch[2].ID].IdempotencyKey != "k2" {
			t.Fatalf("got %+v; want deliveries 0 and 2 with their bodies, and no 999999", got)
		}
		if none, err := store.GetDeliveries(ctx, s.DB, nil); err != nil || len(none) != 0 {
			t.Fatalf("no ids: %v %v", none, err)
		}
	})
}
