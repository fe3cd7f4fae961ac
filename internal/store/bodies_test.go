package store_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/klauspost/compress/s2"

	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/store/storetest"
)

// pushLike is a JSON body of about n bytes whose commits differ, as a
// real push's do.
func pushLike(n int) string {
	var b strings.Builder
	b.WriteString(`{"object_kind":"push","commits":[`)
	for i := 0; b.Len() < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":"%040x","message":"change %d of the push"}`, uint64(i)*0x9e3779b97f4a7c15, i)
	}
	b.WriteString(`]}`)
	return b.String()
}

// TestBodiesReadBackAsReceived: whatever the store does to keep a body
// (SQLite compresses large ones), every reader gets the bytes received,
// on both databases, through the batch path (the ack's) and the
// one-delivery path, next to bodies stored as text before compression
// existed.
func TestBodiesReadBackAsReceived(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		bodies := []string{
			"{}",
			pushLike(800), // under the threshold: text
			pushLike(8 << 10),
			pushLike(300 << 10),
			pushLike(2 << 20),                // over the pooled scratch buffer's bound
			strings.Repeat(`{"a":1}`, 20000), // compresses to almost nothing
			"{\"x\":\"" + strings.Repeat("é€😀", 400) + "\"}",
		}
		var batch []*store.Delivery
		for i, b := range bodies {
			batch = append(batch, &store.Delivery{IntegrationName: "app", Event: "Push Hook", IdempotencyKey: fmt.Sprint("k", i),
				Status: store.DeliveryAccepted, Body: b, Headers: "{}"})
		}
		if _, err := store.InsertDeliveriesOn(ctx, s.DB, s.Dialect, batch); err != nil {
			t.Fatal(err)
		}
		// A body stored as text by an older glenv (and any small one).
		old := &store.Delivery{IntegrationName: "app", Event: "Push Hook", Status: store.DeliveryAccepted, Body: pushLike(8 << 10), Headers: "{}"}
		if _, err := store.InsertDeliveries(ctx, s.DB, []*store.Delivery{old}); err != nil {
			t.Fatal(err)
		}
		batch = append(batch, old)
		var ids []int64
		for _, d := range batch {
			ids = append(ids, d.ID)
		}
		got, err := store.GetDeliveries(ctx, s.Reader(), ids)
		if err != nil {
			t.Fatal(err)
		}
		for i, d := range batch {
			one, err := store.GetDelivery(ctx, s.Reader(), d.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got[d.ID].Body != d.Body || one.Body != d.Body {
				t.Errorf("body %d (%d bytes): read back %d bytes in a batch, %d alone, not what was stored", i, len(d.Body), len(got[d.ID].Body), len(one.Body))
			}
		}
		if s.Dialect != store.SQLite {
			return
		}
		// What SQLite holds: the 8 KB push as a BLOB of a third of its
		// size or less, the small ones and the old one as text.
		var typ string
		var size int
		if err := s.Reader().QueryRowContext(ctx, `SELECT typeof(body), length(body) FROM delivery_bodies WHERE delivery_id = $1`, batch[2].ID).Scan(&typ, &size); err != nil {
			t.Fatal(err)
		}
		if typ != "blob" || size > len(bodies[2])/3 {
			t.Errorf("an 8 KB push is stored as a %s of %d bytes, want a blob of at most %d", typ, size, len(bodies[2])/3)
		}
		for _, d := range []*store.Delivery{batch[0], batch[1], old} {
			if err := s.Reader().QueryRowContext(ctx, `SELECT typeof(body) FROM delivery_bodies WHERE delivery_id = $1`, d.ID).Scan(&typ); err != nil {
				t.Fatal(err)
			}
			if typ != "text" {
				t.Errorf("a %d-byte body stored as %s, want text", len(d.Body), typ)
			}
		}
	})
}

// TestADamagedBodySaysSo: a compressed body that does not decode is an
// error that says what is wrong and what to do, not garbage handed to the
// drain.
func TestADamagedBodySaysSo(t *testing.T) {
	s := storetest.Open(t, storetest.Backends()[0])
	ctx := context.Background()
	d := &store.Delivery{IntegrationName: "app", Event: "Push Hook", Status: store.DeliveryAccepted, Body: pushLike(8 << 10), Headers: "{}"}
	if _, err := store.InsertDeliveriesOn(ctx, s.DB, s.Dialect, []*store.Delivery{d}); err != nil {
		t.Fatal(err)
	}
	for _, damage := range []string{
		`UPDATE delivery_bodies SET body = substr(body, 1, 40) WHERE delivery_id = $1`,     // cut short
		`UPDATE delivery_bodies SET body = X'01FFFFFFFFFF0F' WHERE delivery_id = $1`,       // claims more than 25 MiB
		`UPDATE delivery_bodies SET body = X'0164FFFFFFFFFFFFFFFF' WHERE delivery_id = $1`, // 100 bytes, then a copy from before the start
	} {
		if _, err := s.DB.ExecContext(ctx, damage, d.ID); err != nil {
			t.Fatal(err)
		}
		_, err := store.GetDelivery(ctx, s.Reader(), d.ID)
		if err == nil || !strings.Contains(err.Error(), "delivery body") || !strings.Contains(err.Error(), "damaged") {
			t.Errorf("%s: err = %v, want one naming the delivery body as damaged", damage, err)
		}
	}
}

// TestAPreparedBodyIsTheOneStored: a body encoded ahead (PrepareBody, on
// the webhook request's goroutine) is what the insert binds, unless the
// body changed since; either way it reads back as received, on both
// databases.
func TestAPreparedBodyIsTheOneStored(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		mk := func(key string) *store.Delivery {
			return &store.Delivery{IntegrationName: "app", Event: "Push Hook", IdempotencyKey: key, Status: store.DeliveryAccepted,
				Body: pushLike(8 << 10), Headers: "{}"}
		}
		prepared, changed, plain := mk("prepared"), mk("changed"), mk("plain")
		s.PrepareBody(prepared)
		s.PrepareBody(changed)
		changed.Body = pushLike(6 << 10) // after its preparation
		// On SQLite, an encoding of prepared's body that storedBody would
		// not make (S2's better mode), to see which one is bound.
		ahead := append([]byte{0x01}, s2.EncodeBetter(nil, []byte(prepared.Body))...)
		if s.Dialect == store.SQLite {
			store.SetPrepared(prepared, store.SQLite, ahead)
		}
		batch := []*store.Delivery{prepared, changed, plain}
		if _, err := store.InsertDeliveriesOn(ctx, s.DB, s.Dialect, batch); err != nil {
			t.Fatal(err)
		}
		for _, d := range batch {
			got, err := store.GetDelivery(ctx, s.Reader(), d.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Body != d.Body {
				t.Errorf("%s: read back %d bytes, not the %d-byte body", d.IdempotencyKey, len(got.Body), len(d.Body))
			}
		}
		if s.Dialect != store.SQLite {
			return
		}
		var raw []byte
		if err := s.Reader().QueryRowContext(ctx, `SELECT body FROM delivery_bodies WHERE delivery_id = $1`, prepared.ID).Scan(&raw); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(raw, ahead) {
			t.Errorf("the prepared body was encoded again at the insert (%d bytes stored, %d prepared)", len(raw), len(ahead))
		}
	})
}
