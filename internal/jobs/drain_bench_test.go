package jobs

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/store/storetest"
)

// BenchmarkDrainWriterHold measures how long the SQLite drain holds the
// one writer per delivery — the time an acknowledgement arriving then
// waits — with its batch read ahead through the read pool (glenv's) and
// read inside the write transaction (the baseline), in the same run:
// each iteration acknowledges 8 pushes creating branches (one group
// commit) and waits until the drain processed them. writer-µs/delivery
// sums the drain's write transactions, BEGIN to COMMIT (the store's
// writer trace); cpu-µs/delivery is the whole process's CPU, acks included.
func BenchmarkDrainWriterHold(b *testing.B) {
	for _, variant := range []string{"read-ahead", "read-in-tx"} {
		b.Run(variant, func(b *testing.B) {
			s := storetest.Open(b, storetest.Backends()[0])
			w := newWorld(b, s)
			q, err := NewQueue(s, Deps{Runtime: w.rt}, QueueConfig{PollInterval: time.Hour, RepairInterval: time.Hour})
			if err != nil {
				b.Fatal(err)
			}
			q.drainReadInTx = variant == "read-in-tx"
			runQueue(b, q)
			ctx := context.Background()
			var mu sync.Mutex
			var held time.Duration
			var turns int
			store.TraceSQLiteWriters(func(u store.WriterUse) {
				if u.What != "tx" || !strings.HasPrefix(u.Conn, "writer") || strings.HasPrefix(u.Query, "INSERT INTO deliveries") || strings.Contains(u.Query, "-- name:") {
					return
				}
				mu.Lock()
				held += u.Took
				turns++
				mu.Unlock()
			})
			b.Cleanup(func() { store.TraceSQLiteWriters(nil) })
			n := 0
			var cpu time.Duration
			b.ResetTimer()
			for b.Loop() {
				batch := make([]*store.Delivery, 8)
				for i := range batch {
					n++
					batch[i] = w.pushDelivery(fmt.Sprint("b-", n))
				}
				c0 := cpuTime()
				if _, err := q.AcceptDeliveries(ctx, batch, []bool{true, true, true, true, true, true, true, true}); err != nil {
					b.Fatal(err)
				}
				for {
					left, err := store.CountDeliveries(ctx, s.Reader(), store.DeliveryAccepted)
					if err != nil {
						b.Fatal(err)
					}
					if left == 0 {
						break
					}
					time.Sleep(200 * time.Microsecond)
				}
				cpu += cpuTime() - c0
			}
			b.StopTimer()
			mu.Lock()
			defer mu.Unlock()
			b.ReportMetric(float64(held.Microseconds())/float64(n), "writer-µs/delivery")
			b.ReportMetric(float64(turns)/float64(n), "turns/delivery")
			b.ReportMetric(float64(cpu.Microseconds())/float64(n), "cpu-µs/delivery")
		})
	}
}
