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

// PostgreSQL compresses a stored body with lz4, not pglz (migration 0030:
// a few times less server CPU inside every acknowledgement), and the body
// reads back whole; on SQLite the PostgreSQL-only migration is recorded
// and does nothing.
func TestBodiesAreCompressedWithLZ4OnPostgreSQL(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		var n int
		if err := s.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM glenv_migrations WHERE version = 30`).Scan(&n); err != nil || n != 1 {
			t.Fatalf("migration 0030 recorded %d times (%v), want once", n, err)
		}
		body := strings.Repeat(`{"object_kind":"push","commits":[{"id":"0123456789abcdef"}]}`, 150)
		d := &store.Delivery{IntegrationName: "app", Event: "Push Hook", IdempotencyKey: "k", Headers: "{}", Body: body,
			Status: store.DeliveryAccepted}
		if _, err := store.InsertDeliveriesOn(ctx, s.DB, s.Dialect, []*store.Delivery{d}); err != nil {
			t.Fatal(err)
		}
		got, err := store.GetDeliveries(ctx, s.Reader(), []int64{d.ID})
		if err != nil || got[d.ID].Body != body {
			t.Fatalf("body read back as %d bytes (%v), want the %d stored", len(got[d.ID].Body), err, len(body))
		}
		if s.Dialect != store.Postgres {
			return
		}
		var method string
		if err := s.DB.QueryRowContext(ctx, `SELECT COALESCE(pg_column_compression(body), 'none') FROM delivery_bodies WHERE delivery_id = $1`, d.ID).Scan(&method); err != nil {
			t.Fatal(err)
		}
		if method != "lz4" {
			t.Fatalf("body compressed with %s, want lz4", method)
		}
	})
}

// TestTheOneTripAckHasItsOwnConnections: on PostgreSQL the one-trip ack
// commits on a pool of its own, so it is answered while every connection
// of the main pool is taken (River's workers and the drain hold them under
// load), and its commits stay on a few warm backends.
func TestTheOneTripAckHasItsOwnConnections(t *testing.T) {
	s := storetest.Open(t, storetest.Postgres(t))
	ctx := context.Background()
	for range s.DB.Stats().MaxOpenConnections {
		c, err := s.DB.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	wait, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	batch := []*store.Delivery{{IntegrationName: "app", Event: "Push Hook", IdempotencyKey: "own-pool", Status: store.DeliveryAccepted, Body: "{}", Headers: "{}"}}
	if err := s.InsertDeliveriesPipelined(wait, batch, store.PipelinedPG{}); err != nil {
		t.Fatalf("with the main pool's %d connections taken, the one-trip ack: %v", s.DB.Stats().MaxOpenConnections, err)
	}
	if batch[0].ID == 0 {
		t.Error("the delivery has no id")
	}
}
