package jobs

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/store/storetest"
)

// BenchmarkAcceptDeliveries measures the acknowledgement's database step
// alone: a group commit of 8 KB pushes, each with its Idempotency-Key,
// stored with their processing job in one urgent transaction, as the
// receiver's committer hands them over (batch = deliveries waiting
// together). cpu-µs/delivery is this process's CPU (on SQLite all of it:
// the database is in the process).
func BenchmarkAcceptDeliveries(b *testing.B) {
	for _, backend := range storetest.Backends() {
		for _, size := range []int{1, 8, 32} {
			b.Run(fmt.Sprintf("%s/batch=%d", backend.Name, size), func(b *testing.B) {
				s := storetest.Open(b, backend)
				w := newWorld(b, s)
				ctx := context.Background()
				queue := make([]bool, size)
				for i := range queue {
					queue[i] = true
				}
				n := 0
				var cpu time.Duration
				for b.Loop() {
					b.StopTimer()
					batch := make([]*store.Delivery, size)
					for i := range batch {
						n++
						batch[i] = &store.Delivery{IntegrationID: w.in.ID, IntegrationName: "app", Event: "Push Hook",
							IdempotencyKey: fmt.Sprint("k", n), Headers: `{"X-Gitlab-Event":"Push Hook"}`,
							Body: pushBody(fmt.Sprint("b-", n)), Status: store.DeliveryAccepted}
					}
					c0 := cpuTime()
					b.StartTimer()
					if _, err := w.q.AcceptDeliveries(ctx, batch, queue); err != nil {
						b.Fatal(err)
					}
					b.StopTimer()
					cpu += cpuTime() - c0
					b.StartTimer()
				}
				b.ReportMetric(float64(cpu.Microseconds())/float64(n), "cpu-µs/delivery")
				b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(n), "µs/delivery")
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}
