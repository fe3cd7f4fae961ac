package jobs

import (
	"context"
	"crypto/sha1"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"github.com/glenv/glenv/internal/feedback"
	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/store/storetest"
)

// pushBody is an 8 KB push creating branch, shaped like GitLab's
// (Gitlab::DataBuilder::Push: project, commits with their files, repository).
func pushBody(branch string) string {
	return pushHead + branch + pushTail
}

// pushHead and pushTail surround the branch name. They are built once: the
// benchmark stores thousands of bodies outside its timer, and building each
// anew (≈ 100 KB of garbage) made the collector's work fall inside the
// timed processing and count as its CPU.
var pushHead, pushTail = func() (string, string) {
	var commits []string
	for i := 0; len(strings.Join(commits, ",")) < 7000; i++ {
		// Ids look like git's (SHA-1 hex, no run of zeros): bodies are
		// stored compressed on SQLite, and a padded counter would
		// compress better than any real push does.
		sha := fmt.Sprintf("%x", sha1.Sum([]byte(strconv.Itoa(i))))
		commits = append(commits, fmt.Sprintf(`{"id":"%s","message":"Change number %d\n\nwith a longer body explaining it","title":"Change number %d",`+
			`"timestamp":"2026-12-05T11:%02d:%02d+00:00","url":"http://gitlab.example/group/app/-/commit/%s",`+
			`"author":{"name":"Jane Doe","email":"jane@example.com"},"added":["a/%d.go"],"modified":["README.md"],"removed":[]}`, sha, i, i, i%60, (i*7)%60, sha, i))
	}
	head := `{"object_kind":"push","event_name":"push","before":"0000000000000000000000000000000000000000","after":"` + shaA +
		`","ref":"refs/heads/`
	tail := `","ref_protected":false,"checkout_sha":"` + shaA + `","user_id":4,"user_name":"Jane Doe",` +
		`"user_username":"jane","user_email":"","user_avatar":"","project_id":7,"project":{"id":7,"name":"app","description":"",` +
		`"web_url":"http://gitlab.example/group/app","avatar_url":null,"git_ssh_url":"git@gitlab.example:group/app.git",` +
		`"git_http_url":"http://gitlab.example/group/app.git","namespace":"group","visibility_level":0,"path_with_namespace":"group/app",` +
		`"default_branch":"main","ci_config_path":null,"homepage":"http://gitlab.example/group/app"},"commits":[` +
		strings.Join(commits, ",") + `],"total_commits_count":` + fmt.Sprint(len(commits)) +
		`,"push_options":{},"repository":{"name":"app","url":"git@gitlab.example:group/app.git","description":"",` +
		`"homepage":"http://gitlab.example/group/app","git_http_url":"http://gitlab.example/group/app.git",` +
		`"git_ssh_url":"git@gitlab.example:group/app.git","visibility_level":0}}`
	return head, tail
}()

// BenchmarkProcessDelivery measures deciding and applying one 8 KB push
// that creates a branch (its environment is created inactive, with an
// activity), in batches of perTx as the worker takes them. The
// deliveries are stored outside the timer: that is the acknowledgement's
// work. cpu-µs/delivery is this process's CPU (on PostgreSQL the server's
// is not in it: pg-cpu-µs/delivery is, and stmts/delivery counts the
// statements sent to it); the goal is ≤ 300 for both together. GitLab feedback is on, as in glenv
// serve (its jobs are queued, not worked): jobs/delivery counts the River
// jobs processing queued, each a fetch, a run and a completion later.
func BenchmarkProcessDelivery(b *testing.B) {
	for _, backend := range storetest.Backends() {
		b.Run(backend.Name, func(b *testing.B) {
			url := backend.URL(b)
			s, err := store.Open(context.Background(), url, b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			var sent *atomic.Int64 // statements sent to PostgreSQL
			if s.Dialect == store.Postgres {
				sent = countStatements(b, s, url)
			}
			w := newWorld(b, s)
			q, err := NewQueue(s, Deps{Runtime: w.rt, Feedback: true, Register: []func(*river.Workers){
				func(ws *river.Workers) { river.AddWorker(ws, &idleSync{}) }}}, QueueConfig{})
			if err != nil {
				b.Fatal(err)
			}
			worker := &deliveryWorker{q: q, deps: q.deps}
			ctx := context.Background()
			jobs0 := countJobs(b, s)
			n := 0
			var cpu, pgCPU, avCPU time.Duration
			var stmts int64
			b.ResetTimer()
			for b.Loop() {
				b.StopTimer()
				batch := make([]*store.Delivery, perTx(s.Dialect))
				ids := make([]int64, len(batch))
				for i := range batch {
					n++
					batch[i] = &store.Delivery{IntegrationID: w.in.ID, IntegrationName: "app", Event: "Push Hook",
						IdempotencyKey: fmt.Sprint("k", n), Headers: "{}", Body: pushBody(fmt.Sprint("b-", n)), Status: store.DeliveryAccepted}
				}
				if _, err := store.InsertDeliveries(ctx, s.DB, batch); err != nil {
					b.Fatal(err)
				}
				if s.Dialect == store.Postgres && n%512 == 0 {
					// What autovacuum does about once a minute, and a run
					// is shorter: without it, the plans PostgreSQL caches
					// for the first statements on empty tables (sequential
					// scans) stay while the tables grow, and every batch
					// reads all the deliveries so far.
					if _, err := s.DB.ExecContext(ctx, `ANALYZE`); err != nil {
						b.Fatal(err)
					}
				}
				for i, d := range batch {
					ids[i] = d.ID
				}
				// Autovacuum's first: asking for the client backends
				// after would count that query as the batch's.
				av0 := serverCPU(b, s, nil, autovacuum)
				pg0 := serverCPU(b, s, nil, clientBackends)
				var st0 int64
				if sent != nil {
					st0 = sent.Load()
				}
				b.StartTimer()
				// Inside the timer's calls: each stops the world to read
				// memory statistics, which is the benchmark's CPU, not
				// the processing's.
				c0 := cpuTime()
				if err := worker.Work(ctx, jobFor(ProcessDeliveryArgs{DeliveryIDs: ids})); err != nil {
					b.Fatal(err)
				}
				cpu += cpuTime() - c0
				b.StopTimer()
				if sent != nil {
					stmts += sent.Load() - st0
				}
				pgCPU += pg0.since(b, s, clientBackends)
				avCPU += av0.since(b, s, autovacuum)
				b.StartTimer()
			}
			if done, err := store.CountDeliveries(ctx, s.Reader(), store.DeliveryProcessed); err != nil || done != n {
				b.Fatalf("%d of %d deliveries processed (%v)", done, n, err)
			}
			b.ReportMetric(float64(cpu.Microseconds())/float64(n), "cpu-µs/delivery")
			b.ReportMetric(float64(countJobs(b, s)-jobs0)/float64(n), "jobs/delivery")
			if s.Dialect == store.Postgres {
				b.ReportMetric(float64(pgCPU.Microseconds())/float64(n), "pg-cpu-µs/delivery")
				b.ReportMetric(float64(stmts)/float64(n), "stmts/delivery")
				b.ReportMetric(float64(avCPU.Microseconds())/float64(n), "pg-autovacuum-cpu-µs/delivery")
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(n), "µs/delivery")
			b.ReportMetric(0, "ns/op") // per batch: the per-delivery figures say it
		})
	}
}

// idleSync stands in for internal/feedback's worker: River refuses to
// queue a kind no worker is registered for.
type idleSync struct {
	river.WorkerDefaults[feedback.SyncArgs]
}

func (*idleSync) Work(context.Context, *river.Job[feedback.SyncArgs]) error { return nil }

func countJobs(b *testing.B, s *store.Store) int {
	var n int
	if err := s.Reader().QueryRowContext(context.Background(), `SELECT COUNT(*) FROM river_job`).Scan(&n); err != nil {
		b.Fatal(err)
	}
	return n
}

// serverCPU reads the CPU the PostgreSQL backends serving this database
// have used (the server runs on this machine; /proc/<pid>/schedstat is
// readable by all): the scheduler's own count of the time each ran, in
// nanoseconds. (/proc/<pid>/stat's utime and stime come in 10 ms ticks
// charged to whichever process a tick finds running: with a batch taking
// a few ticks and the machine loaded, the same code read 190 to 720 µs a
// delivery from one run to the next.) known
// backends are read first, before pg_stat_activity is asked for new ones:
// that query (a function scan and a hash join, 10-20 % of a batch's
// server CPU) would otherwise count as the deliveries' at the end of every
// measured batch.
//
// kind is the backends' pg_stat_activity.backend_type: the client backends
// run the statements; autovacuum workers clean up after them (the
// deliveries' updates, the new rows) and after the acknowledgements'
// inserts alike, whenever their thresholds say, so their CPU is reported
// apart, and it is what makes pg-cpu vary most between runs.
func serverCPU(b *testing.B, s *store.Store, known pgTicks, kind string) pgTicks {
	if s.Dialect != store.Postgres {
		return nil
	}
	now := pgTicks{}
	for pid := range known {
		if t, ok := procTicks(pid); ok {
			now[pid] = t
		}
	}
	rows, err := s.Reader().QueryContext(context.Background(),
		`SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND backend_type = $1`, kind)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var pid int
		if err := rows.Scan(&pid); err != nil {
			b.Fatal(err)
		}
		if _, seen := known[pid]; seen {
			continue
		}
		if t, ok := procTicks(pid); ok {
			now[pid] = t
		}
	}
	return now
}

const (
	clientBackends = "client backend"
	autovacuum     = "autovacuum worker"
)

// pgTicks is the CPU of each backend, by pid.
type pgTicks map[int]time.Duration

// since is the server CPU used from t until now: by the backends t knew,
// and all of any backend started since.
func (t pgTicks) since(b *testing.B, s *store.Store, kind string) time.Duration {
	var d time.Duration
	for pid, now := range serverCPU(b, s, t, kind) {
		d += now - t[pid]
	}
	return d
}

func procTicks(pid int) (time.Duration, bool) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/schedstat", pid))
	if err != nil {
		return 0, false
	}
	// The first field is the time on a CPU, in nanoseconds.
	f := strings.Fields(string(raw))
	if len(f) == 0 {
		return 0, false
	}
	ns, err := strconv.ParseInt(f[0], 10, 64)
	return time.Duration(ns), err == nil
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
