package jobs

import (
	"context"
	"database/sql"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/store/storetest"
)

func freshOf(id int64, body string) *store.Delivery {
	return &store.Delivery{ID: id, IntegrationName: "app", Event: "Push Hook", Body: body, Status: store.DeliveryAccepted}
}

func heldIDs(f *freshDeliveries) []int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []int64
	for id := range f.byID {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func TestFreshDeliveries(t *testing.T) {
	all := func(n int) []bool { return slices.Repeat([]bool{true}, n) }
	none := func(n int) []bool { return make([]bool, n) }
	for _, c := range []struct {
		name      string
		run       func(f *freshDeliveries) (hits, misses []int64)
		wantHits  []int64
		wantMiss  []int64
		wantHeld  []int64
		wantBytes int
	}{
		{name: "put then take all", run: func(f *freshDeliveries) ([]int64, []int64) {
			f.put([]*store.Delivery{freshOf(1, "a"), freshOf(2, "bb")}, all(2), none(2))
			return takeIDs(f, 1, 2)
		}, wantHits: []int64{1, 2}},
		{name: "not queued, duplicates and processed ones are not kept", run: func(f *freshDeliveries) ([]int64, []int64) {
			processed := freshOf(3, "c")
			processed.Status = store.DeliveryProcessed
			f.put([]*store.Delivery{freshOf(1, "a"), freshOf(2, "b"), processed, freshOf(4, "d")}, []bool{false, true, true, true}, []bool{false, true, false, false})
			return takeIDs(f, 1, 2, 3, 4)
		}, wantHits: []int64{4}, wantMiss: []int64{1, 2, 3}},
		{name: "a body over freshMaxBody is read from the database", run: func(f *freshDeliveries) ([]int64, []int64) {
			f.put([]*store.Delivery{freshOf(1, strings.Repeat("x", freshMaxBody+1)), freshOf(2, "b")}, all(2), none(2))
			return takeIDs(f, 1, 2)
		}, wantHits: []int64{2}, wantMiss: []int64{1}},
		{name: "what is below the first id asked for is dropped", run: func(f *freshDeliveries) ([]int64, []int64) {
			f.put([]*store.Delivery{freshOf(1, "a"), freshOf(2, "b"), freshOf(3, "c"), freshOf(5, "e")}, all(4), none(4))
			return takeIDs(f, 3, 4)
		}, wantHits: []int64{3}, wantMiss: []int64{4}, wantHeld: []int64{5}, wantBytes: 1},
		{name: "a take leaves the rest", run: func(f *freshDeliveries) ([]int64, []int64) {
			f.put([]*store.Delivery{freshOf(1, "a"), freshOf(2, "bb"), freshOf(3, "ccc")}, all(3), none(3))
			return takeIDs(f, 1)
		}, wantHits: []int64{1}, wantHeld: []int64{2, 3}, wantBytes: 5},
		{name: "the count bound drops the oldest", run: func(f *freshDeliveries) ([]int64, []int64) {
			for id := int64(1); id <= freshMaxCount+2; id++ {
				f.put([]*store.Delivery{freshOf(id, "a")}, all(1), none(1))
			}
			if got := f.len(); got != freshMaxCount {
				t.Errorf("holds %d, want the bound %d", got, freshMaxCount)
			}
			return takeIDs(f, 1, 2, 3)
		}, wantHits: []int64{3}, wantMiss: []int64{1, 2}, wantHeld: idRange(4, freshMaxCount+2), wantBytes: freshMaxCount - 1},
		{name: "the bytes bound drops the oldest", run: func(f *freshDeliveries) ([]int64, []int64) {
			big := strings.Repeat("x", freshMaxBody)
			n := int64(freshMaxBytes/freshMaxBody + 3)
			for id := int64(1); id <= n; id++ {
				f.put([]*store.Delivery{freshOf(id, big)}, all(1), none(1))
			}
			return takeIDs(f, 1, 2, 3, 4)
		}, wantHits: []int64{4}, wantMiss: []int64{1, 2, 3}, wantHeld: idRange(5, freshMaxBytes/freshMaxBody+3), wantBytes: freshMaxBytes - freshMaxBody},
	} {
		t.Run(c.name, func(t *testing.T) {
			var f freshDeliveries
			hits, misses := c.run(&f)
			if !slices.Equal(hits, c.wantHits) || !slices.Equal(misses, c.wantMiss) {
				t.Errorf("hits %v, misses %v; want %v, %v", hits, misses, c.wantHits, c.wantMiss)
			}
			if held := heldIDs(&f); !slices.Equal(held, c.wantHeld) {
				t.Errorf("still held %v, want %v", short(held), short(c.wantHeld))
			}
			if f.bytes != c.wantBytes {
				t.Errorf("bytes %d, want %d", f.bytes, c.wantBytes)
			}
			if len(f.order) > 2*len(f.byID)+64 {
				t.Errorf("order holds %d ids for %d deliveries", len(f.order), len(f.byID))
			}
		})
	}
}

func takeIDs(f *freshDeliveries, ids ...int64) (hits, misses []int64) {
	got, misses := f.take(ids)
	for id, d := range got {
		if d.ID != id {
			panic(fmt.Sprintf("delivery %d under id %d", d.ID, id))
		}
		hits = append(hits, id)
	}
	slices.Sort(hits)
	return hits, misses
}

func idRange(from, to int64) []int64 {
	var ids []int64
	for id := from; id <= to; id++ {
		ids = append(ids, id)
	}
	return ids
}

func short(ids []int64) string {
	if len(ids) > 6 {
		return fmt.Sprintf("%v … %v (%d)", ids[:3], ids[len(ids)-3:], len(ids))
	}
	return fmt.Sprint(ids)
}

// What the drain takes from fresh is exactly what it would have read
// back: same fields, same times, same body. Then the drain processes every
// delivery once, whether it took it from fresh or read it; on both
// databases.
func TestTheDrainTakesWhatItWouldHaveRead(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) { drainTakesWhatItWouldHaveRead(t, b) })
	}
}

func drainTakesWhatItWouldHaveRead(t *testing.T, b storetest.Backend) {
	s := storetest.Open(t, b) // closed after the queue's stop, registered later
	w := newWorld(t, s)
	ctx := context.Background()
	batch := []*store.Delivery{w.pushDelivery("fresh-1"), w.pushDelivery("fresh-2"), w.pushDelivery("fresh-1"), w.pushDelivery("fresh-3")}
	batch[3].IdempotencyKey = "" // stored without a key
	if _, err := w.q.AcceptDeliveries(ctx, batch, []bool{true, true, true, false}); err != nil {
		t.Fatal(err)
	}
	// Held: the two to process; not the duplicate, not the one not queued.
	if got := heldIDs(&w.q.fresh); !slices.Equal(got, []int64{batch[0].ID, batch[1].ID}) {
		t.Fatalf("fresh holds %v, want %v", got, []int64{batch[0].ID, batch[1].ID})
	}
	read, err := store.GetDeliveries(ctx, s.Reader(), []int64{batch[0].ID, batch[1].ID})
	if err != nil {
		t.Fatal(err)
	}
	w.q.fresh.mu.Lock()
	for id, want := range read {
		if got := w.q.fresh.byID[id]; !reflect.DeepEqual(got, want) {
			t.Errorf("fresh holds\n%+v\nfor delivery %d, which reads back as\n%+v", got, id, want)
		}
	}
	w.q.fresh.mu.Unlock()

	// A drain of this process (a queue started on the same database)
	// takes what its own acks hand it, and reads the rest back: here
	// the deliveries above, acknowledged by another queue.
	q := startDrainQueue(t, s, w.rt, nil)
	batch2 := []*store.Delivery{w.pushDelivery("fresh-4"), w.pushDelivery("fresh-5")}
	if _, err := q.AcceptDeliveries(ctx, batch2, []bool{true, true}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []int64{batch[0].ID, batch[1].ID, batch2[0].ID, batch2[1].ID} {
		if d := waitDelivery(t, s, id, 20*time.Second); d.Status != store.DeliveryProcessed {
			t.Errorf("delivery %d: %s (%s), want processed", id, d.Status, d.Result)
		}
	}
	for _, name := range []string{"fresh-1", "fresh-2", "fresh-4", "fresh-5"} {
		if _, err := store.GetEnvironment(ctx, s.Reader(), "app", name); err != nil {
			t.Errorf("environment %s after processing: %v", name, err)
		}
	}
	// Whatever the drain took or read, nothing is left behind once it
	// caught up.
	deadline := time.Now().Add(20 * time.Second)
	for q.fresh.len() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("fresh still holds %v after the drain caught up", heldIDs(&q.fresh))
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// PostgreSQL's drain locks its batch's rows in its transaction and takes
// their bodies from fresh: a body in the database that differs from the
// one acknowledged (it cannot, a body never changes: here it is changed to
// tell where the drain took it from) is not read; a delivery this process
// did not acknowledge has its body read; a row no longer accepted is not
// in the batch, whatever fresh holds.
func TestPostgresDrainTakesBodiesFromFresh(t *testing.T) {
	s := storetest.Open(t, storetest.Postgres(t))
	w := newWorld(t, s)
	ctx := context.Background()
	acked := []*store.Delivery{w.pushDelivery("pg-1"), w.pushDelivery("pg-2"), w.pushDelivery("pg-3")}
	if _, err := w.q.AcceptDeliveries(ctx, acked, []bool{true, true, true}); err != nil {
		t.Fatal(err)
	}
	other := w.pushDelivery("pg-4") // acknowledged elsewhere: another replica, say
	if _, err := store.InsertDeliveries(ctx, s.DB, []*store.Delivery{other}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DB.ExecContext(ctx, `UPDATE delivery_bodies SET body = '{"changed":true}' WHERE delivery_id IN ($1, $2)`, acked[0].ID, other.ID); err != nil {
		t.Fatal(err)
	}
	if err := store.FinishDeliveries(ctx, s.DB, []store.Outcome{{ID: acked[1].ID, Status: store.DeliveryProcessed, Result: "by hand"}}); err != nil {
		t.Fatal(err)
	}
	var got []store.Delivery
	err := s.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		got, err = (&deliveryWorker{q: w.q}).lockNext(ctx, tx, 10)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[int64]string{acked[0].ID: acked[0].Body, acked[2].ID: acked[2].Body, other.ID: `{"changed":true}`}
	if len(got) != len(want) {
		t.Fatalf("the batch holds %d deliveries, want %d (the one processed by hand left out)", len(got), len(want))
	}
	for i, d := range got {
		if i > 0 && d.ID <= got[i-1].ID {
			t.Errorf("batch out of id order: %d after %d", d.ID, got[i-1].ID)
		}
		if d.Body != want[d.ID] {
			t.Errorf("delivery %d has body %.40q…, want %.40q…", d.ID, d.Body, want[d.ID])
		}
		if d.Status != store.DeliveryAccepted || d.IntegrationName != "app" || d.ReceivedAt.IsZero() {
			t.Errorf("delivery %d read as %+v", d.ID, d)
		}
	}
	// Left: only the one processed another way, which the next take past
	// it or the drain catching up drops.
	if held := heldIDs(&w.q.fresh); !slices.Equal(held, []int64{acked[1].ID}) {
		t.Errorf("fresh holds %v after the batch took its deliveries, want only %d", held, acked[1].ID)
	}
}
