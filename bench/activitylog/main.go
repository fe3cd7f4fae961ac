// Command activitylog measures writing a long build's log (20,000 lines by
// default) three ways in the same run, on SQLite and, when
// GLENV_TEST_DATABASE_URL names a server, PostgreSQL:
//
//   - baseline: what glenv did before, one `UPDATE activities SET log = log
//     || $1` per line (the whole log row rewritten each time);
//   - store.AppendActivityLog as it is now: one append-only chunk per line,
//     synchronous;
//   - activitylog.Writer: the deploy's Line calls (what the build waits
//     for), and until Close has stored everything.
//
// Beside each it measures webhook acknowledgements (a delivery insert
// through Store.TxUrgent every 5ms) while the log is written, since log
// writes competed with them on SQLite's one writer.
//
// The baseline is quadratic; it stops after -baseline-budget and, when it
// did, prints the time its fit predicts for all the lines beside what it
// measured.
//
//	go run ./bench/activitylog [-lines 20000] [-line-bytes 100] [-baseline-budget 60s]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/glenv/glenv/internal/activitylog"
	"github.com/glenv/glenv/internal/store"
)

func main() {
	lines := flag.Int("lines", 20000, "lines of build output")
	lineBytes := flag.Int("line-bytes", 100, "bytes per line")
	budget := flag.Duration("baseline-budget", 60*time.Second, "stop the quadratic baseline after this long and extrapolate")
	flag.Parse()
	text := make([]string, *lines)
	for i := range text {
		head := fmt.Sprintf("%06d ", i)
		text[i] = head + strings.Repeat("x", max(0, *lineBytes-len(head)-1)) + "\n"
	}
	backends := []string{"sqlite"}
	if os.Getenv("GLENV_TEST_DATABASE_URL") != "" {
		backends = append(backends, "postgres")
	}
	fmt.Printf("%d lines of %d bytes (%.1f MB of log)\n\n", *lines, *lineBytes, float64(*lines**lineBytes)/1e6)
	fmt.Printf("%-9s %-40s %14s %14s %12s %12s\n", "database", "method", "caller waits", "all stored", "ack p50", "ack p99")
	for _, b := range backends {
		run := func(method string, write func(s *store.Store, id int64) (caller, stored time.Duration, note string)) {
			s, cleanup := open(b)
			defer cleanup()
			a := store.Activity{IntegrationName: "bench", Kind: store.ActivityDeploy, State: store.ActivityRunning}
			must(store.InsertActivity(context.Background(), s.DB, &a))
			stop := acknowledge(s)
			caller, stored, note := write(s, a.ID)
			lat := stop()
			fmt.Printf("%-9s %-40s %14s %14s %12s %12s %s\n", b, method, caller.Round(time.Millisecond), stored.Round(time.Millisecond),
				pct(lat, 50), pct(lat, 99), note)
		}
		run("before: log = log || $1 per line", func(s *store.Store, id int64) (time.Duration, time.Duration, string) {
			start := time.Now()
			n := 0
			for _, l := range text {
				_, err := s.DB.ExecContext(context.Background(), `UPDATE activities SET log = log || $1 WHERE id = $2`, l, id)
				must(err)
				n++
				if time.Since(start) > *budget {
					break
				}
			}
			took := time.Since(start)
			if n == len(text) {
				return took, took, ""
			}
			// Cost grows with the log rewritten: t(n) ≈ c·n², so t(N) ≈ t(n)·(N/n)².
			f := float64(len(text)) / float64(n)
			est := time.Duration(float64(took) * f * f)
			return took, took, fmt.Sprintf("(stopped after %d lines; %s predicted for %d)", n, est.Round(time.Second), len(text))
		})
		run("now: AppendActivityLog, a chunk per line", func(s *store.Store, id int64) (time.Duration, time.Duration, string) {
			start := time.Now()
			for _, l := range text {
				must(store.AppendActivityLog(context.Background(), s.DB, id, l))
			}
			took := time.Since(start)
			return took, took, ""
		})
		run("now: activitylog.Writer (batched)", func(s *store.Store, id int64) (time.Duration, time.Duration, string) {
			w := activitylog.New(s, activitylog.Options{}).Writer(id)
			start := time.Now()
			for _, l := range text {
				w.Line(l)
			}
			caller := time.Since(start)
			must(w.Close(context.Background()))
			stored := time.Since(start)
			p, err := activitylog.Read(context.Background(), s.Reader(), id, 0)
			must(err)
			note := ""
			if strings.Contains(p.Text, "lines dropped") {
				note = "(some lines dropped)"
			}
			return caller, stored, note
		})
	}
}

// acknowledge inserts a delivery through TxUrgent every 5ms, as webhook
// acknowledgements do, until stop; stop returns their latencies.
func acknowledge(s *store.Store) func() []time.Duration {
	var mu sync.Mutex
	var lat []time.Duration
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			start := time.Now()
			d := &store.Delivery{IntegrationName: "bench", Event: "Push Hook", Headers: "{}", Body: `{"object_kind":"push"}`, Status: store.DeliveryAccepted}
			must(s.TxUrgent(context.Background(), func(tx *sqlTx) error { _, err := store.InsertDelivery(context.Background(), tx, d); return err }))
			mu.Lock()
			lat = append(lat, time.Since(start))
			mu.Unlock()
		}
	}()
	return func() []time.Duration {
		close(done)
		wg.Wait()
		return lat
	}
}

func pct(d []time.Duration, p int) string {
	if len(d) == 0 {
		return "-"
	}
	slices.Sort(d)
	return d[min(len(d)-1, len(d)*p/100)].Round(10 * time.Microsecond).String()
}

func open(backend string) (*store.Store, func()) {
	dir, err := os.MkdirTemp("", "bench-activitylog-")
	must(err)
	url := "sqlite://" + filepath.Join(dir, "glenv.db")
	var drop func()
	if backend == "postgres" {
		url, drop = freshPostgres(os.Getenv("GLENV_TEST_DATABASE_URL"))
	}
	s, err := store.Open(context.Background(), url, dir)
	must(err)
	return s, func() {
		s.Close()
		if drop != nil {
			drop()
		}
		os.RemoveAll(dir)
	}
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
