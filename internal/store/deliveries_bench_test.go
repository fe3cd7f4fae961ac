package store_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/store/storetest"
)

// BenchmarkInsertDeliveriesPostgres is a group commit's insert of 8 KB
// deliveries in batches of 8 (BEGIN, the inserts, COMMIT) on PostgreSQL,
// the portable statements (rows, then bodies) side by side with
// PostgreSQL's one statement, each on a fresh database. go test runs a
// sub-benchmark's -count repetitions back to back, so on a shared machine
// run it a few times and compare within each run.
// pg-cpu-µs/delivery is the server backend's CPU, read from /proc (the
// server runs on this machine), in 10 ms ticks: meaningful over thousands
// of deliveries only.
func BenchmarkInsertDeliveriesPostgres(b *testing.B) {
	if os.Getenv(storetest.EnvVar) == "" {
		b.Skipf("%s is not set", storetest.EnvVar)
	}
	var pad strings.Builder
	for i := 0; pad.Len() < 8<<10; i++ {
		fmt.Fprintf(&pad, `{"id":"%040x","message":"Change number %d","added":["a/%d.go"]},`, i*7919, i, i)
	}
	body := `{"object_kind":"push","commits":[` + strings.TrimSuffix(pad.String(), ",") + `]}`
	for _, bench := range []struct {
		name    string
		dialect store.Dialect
	}{{"portable", ""}, {"one statement", store.Postgres}} {
		b.Run(bench.name, func(b *testing.B) {
			s := storetest.Open(b, storetest.Backend{Name: "postgres", URL: storetest.FreshPostgres})
			ctx := context.Background()
			conn, err := s.DB.Conn(ctx) // one backend, whose CPU is read
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			var pid int
			if err := conn.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
				b.Fatal(err)
			}
			n := 0
			pg0 := backendCPU(b, pid)
			for b.Loop() {
				batch := make([]*store.Delivery, 8)
				for i := range batch {
					n++
					batch[i] = &store.Delivery{IntegrationName: "app", Event: "Push Hook", IdempotencyKey: strconv.Itoa(n),
						Headers: `{"X-Gitlab-Event":["Push Hook"]}`, Body: body, Status: store.DeliveryAccepted}
				}
				tx, err := conn.BeginTx(ctx, nil)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := store.InsertDeliveriesOn(ctx, tx, bench.dialect, batch); err != nil {
					b.Fatal(err)
				}
				if err := tx.Commit(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64((backendCPU(b, pid)-pg0).Microseconds())/float64(n), "pg-cpu-µs/delivery")
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(n), "µs/delivery")
		})
	}
}

func backendCPU(b *testing.B, pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatalf("read the backend's CPU (the server must run on this machine): %v", err)
	}
	// utime and stime are the 14th and 15th fields, counted from after the command.
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}
