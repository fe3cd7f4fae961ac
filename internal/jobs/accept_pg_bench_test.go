package jobs

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/glenv/glenv/internal/store"
)

// BenchmarkAcceptDeliveriesPostgres compares, in one run, the two ways a
// PostgreSQL ack batch of new 8 KB pushes is stored while a drain waits:
// the one-trip pipeline (AcceptDeliveries) and the transaction it falls
// back to (acceptInTx: BEGIN, insert, lock, look, COMMIT). "serial" is one
// flusher (the round trips' latency shows); "4 flushers" commits batches
// in parallel as the receiver does under load. pg-cpu-µs/delivery is the
// server's CPU. Run with -count for interleaved rounds; the machine is
// shared, so compare the two paths within a run only.
func BenchmarkAcceptDeliveriesPostgres(b *testing.B) {
	for _, flushers := range []int{1, 4} {
		for _, path := range []string{"pipeline", "transaction"} {
			b.Run(fmt.Sprintf("%s/flushers=%d", path, flushers), func(b *testing.B) {
				s, _ := postgresOnly(b)
				w := newWorld(b, s)
				ctx := context.Background()
				accept := w.q.AcceptDeliveries
				if path == "transaction" {
					accept = w.q.acceptInTx
				}
				n := 0
				batch := func() ([]*store.Delivery, []bool) {
					ds, qs := make([]*store.Delivery, 8), make([]bool, 8)
					for i := range ds {
						n++
						ds[i], qs[i] = w.pushDelivery(fmt.Sprint("k-", n)), true
					}
					return ds, qs
				}
				// The first ack inserts the drain; it then waits, never worked.
				if _, err := w.q.AcceptDeliveries(ctx, []*store.Delivery{w.pushDelivery("first")}, []bool{true}); err != nil {
					b.Fatal(err)
				}
				pg0 := serverCPU(b, s, nil, clientBackends)
				deliveries := 0
				start := time.Now()
				for b.Loop() {
					var wg sync.WaitGroup
					errs := make(chan error, flushers)
					for range flushers {
						ds, qs := batch()
						deliveries += len(ds)
						wg.Add(1)
						go func() {
							defer wg.Done()
							if _, err := accept(ctx, ds, qs); err != nil {
								errs <- err
							}
						}()
					}
					wg.Wait()
					close(errs)
					if err := <-errs; err != nil {
						b.Fatal(err)
					}
				}
				el := time.Since(start)
				b.ReportMetric(float64(deliveries)/el.Seconds(), "deliveries/s")
				b.ReportMetric(float64(pg0.since(b, s, clientBackends).Microseconds())/float64(deliveries), "pg-cpu-µs/delivery")
			})
		}
	}
}
