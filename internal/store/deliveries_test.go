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

// Deliveries stored before migration 0017 kept their bodies in
// deliveries.body: after the upgrade they read back whole, and the old
// column is emptied so it no longer weighs on every update of the row.
func TestBodiesStoredBeforeTheirOwnTableSurviveTheUpgrade(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			url, dir := b.URL(t), t.TempDir()
			s, err := store.Open(ctx, url, dir)
			if err != nil {
				t.Fatal(err)
			}
			kept := &store.Delivery{IntegrationName: "app", Event: "Push Hook", Headers: "{}", Body: `{"object_kind":"push"}`, Status: store.DeliveryAccepted}
			dropped := &store.Delivery{IntegrationName: "app", Event: "Push Hook", Headers: "{}", Body: `{"gone":true}`, Status: store.DeliveryProcessed}
			if _, err := store.InsertDeliveries(ctx, s.DB, []*store.Delivery{kept, dropped}); err != nil {
				t.Fatal(err)
			}
			// Undo migration 0017: bodies back in deliveries, one of them
			// already dropped by retention.
			for _, stmt := range []string{
				`UPDATE deliveries SET body = (SELECT body FROM delivery_bodies WHERE delivery_id = deliveries.id)`,
				`UPDATE deliveries SET body = '', body_dropped_at = 1 WHERE status = 'processed'`,
				`DROP TABLE delivery_bodies`,
				`DELETE FROM glenv_migrations WHERE version = 17`,
			} {
				if _, err := s.DB.ExecContext(ctx, stmt); err != nil {
					t.Fatalf("%s: %v", stmt, err)
				}
			}
			s.Close()
			if s, err = store.Open(ctx, url, dir); err != nil {
				t.Fatalf("upgrade: %v", err)
			}
			defer s.Close()
			got, err := store.GetDeliveries(ctx, s.Reader(), []int64{kept.ID, dropped.ID})
			if err != nil {
				t.Fatal(err)
			}
			if got[kept.ID].Body != kept.Body || got[dropped.ID].Body != "" || got[dropped.ID].BodyDroppedAt.IsZero() {
				t.Fatalf("after the upgrade: kept %q, dropped %q (dropped at %v)", got[kept.ID].Body, got[dropped.ID].Body, got[dropped.ID].BodyDroppedAt)
			}
			var old int
			if err := s.Reader().QueryRowContext(ctx, `SELECT COUNT(*) FROM deliveries WHERE body <> ''`).Scan(&old); err != nil || old != 0 {
				t.Fatalf("%d rows still hold a body in deliveries.body (%v)", old, err)
			}
		})
	}
}

func TestFinishDeliveriesRecordsEachOutcomeOfABatch(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		var batch []*store.Delivery
		for i := 0; i < 70; i++ { // more than one statement's worth
			batch = append(batch, &store.Delivery{IntegrationName: "app", Event: "Push Hook", Headers: "{}", Body: `{}`, Status: store.DeliveryAccepted})
		}
		if _, err := store.InsertDeliveries(ctx, s.DB, batch); err != nil {
			t.Fatal(err)
		}
		var done []store.Outcome
		for i, d := range batch[:69] { // the last one is still waiting
			done = append(done, store.Outcome{ID: d.ID, Status: store.DeliveryProcessed, Result: fmt.Sprint("result ", i)})
		}
		done[3].Status = store.DeliveryFailed
		if err := store.FinishDeliveries(ctx, s.DB, done); err != nil {
			t.Fatal(err)
		}
		got, err := store.GetDeliveries(ctx, s.Reader(), []int64{batch[0].ID, batch[3].ID, batch[68].ID, batch[69].ID})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			d              *store.Delivery
			status, result string
		}{{batch[0], store.DeliveryProcessed, "result 0"}, {batch[3], store.DeliveryFailed, "result 3"},
			{batch[68], store.DeliveryProcessed, "result 68"}, {batch[69], store.DeliveryAccepted, ""}} {
			g := got[c.d.ID]
			if g.Status != c.status || g.Result != c.result || g.ProcessedAt.IsZero() != (c.status == store.DeliveryAccepted) || g.Body != "{}" {
				t.Errorf("delivery %d: %s %q processed at %v body %q; want %s %q", c.d.ID, g.Status, g.Result, g.ProcessedAt, g.Body, c.status, c.result)
			}
		}
	})
}

// A group commit's batch mixes new keys, a key repeated in the batch, a
// key stored by an earlier batch and deliveries without a key: on either
// database (PostgreSQL stores the new keys' rows and bodies in one
// statement) each gets its own id and its own body back, and only the
// repeats are duplicates of the first.
func TestInsertDeliveriesOnStoresEveryBodyWithItsOwnRow(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		mk := func(key, body string) *store.Delivery {
			return &store.Delivery{IntegrationName: "app", Event: "Push Hook", IdempotencyKey: key,
				Headers: "{}", Body: body, Status: store.DeliveryAccepted}
		}
		earlier := mk("old", `{"n":"earlier"}`)
		if _, err := store.InsertDeliveriesOn(ctx, s.DB, s.Dialect, []*store.Delivery{earlier}); err != nil {
			t.Fatal(err)
		}
		batch := []*store.Delivery{mk("a", `{"n":0}`), mk("", `{"n":1}`), mk("a", `{"n":2}`), mk("old", `{"n":3}`),
			mk("b", `{"n":4}`), mk("", `{"n":5}`)}
		dups, err := store.InsertDeliveriesOn(ctx, s.DB, s.Dialect, batch)
		if err != nil {
			t.Fatal(err)
		}
		wantDup := []int64{0, 0, batch[0].ID, earlier.ID, 0, 0}
		var ids []int64
		seen := map[int64]bool{}
		for i, d := range batch {
			if d.ID == 0 || seen[d.ID] {
				t.Fatalf("delivery %d: id %d, want a fresh one", i, d.ID)
			}
			seen[d.ID] = true
			ids = append(ids, d.ID)
			if dups[i] != (wantDup[i] != 0) || d.DuplicateOf != wantDup[i] {
				t.Errorf("delivery %d: dup %v of %d, want duplicate of %d", i, dups[i], d.DuplicateOf, wantDup[i])
			}
		}
		got, err := store.GetDeliveries(ctx, s.DB, ids)
		if err != nil {
			t.Fatal(err)
		}
		for i, d := range batch {
			if got[d.ID].Body != d.Body {
				t.Errorf("delivery %d: body %q, want %q", i, got[d.ID].Body, d.Body)
			}
		}
	})
}

// A batch larger than one statement's chunk (64 rows) is stored in several
// statements: every delivery still gets its own body, and a key repeated
// across chunks is a duplicate of its first.
func TestInsertDeliveriesOnSpansChunks(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		var batch []*store.Delivery
		for i := range 150 {
			key := fmt.Sprint("k", i)
			if i%50 == 49 {
				key = "k0" // repeats the first, from a later chunk
			}
			batch = append(batch, &store.Delivery{IntegrationName: "app", Event: "Push Hook", IdempotencyKey: key,
				Headers: "{}", Body: fmt.Sprintf(`{"n":%d}`, i), Status: store.DeliveryAccepted})
		}
		dups, err := store.InsertDeliveriesOn(ctx, s.DB, s.Dialect, batch)
		if err != nil {
			t.Fatal(err)
		}
		ids := make([]int64, len(batch))
		for i, d := range batch {
			ids[i] = d.ID
			if want := i%50 == 49; dups[i] != want || (want && d.DuplicateOf != batch[0].ID) {
				t.Errorf("delivery %d: dup %v of %d, want dup %v of %d", i, dups[i], d.DuplicateOf, want, batch[0].ID)
			}
		}
		got, err := store.GetDeliveries(ctx, s.DB, ids)
		if err != nil {
			t.Fatal(err)
		}
		for i, d := range batch {
			if got[d.ID].Body != d.Body {
				t.Errorf("delivery %d (id %d): body %q, want %q", i, d.ID, got[d.ID].Body, d.Body)
			}
		}
	})
}
