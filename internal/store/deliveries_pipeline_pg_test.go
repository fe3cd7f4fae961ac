package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/store/storetest"
)

// The one-round-trip ack takes only what it can store whole: a batch it
// cannot (a delivery without a key, a key twice or stored before, a check
// that declines or fails) stores nothing at all, so the caller's
// transaction can store it from scratch. SQLite declines every batch: the
// pipeline is PostgreSQL's.
func TestTheOneTripAckStoresABatchWholeOrNothing(t *testing.T) {
	const declines = `SELECT 1 / count(*) FROM deliveries WHERE false`
	cases := []struct {
		rule  string
		keys  []string
		check string
		want  string // "stored", "declined" or "failed"
	}{
		{"new distinct keys are stored with their bodies", []string{"a", "b", "c"}, "", "stored"},
		{"a check that passes lets the batch commit", []string{"a", "b"}, `SELECT 1 / count(*) FROM deliveries`, "stored"},
		{"a key twice in the batch is declined", []string{"a", "b", "a"}, "", "declined"},
		{"a delivery without a key is declined", []string{"a", ""}, "", "declined"},
		{"a key stored before is declined, the new ones with it", []string{"new", "old"}, "", "declined"},
		{"a check dividing by zero declines the batch after its insert", []string{"a"}, declines, "declined"},
		{"any other failure of the check is an error and stores nothing", []string{"a"}, `SELECT 1 FROM no_such_table`, "failed"},
	}
	for _, c := range cases {
		t.Run(c.rule, func(t *testing.T) {
			storetest.Each(t, func(t *testing.T, s *store.Store) {
				ctx := context.Background()
				old := &store.Delivery{IntegrationName: "app", Event: "Push Hook", IdempotencyKey: "old", Headers: "{}",
					Body: "{}", Status: store.DeliveryAccepted}
				if _, err := store.InsertDeliveries(ctx, s.DB, []*store.Delivery{old}); err != nil {
					t.Fatal(err)
				}
				var batch []*store.Delivery
				for i, k := range c.keys {
					batch = append(batch, &store.Delivery{IntegrationName: "app", Event: "Push Hook", IdempotencyKey: k,
						Headers: "{}", Body: fmt.Sprintf(`{"n":%d}`, i), Status: store.DeliveryAccepted})
				}
				err := s.InsertDeliveriesPipelined(ctx, batch, store.PipelinedPG{LockShared: 42, Check: c.check})
				want := c.want
				if s.Dialect == store.SQLite {
					want = "declined"
				}
				n, cerr := store.CountDeliveries(ctx, s.Reader(), store.DeliveryAccepted)
				if cerr != nil {
					t.Fatal(cerr)
				}
				switch want {
				case "stored":
					if err != nil || n != 1+len(batch) {
						t.Fatalf("err %v, %d accepted deliveries; want the batch of %d stored", err, n, len(batch))
					}
					ids := make([]int64, len(batch))
					for i, d := range batch {
						ids[i] = d.ID
					}
					got, err := store.GetDeliveries(ctx, s.Reader(), ids)
					if err != nil {
						t.Fatal(err)
					}
					for i, d := range batch {
						if g := got[d.ID]; g.Body != fmt.Sprintf(`{"n":%d}`, i) || g.IdempotencyKey != d.IdempotencyKey || d.ReceivedAt.IsZero() {
							t.Fatalf("delivery %d read back as %+v, want its own key and body", i, g)
						}
					}
				case "declined", "failed":
					if (want == "declined") != errors.Is(err, store.ErrDeclined) || err == nil {
						t.Fatalf("err %v, want %s", err, want)
					}
					if n != 1 {
						t.Fatalf("%d accepted deliveries after a batch that was %s; want only the one stored before", n, want)
					}
					for _, d := range batch {
						if d.ID != 0 {
							t.Fatalf("a delivery of a batch that was %s got id %d", want, d.ID)
						}
					}
				}
			})
		})
	}
}
