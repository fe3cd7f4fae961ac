package jobs

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/s2"

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

// BenchmarkAcceptWALBytes counts what an ack batch writes to SQLite's WAL
// per delivery, a measure the machine's load does not move: glenv's
// AcceptDeliveries against a bare table of bodies (bench/ack's "bare group
// commit") in the same database, with GitLab's random UUID
// Idempotency-Keys and with the near-sequential keys bench/ack sends. Every
// page a transaction changes is one 4 KiB WAL frame, so each b-tree an ack
// touches (the deliveries table, its four indexes, sqlite_sequence, the
// bodies) costs a page per batch, and the unique dedupe_key index a page
// per delivery when keys are random.
func BenchmarkAcceptWALBytes(b *testing.B) {
	for _, keys := range []string{"uuid", "sequential"} {
		for _, target := range []string{"glenv", "bare"} {
			b.Run(keys+"/"+target+"/batch=16", func(b *testing.B) {
				dir := b.TempDir()
				s, err := store.Open(context.Background(), "sqlite://"+filepath.Join(dir, "glenv.db"), dir)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { s.Close() })
				w := newWorld(b, s)
				ctx := context.Background()
				if _, err := s.DB.Exec(`CREATE TABLE bodies (id INTEGER PRIMARY KEY, body TEXT NOT NULL)`); err != nil {
					b.Fatal(err)
				}
				const size = 16
				n := 0
				queue := make([]bool, size)
				for i := range queue {
					queue[i] = true
				}
				accept := func() {
					batch := make([]*store.Delivery, size)
					for i := range batch {
						n++
						key := fmt.Sprintf("bench-1-%d", n)
						if keys == "uuid" {
							key = fmt.Sprintf("%08x-6a3c-4f0e-9d8b-%012x", uint32(n*2654435761), n)
						}
						batch[i] = &store.Delivery{IntegrationID: w.in.ID, IntegrationName: "app", Event: "Push Hook",
							IdempotencyKey: key, Headers: `{"Content-Type":"application/json","Idempotency-Key":"` + key + `","User-Agent":"GitLab/17.5.0","X-Gitlab-Event":"Push Hook"}`,
							Body: pushBody(fmt.Sprint("b-", n)), Status: store.DeliveryAccepted}
					}
					if target == "glenv" {
						if _, err := w.q.AcceptDeliveries(ctx, batch, queue); err != nil {
							b.Fatal(err)
						}
						return
					}
					err := s.TxUrgent(ctx, func(tx *sql.Tx) error {
						var q strings.Builder
						q.WriteString(`INSERT INTO bodies (body) VALUES `)
						args := make([]any, len(batch))
						for i, d := range batch {
							if i > 0 {
								q.WriteByte(',')
							}
							fmt.Fprintf(&q, "($%d)", i+1)
							args[i] = s2.Encode(nil, []byte(d.Body)) // as glenv stores them (internal/store/bodies.go)
						}
						_, err := tx.ExecContext(ctx, q.String(), args...)
						return err
					})
					if err != nil {
						b.Fatal(err)
					}
				}
				for range 2000 / size { // indexes a few levels deep, as on a server that has run a while
					accept()
				}
				var grown, counted int64
				for b.Loop() {
					w0 := walBytes(b, dir)
					accept()
					// The WAL restarts from its start once it reaches its
					// size limit (store.go): a batch that did not grow it
					// is not counted.
					if d := walBytes(b, dir) - w0; d > 0 {
						grown += d
						counted += size
					}
				}
				if counted > 0 {
					b.ReportMetric(float64(grown)/float64(counted), "wal-bytes/delivery")
				}
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}

// walBytes is the size of the WAL file of the SQLite database in dir.
func walBytes(b *testing.B, dir string) int64 {
	fi, err := os.Stat(filepath.Join(dir, "glenv.db-wal"))
	if err != nil {
		b.Fatal(err)
	}
	return fi.Size()
}
