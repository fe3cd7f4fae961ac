// Command ack measures how fast glenv acknowledges GitLab webhooks (8 KB
// push payloads, each with its own Idempotency-Key), side by side with the
// best any program could do on this machine in the same run:
//
//   - raw net/http reading the body and answering 202 (1.00),
//   - the same plus json.Valid,
//   - the same plus a bare durable group commit of the body (SQLite with
//     glenv's settings, or PostgreSQL on the same server),
//   - glenv's acknowledgement with delivery processing off (its receiver and
//     persist step, jobs enqueued and never worked),
//   - glenv serving, with deliveries being processed.
//
// Every target is measured warm, in several interleaved rounds (the order
// rotates each round), under two load shapes: c senders each waiting on
// its reply, and a fixed arrival rate (Poisson arrivals, open loop: nobody
// waits for a reply before the next request is due; the closed loop takes
// -closed-reps turns per round). Figures are min / median / max over the
// rounds (and turns); ratios are taken within a round (or turn). CPU/req is
// this process's CPU per delivery until the target settled (glenv's
// backlog processed, and what that set off); "in the load" while the load
// ran, which moves less between runs than req/s. It runs on
// SQLite, and on PostgreSQL when GLENV_TEST_DATABASE_URL names a server.
//
//	go run ./bench/ack [-rounds 3] [-n 4000] [-closed-reps 3] [-c 32] [-rate 500] [-for 4s]
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/glenv/glenv/bench/internal/benchkit"
)

type target struct {
	name string
	url  string
	// secret is the X-Gitlab-Token the target wants.
	secret string
	// settle runs after each measurement, inside the CPU window: glenv
	// with processing on waits until its backlog is processed and the jobs
	// that set off have run (glenv.settle).
	settle func()
	// pg names the PostgreSQL database whose backends' CPU is counted.
	pg string
	// sqlite is its SQLite database file, which -stalls traces.
	sqlite string
	// g is glenv with processing on: its backlog is measured (backlog.go).
	g *glenv
	// results per shape, one per round
	closed, open []sample
}

func main() {
	rounds := flag.Int("rounds", 3, "interleaved rounds")
	n := flag.Int("n", 4000, "deliveries per closed-loop measurement")
	reps := flag.Int("closed-reps", 3, "closed-loop measurements of each target per round, taking turns")
	quiesce := flag.Bool("quiesce", true, "checkpoint every database and sync the disk before each measurement (quiesce.go)")
	c := flag.Int("c", 32, "closed loop: concurrent senders, each waiting on its reply")
	rate := flag.Float64("rate", 500, "open loop: deliveries per second")
	dur := flag.Duration("for", 4*time.Second, "open loop: duration of one measurement")
	e2e := flag.Int("e2e", 100, "deliveries for the webhook → environment latencies (0: skip)")
	only := flag.String("db", "", "run only on this database: sqlite or postgres")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of one target's first measurement to this file")
	profiled := flag.String("profile", "glenv, processing on", "the target -cpuprofile profiles")
	profileShape := flag.String("profile-shape", "open", "the load shape of the measurement -cpuprofile profiles: closed or open")
	flag.Parse()
	startStalls()
	body := payload(8 << 10)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1024, MaxIdleConns: 1024}}

	fmt.Printf("webhook ack benchmark: %d-byte push deliveries; closed loop %d×%d senders; open loop %.0f/s for %s; %d rounds\n",
		len(body), *n, *c, *rate, *dur, *rounds)
	dbs := []string{"sqlite"}
	if os.Getenv("GLENV_TEST_DATABASE_URL") != "" {
		dbs = append(dbs, "postgres")
	}
	if *only != "" {
		dbs = []string{*only}
	}
	var prof *os.File
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		must(err)
		prof = f
	}
	for _, db := range dbs {
		dir, err := os.MkdirTemp("", "glenv-bench-ack")
		must(err)
		rawURL, stopRaw := serve(rawHandler())
		validURL, stopValid := serve(validHandler())
		var bare *sql.DB
		var bareName, offURL, offPG, bareFile, offFile, onFile string
		dropBare, dropOff := func() {}, func() {}
		closeBare := func() { bare.Close() }
		if db == "postgres" {
			u, drop := freshPostgres()
			bare, bareName, dropBare = barePostgres(u), dbName(u), drop
			offURL, dropOff = freshPostgres()
			offPG = dbName(offURL)
		} else {
			bare, closeBare = bareSQLite(dir)
			offURL = "sqlite://" + filepath.Join(dir, "off", "glenv.db")
			bareFile, offFile = filepath.Join(dir, "bare", "glenv.db"), filepath.Join(dir, "off", "glenv.db")
		}
		commitH, stopCommit := commitHandler(bare, map[string]int{"sqlite": 1, "postgres": 4}[db], db == "sqlite")
		commitURL, stopCommitSrv := serve(commitH)
		off := startAckOnly(offURL, filepath.Join(dir, "off"))
		g := startGlenv(db)
		onPG := ""
		if db == "postgres" {
			onPG = dbName(g.dbURL)
		} else {
			onFile = filepath.Join(g.dir, "glenv.db")
		}
		targets := []*target{
			{name: "raw net/http", url: rawURL},
			{name: "+ json.Valid", url: validURL},
			{name: "+ bare group commit", url: commitURL, pg: bareName, sqlite: bareFile},
			{name: "glenv, processing off", url: off.url, secret: "bench-secret", pg: offPG, sqlite: offFile},
			{name: "glenv, processing on", url: g.url + "/hooks/gitlab/app", secret: g.secret, settle: g.settle, pg: onPG, sqlite: onFile, g: g},
		}
		var pgAdmin *sql.DB
		if db == "postgres" {
			pgAdmin, err = sql.Open("pgx", os.Getenv("GLENV_TEST_DATABASE_URL"))
			must(err)
		}
		// shape is the load shape being measured ("warm" while warming),
		// so -cpuprofile profiles a real measurement, not the warm-up.
		shape := "warm"
		rest := newQuiescer(pgAdmin, bareFile, offFile, onFile)
		measure := func(t *target, run func(s *sender) sample) sample {
			if *quiesce {
				rest.rest()
			}
			s := &sender{client: client, url: t.url, secret: t.secret, body: body}
			profiling := prof != nil && t.name == *profiled && shape == *profileShape
			if profiling {
				must(pprof.StartCPUProfile(prof))
			}
			cpu0, pg0 := cpuTime(), pgCPU(pgAdmin, t.pg)
			var m deliveryMark
			if t.g != nil {
				m = t.g.mark()
			}
			t0 := time.Now()
			r := run(s)
			r.loadCPU = (cpuTime() - cpu0) / time.Duration(max(r.n, 1))
			if t.pg != "" {
				r.pgLoadCPU = (pgCPU(pgAdmin, t.pg) - pg0) / time.Duration(max(r.n, 1))
			}
			if t.g != nil {
				b := t.g.measureBacklog(m, time.Since(t0))
				r.backlog = &b
			}
			if t.settle != nil {
				t.settle()
			}
			r.cpu = (cpuTime() - cpu0) / time.Duration(r.n)
			if t.pg != "" {
				r.pgCPU = (pgCPU(pgAdmin, t.pg) - pg0) / time.Duration(r.n)
			}
			if profiling {
				pprof.StopCPUProfile()
				prof = nil // one profile file holds one profile
			}
			return r
		}
		// Warm every target: connections, caches, the JIT-free but
		// allocation-heavy first requests.
		for _, t := range targets {
			measure(t, func(s *sender) sample { return closedLoop(s, 500, *c) })
		}
		var loads []string
		for r := 0; r < *rounds; r++ {
			loads = append(loads, loadAverage())
			order := slices.Clone(targets)
			rotate(order, r)
			// The closed loop is short (4,000 deliveries take 0.4–0.8 s),
			// shorter than the periods of what shares the disk (a
			// checkpoint, a WAL reset, the kernel's writeback): one
			// measurement of a target may fall on such a moment and the
			// next target's not. Several turns per round, each ratio taken
			// within its turn, let the median stand on more than three.
			shape = "closed"
			for range *reps {
				for _, t := range order {
					t.closed = append(t.closed, measure(t, func(s *sender) sample { return closedLoop(s, *n, *c) }))
				}
			}
			shape = "open"
			for i, t := range order {
				t.open = append(t.open, measure(t, func(s *sender) sample {
					defer watch(t, s)()
					return openLoop(s, *rate, *dur, uint64(r*100+i))
				}))
			}
			fmt.Fprintf(os.Stderr, "%s: round %d of %d done\n", db, r+1, *rounds)
		}
		loads = append(loads, loadAverage())
		fmt.Printf("\n%s: load average (1 min) at the start of each round and at the end: %s\n", db, strings.Join(loads, ", "))
		report(db, targets, *rounds)
		if len(rest.took) > 0 {
			fmt.Printf("%s: before each measurement, checkpoints and sync took %s (min / median / max)\n", db, spreadD(rest.took))
		}
		rest.close()
		reportBacklog(db, targets[len(targets)-1])
		if *e2e > 0 {
			lat := g.endToEnd(client, body, *e2e)
			build := g.buildStarts(client, body, *e2e/2)
			fmt.Printf("%s: webhook accepted → build starts (push to an active environment): p50 %s, p99 %s\n", db, build[0], build[1])
			fmt.Printf("%s: webhook → environment record updated: p50 %s, p99 %s (%d deliveries, one at a time)\n\n", db, lat[0], lat[1], *e2e)
		}
		g.stop()
		off.close()
		stopCommitSrv()
		stopCommit()
		closeBare()
		dropBare()
		dropOff()
		stopRaw()
		stopValid()
		if pgAdmin != nil {
			pgAdmin.Close()
		}
		os.RemoveAll(dir)
	}
	stopStalls()
}

// loadAverage is the machine's 1-minute load average: every figure of a
// run on a shared machine is read next to it.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}

func rotate(ts []*target, by int) {
	by %= len(ts)
	copy(ts, append(slices.Clone(ts[by:]), ts[:by]...))
}

// report prints one database's tables and the goals' verdicts.
func report(db string, ts []*target, rounds int) {
	byName := map[string]*target{}
	for _, t := range ts {
		byName[t.name] = t
	}
	raw, bare, on := byName["raw net/http"], byName["+ bare group commit"], byName["glenv, processing on"]
	ratio := func(t, base *target) []float64 {
		out := make([]float64, len(t.closed))
		for i := range out {
			out[i] = t.closed[i].rps / base.closed[i].rps
		}
		return out
	}
	fmt.Printf("\n%s, closed loop (senders wait on each reply), min / median / max of %d measurements (%d rounds × %d turns; ratios within a turn)\n",
		db, len(bare.closed), rounds, len(bare.closed)/rounds)
	fmt.Printf("%-23s %-20s %-20s %-20s %-22s %-10s %-12s %-10s %-12s\n", "target", "req/s", "× raw", "× bare commit", "p99", "CPU/req", "in the load", "PG CPU/req", "in the load")
	for _, t := range ts {
		rps := make([]float64, len(t.closed))
		var p99, cpu, load, pg, pgLoad []time.Duration
		for i, s := range t.closed {
			rps[i] = s.rps
			p99, cpu, load, pg = append(p99, s.p99), append(cpu, s.cpu), append(load, s.loadCPU), append(pg, s.pgCPU)
			pgLoad = append(pgLoad, s.pgLoadCPU)
		}
		pgs, pgl := "-", "-"
		if t.pg != "" {
			pgs, pgl = ms(mid(pg)), ms(mid(pgLoad))
		}
		fmt.Printf("%-23s %-20s %-20s %-20s %-22s %-10s %-12s %-10s %-12s\n", t.name, spreadF(rps, "%.0f"), spreadF(ratio(t, raw), "%.2f"),
			spreadF(ratio(t, bare), "%.2f"), spreadD(p99), ms(mid(cpu)), ms(mid(load)), pgs, pgl)
	}
	fmt.Printf("\n%s, open loop (Poisson arrivals), min / median / max of %d rounds\n", db, rounds)
	fmt.Printf("%-23s %-22s %-22s %-10s %-10s %s\n", "target", "p50", "p99", "CPU/req", "PG CPU/req", "failures (both shapes)")
	for _, t := range ts {
		var p50, p99, cpu, pg []time.Duration
		var errs int64
		first := ""
		for _, s := range append(slices.Clone(t.open), t.closed...) {
			errs += s.errors
			if first == "" {
				first = s.firstErr
			}
		}
		for _, s := range t.open {
			p50, p99, cpu, pg = append(p50, s.p50), append(p99, s.p99), append(cpu, s.cpu), append(pg, s.pgCPU)
		}
		if first != "" {
			defer fmt.Printf("%s: first failure: %.200s\n", t.name, first)
		}
		pgs := "-"
		if t.pg != "" {
			pgs = ms(mid(pg))
		}
		fmt.Printf("%-23s %-22s %-22s %-10s %-10s %d\n", t.name, spreadD(p50), spreadD(p99), ms(mid(cpu)), pgs, errs)
	}
	goalP99 := map[string]time.Duration{"sqlite": 10 * time.Millisecond, "postgres": 20 * time.Millisecond}[db]
	r := ratio(on, bare)
	var p99 []time.Duration
	for _, s := range on.open {
		p99 = append(p99, s.p99)
	}
	// Raw net/http's p99 at the same rate is the floor of the run: what
	// the load generator and the machine's scheduling alone add.
	var floor []time.Duration
	for _, s := range raw.open {
		floor = append(floor, s.p99)
	}
	fmt.Printf("\ngoal (%s): glenv with processing on ≥ 0.90× the bare group commit: %s (median %.2f×); p99 ≤ %s at the fixed rate: %s (median %s; raw net/http's, the floor of this run: %s)\n\n",
		db, verdict(mid(r) >= 0.9), mid(r), goalP99, verdict(mid(p99) <= goalP99), ms(mid(p99)), ms(mid(floor)))
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

func mid[T int64 | float64 | time.Duration](v []T) T {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func spreadF(v []float64, f string) string {
	s := slices.Clone(v)
	slices.Sort(s)
	return fmt.Sprintf(f+" / "+f+" / "+f, s[0], s[len(s)/2], s[len(s)-1])
}

func spreadD(v []time.Duration) string {
	s := slices.Clone(v)
	slices.Sort(s)
	return ms(s[0]) + " / " + ms(s[len(s)/2]) + " / " + ms(s[len(s)-1])
}

func ms(d time.Duration) string {
	if d < time.Millisecond {
		return fmt.Sprintf("%dµs", d.Microseconds())
	}
	return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
}

// pgCPU sums the CPU time of the PostgreSQL server processes serving
// database name (user + system, from /proc: the server runs here). A
// backend that exits between two readings takes its CPU with it, so the
// pools keep their connections open (glenv's and the bare commit's alike).
func pgCPU(admin *sql.DB, name string) time.Duration {
	if admin == nil || name == "" {
		return 0
	}
	rows, err := admin.QueryContext(context.Background(), `SELECT pid FROM pg_stat_activity WHERE datname = $1`, name)
	must(err)
	defer rows.Close()
	var total time.Duration
	for rows.Next() {
		var pid int
		must(rows.Scan(&pid))
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// Fields after the command name (which may hold spaces): utime is
		// the 14th field, stime the 15th, in clock ticks of 10 ms.
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
		var ut, st int64
		fmt.Sscan(f[11], &ut)
		fmt.Sscan(f[12], &st)
		total += time.Duration(ut+st) * 10 * time.Millisecond
	}
	return total
}

func dbName(u string) string {
	i := strings.LastIndexByte(u, '/')
	name := u[i+1:]
	if j := strings.IndexByte(name, '?'); j >= 0 {
		name = name[:j]
	}
	return name
}

// payload is GitLab's push payload for a created branch, padded with commits to size.
func payload(size int) []byte {
	b, err := benchkit.PushPayload(size)
	must(err)
	return b
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}
