// Command replicas measures webhook acknowledgements across three glenv
// replicas against one, on one PostgreSQL (issue 16: goal ≥ 2×). Each round
// starts real `glenv serve` processes (built once from ./cmd/glenv, --runtime
// record, a fresh database per round) and sends the same burst of distinct
// 8 KB push deliveries from c concurrent senders: to the one replica, then
// spread round-robin over the three, then from 3c senders over the three
// (each replica as loaded as the one was: the CPU per delivery three
// machines would need). It prints min, median and max of the rounds, the
// ratios taken within each round, and the machine's CPU count, which
// bounds what extra processes can add.
//
//	GLENV_TEST_DATABASE_URL=postgres://… go run ./bench/replicas [-n 6000] [-c 48] [-rounds 3]
package main

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/glenv/glenv/bench/internal/benchkit"
	"github.com/glenv/glenv/internal/gitlabtest"
)

const admin = "glenv_bench_admin_token_0123456789"

// benchApp is the application_name of the bench's own connection.
const benchApp = "glenv-bench"

func main() {
	n := flag.Int("n", 6000, "deliveries per measurement")
	c := flag.Int("c", 48, "concurrent senders")
	rounds := flag.Int("rounds", 3, "rounds of each measurement")
	stats := flag.Bool("stats", false, "print PostgreSQL's per-table work per delivery (statistics views), acking and processing apart")
	perfDir := flag.String("perf", "", "record Linux perf profiles of the replicas and their PostgreSQL backends in the first round into this directory")
	replicaCPUs := flag.Float64("replica-cpus", 0, "give each replica a machine of this many CPUs (a cgroup CPU quota; root): 3 replicas vs 1 as on separate machines (0: uncapped)")
	flag.Parse()
	base := os.Getenv("GLENV_TEST_DATABASE_URL")
	if base == "" {
		fmt.Fprintln(os.Stderr, "bench/replicas: set GLENV_TEST_DATABASE_URL to a PostgreSQL server (several replicas need PostgreSQL)")
		os.Exit(2)
	}
	dir, err := os.MkdirTemp("", "glenv-bench-replicas")
	must(err)
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "glenv")
	out, err := exec.Command("go", "build", "-o", bin, filepath.Join(benchkit.RepoRoot(), "cmd", "glenv")).CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build glenv: %v\n%s", err, out)
		os.Exit(1)
	}
	body := payload(8 << 10)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxIdleConns: 1024}}

	fmt.Printf("webhook acks across replicas, PostgreSQL: %d deliveries of %d bytes, %d senders, %d rounds, %d CPUs",
		*n, len(body), *c, *rounds, runtime.NumCPU())
	if *replicaCPUs > 0 {
		fmt.Printf(", each replica capped at %.2f CPU (a machine of its own)", *replicaCPUs)
	}
	fmt.Print("\n\n")
	// 3 replicas with 3c senders load each replica as the one replica is
	// loaded: the CPU per delivery they need is what three machines would.
	setups := []setup{{1, *c}, {3, *c}, {3, 3 * *c}}
	results := map[setup][]measurement{}
	for r := 0; r < *rounds; r++ {
		for _, st := range setups { // alternated, so drift hits all alike
			cl := startCluster(bin, dir, base, st.replicas, &cpuCap{cpus: *replicaCPUs})
			m := cl.measure(client, body, *n, st.senders, r == 0 && *perfDir != "", *perfDir, *stats)
			cl.stop()
			m.print(r+1, st, *n)
			results[st] = append(results[st], m)
		}
	}
	summary(setups, results, *n, *replicaCPUs)
}

// setup is one configuration measured each round.
type setup struct{ replicas, senders int }

func (s setup) String() string {
	return fmt.Sprintf("%d replica(s), %d senders", s.replicas, s.senders)
}

// measurement is one burst against one cluster.
type measurement struct {
	rps      float64
	errs     int64
	idle     float64 // CPU ms per second of replicas and PostgreSQL before the burst
	ack      usage   // while the burst was acknowledged
	all      usage   // until every delivery's job had run too
	drained  bool
	jobs     int // process_delivery jobs: drains (one covers every delivery accepted while it runs)
	load     string
	perfFile string
	stats    [2]dbStats // before the burst, after processing (-stats)
}

// measure sends the burst, then waits for the deliveries' jobs to finish,
// metering CPU all along.
func (cl *cluster) measure(client *http.Client, body []byte, n, c int, perf bool, perfDir string, stats bool) measurement {
	var pids []int
	for _, p := range cl.procs {
		pids = append(pids, p.Process.Pid)
	}
	var m measurement
	// Warm first, as a replica that has run a while is: a fifth of the
	// burst (other branches) opens the pools' connections and fills their
	// PostgreSQL backends' caches and prepared statements, which fresh
	// processes would otherwise charge to the measured deliveries — three
	// times over with three replicas.
	load(client, cl.urls, cl.secret, body, n/5, c, "warm")
	cl.waitProcessed(2 * time.Minute)
	var warmJobs int
	cl.db.QueryRow(`SELECT COUNT(*) FROM river_job WHERE kind = 'process_delivery'`).Scan(&warmJobs)
	// Idle then: what the replicas and PostgreSQL spend with nothing to do
	// (River's pollers, heartbeats) is paid per replica. Each replica's
	// start (River's first maintenance, the integration's first sync) is
	// over before the burst, or its CPU would count as the deliveries':
	// the burst waits, up to 20 s, for a second that costs under 30 ms a
	// replica.
	for settle := 0; settle < 10; settle++ {
		idle := startMeter(cl.adm, cl.dbName, pids)
		time.Sleep(2 * time.Second)
		u := idle.snapshot()
		idle.close()
		m.idle = float64((u.replicas + u.postgres).Milliseconds()) / 2
		if m.idle < 30*float64(len(pids)) {
			break
		}
	}
	mt := startMeter(cl.adm, cl.dbName, pids)
	var rec *exec.Cmd
	if perf {
		m.perfFile = filepath.Join(perfDir, fmt.Sprintf("replicas-%d.perf.data", len(pids)))
		rec = startPerf(m.perfFile, append(pids, mt.backendPIDs()...))
	}
	var st0 dbStats
	if stats {
		st0 = readStats(cl.db)
	}
	m.rps, m.errs = load(client, cl.urls, cl.secret, body, n, c, "b")
	m.ack = mt.snapshot()
	m.load = loadAvg()
	if rec != nil {
		rec.Process.Signal(os.Interrupt)
		rec.Wait()
	}
	m.drained = cl.waitProcessed(2 * time.Minute)
	m.all = mt.snapshot()
	mt.close()
	if stats {
		m.stats = [2]dbStats{st0, readStats(cl.db)}
	}
	cl.db.QueryRow(`SELECT COUNT(*) FROM river_job WHERE kind = 'process_delivery'`).Scan(&m.jobs)
	m.jobs -= warmJobs
	return m
}

func (m measurement) print(round int, st setup, n int) {
	fmt.Printf("round %d, %s: %.0f req/s (load %s); idle before the burst: %.0f CPU ms/s", round, st, m.rps, m.load, m.idle)
	if m.errs > 0 {
		fmt.Printf(", %d NOT answered 202", m.errs)
	}
	fmt.Printf("\n  acks:        CPU ms/delivery replicas %.2f + PostgreSQL %.2f = %.2f, senders %.2f; machine %.0f%% busy of %d CPUs\n",
		perDelivery(m.ack.replicas, n), perDelivery(m.ack.postgres, n), perDelivery(m.ack.replicas+m.ack.postgres, n),
		perDelivery(m.ack.senders, n), busyPct(m.ack), runtime.NumCPU())
	if m.drained {
		fmt.Printf("  +processing: CPU ms/delivery replicas %.2f + PostgreSQL %.2f = %.2f\n",
			perDelivery(m.all.replicas, n), perDelivery(m.all.postgres, n), perDelivery(m.all.replicas+m.all.postgres, n))
	} else {
		fmt.Printf("  +processing: jobs still pending after 2m\n")
	}
	fmt.Printf("  delivery jobs: %d drains, %.1f deliveries each; PostgreSQL active backends per sample: %s\n",
		m.jobs, float64(n)/float64(max(m.jobs, 1)), topWaits(m.ack.waits, m.ack.samples, 4))
	if len(m.ack.locks) > 0 {
		fmt.Printf("  lock waits per sample: %s\n", topWaits(m.ack.locks, m.ack.samples, 3))
	}
	if m.stats[1].tables != nil {
		printStats("acks + processing", m.stats[0], m.stats[1], n)
	}
	if m.perfFile != "" {
		fmt.Printf("  profile: perf report -i %s --sort comm,dso,sym\n", m.perfFile)
	}
}

func summary(setups []setup, results map[setup][]measurement, n int, replicaCPUs float64) {
	cpu := func(m measurement) float64 { return perDelivery(m.ack.replicas+m.ack.postgres, n) }
	fmt.Printf("\n%-26s %10s %8s %8s   %s\n", "setup", "min req/s", "median", "max", "CPU ms/delivery while acking, replicas+PostgreSQL (min / median / max)")
	for _, st := range setups {
		var rps, c []float64
		for _, m := range results[st] {
			rps = append(rps, m.rps)
			c = append(c, cpu(m))
		}
		sort.Float64s(rps)
		sort.Float64s(c)
		fmt.Printf("%-26s %10.0f %8.0f %8.0f   %.2f / %.2f / %.2f\n", st, rps[0], median(rps), rps[len(rps)-1], c[0], median(c), c[len(c)-1])
	}
	one, three, loaded := results[setups[0]], results[setups[1]], results[setups[2]]
	// Ratios are taken within each round (the bursts ran back to back),
	// so load from outside the bench hits both sides alike.
	spread := func(f func(r int) float64) (float64, float64, float64) {
		var v []float64
		for r := range one {
			v = append(v, f(r))
		}
		sort.Float64s(v)
		return v[0], median(v), v[len(v)-1]
	}
	lo, mid, hi := spread(func(r int) float64 { return three[r].rps / one[r].rps })
	verdict := "met"
	if mid < 2 {
		verdict = "NOT met"
	}
	where := "on this machine"
	if replicaCPUs > 0 {
		where = fmt.Sprintf("with each replica a machine of %.2f CPU", replicaCPUs)
	}
	fmt.Printf("\n3 replicas vs 1, acks/s, same senders (per round, min / median / max): %.2f / %.2f / %.2fx — goal ≥ 2x %s %s\n",
		lo, mid, hi, verdict, where)
	// Capacity: a closed loop of c senders is bound by the round trip as
	// much as by the replicas, so three replicas given the same senders
	// are never saturated; given 3c, each replica is as loaded as the one.
	lo, mid, hi = spread(func(r int) float64 { return loaded[r].rps / one[r].rps })
	verdict = "met"
	if mid < 2 {
		verdict = "NOT met"
	}
	fmt.Printf("3 replicas vs 1, acks/s, each replica as loaded as the one (%s): %.2f / %.2f / %.2fx — goal ≥ 2x %s %s\n",
		setups[2], lo, mid, hi, verdict, where)
	lo, mid, hi = spread(func(r int) float64 { return cpu(three[r]) / cpu(one[r]) })
	fmt.Printf("3 replicas vs 1, CPU per delivery, same senders: %.2f / %.2f / %.2fx\n", lo, mid, hi)
	lo, mid, hi = spread(func(r int) float64 { return cpu(loaded[r]) / cpu(one[r]) })
	fmt.Printf("3 replicas vs 1, CPU per delivery, each replica as loaded as the one (%s): %.2f / %.2f / %.2fx\n", setups[2], lo, mid, hi)
	fmt.Println("  (1.00x: three replicas on three machines would ack three times as fast, while PostgreSQL keeps up)")
	// CPUs the bench's own processes kept busy: CPU per delivery × rate.
	own := func(m measurement) float64 {
		return float64((m.ack.replicas + m.ack.postgres + m.ack.senders).Microseconds()) / 1e6 / float64(n) * m.rps
	}
	var busy, owned []float64
	for _, m := range one {
		busy = append(busy, busyPct(m.ack))
		owned = append(owned, own(m))
	}
	fmt.Printf("The machine was %.0f%% busy during the 1-replica bursts (load average %s at the end of the last), of which\n",
		median(busy), one[len(one)-1].load)
	fmt.Printf("the bench's own processes (replica, PostgreSQL, senders) kept %.2f of %d CPUs busy: twice that rate needs %.2f CPUs.\n",
		median(owned), runtime.NumCPU(), 2*median(owned))
	if replicaCPUs <= 0 {
		fmt.Println("On one machine whose CPUs a single replica already keeps busy, more replicas only share them;")
		fmt.Println("-replica-cpus F gives each replica a machine of F CPUs (a cgroup quota), as separate machines would.")
	}
}

func perDelivery(d time.Duration, n int) float64 {
	return float64(d.Microseconds()) / 1000 / float64(n)
}

func busyPct(u usage) float64 {
	if u.machineTotal == 0 {
		return 0
	}
	return 100 * float64(u.machineBusy) / float64(u.machineTotal)
}

// startPerf samples the given processes' stacks until interrupted (Linux
// perf, when installed: -perf only).
func startPerf(out string, pids []int) *exec.Cmd {
	var s []string
	for _, p := range pids {
		s = append(s, fmt.Sprint(p))
	}
	cmd := exec.Command("perf", "record", "-F", "499", "-g", "-o", out, "-p", strings.Join(s, ","))
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "perf: %v\n", err)
		return nil
	}
	return cmd
}

// waitProcessed waits until every process_delivery job has finished and no
// delivery is left accepted (the drain completes only then: drain.go).
func (cl *cluster) waitProcessed(limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		var left int
		if err := cl.db.QueryRow(`SELECT (SELECT COUNT(*) FROM river_job WHERE kind = 'process_delivery'
			AND state NOT IN ('completed', 'cancelled', 'discarded'))
			+ (SELECT COUNT(*) FROM deliveries WHERE status = 'accepted')`).Scan(&left); err == nil && left == 0 {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}

type cluster struct {
	urls   []string
	secret string
	procs  []*exec.Cmd
	gl     *gitlabtest.Server
	adm    *sql.DB // the server's maintenance database
	db     *sql.DB // the round's database
	dbName string
	drop   func() // the round's database
	cap    *cpuCap
}

// startCluster starts k replicas on a fresh database and connects integration "app".
func startCluster(bin, dir, base string, k int, limit *cpuCap) *cluster {
	gl := gitlabtest.NewServer()
	u := gl.AddUser(gitlabtest.User{Username: "bench"})
	p := gl.AddProject(gitlabtest.Project{ID: 1, PathWithNamespace: "bench/app", DefaultBranch: "main", Members: map[int64]int{u.ID: 40}})
	gl.SetBranch(p.ID, "main", strings.Repeat("a", 40))
	tok := gl.AddToken(gitlabtest.Token{UserID: u.ID, Scopes: []string{"api"}})
	adm, dbName, dbURL, drop := freshPostgres(base)
	key := filepath.Join(dir, fmt.Sprintf("secret-%d.key", time.Now().UnixNano()))
	// The bench's own connection (waiting for the jobs, reading statistics)
	// is named, so the meter leaves its backend out of PostgreSQL's CPU.
	bu, err := url.Parse(dbURL)
	must(err)
	q := bu.Query()
	q.Set("application_name", benchApp)
	bu.RawQuery = q.Encode()
	db, err := sql.Open("pgx", bu.String())
	must(err)
	cl := &cluster{gl: gl, adm: adm, db: db, dbName: dbName, drop: drop, cap: limit}
	for i := 0; i < k; i++ {
		addr := freeAddr()
		data, err := os.MkdirTemp(dir, "replica")
		must(err)
		cmd := limit.command(i, bin, "serve", "--listen", addr, "--data-dir", data, "--database-url", dbURL)
		cmd.Env = append(os.Environ(), "GLENV_ADMIN_TOKEN="+admin, "GLENV_RUNTIME=record", "GLENV_LOG_LEVEL=error",
			"GLENV_SECRET_KEY_FILE="+key, "GLENV_RECONCILE_INTERVAL=1h")
		cmd.Stderr = os.Stderr
		must(cmd.Start())
		cl.procs = append(cl.procs, cmd)
		cl.urls = append(cl.urls, "http://"+addr)
		waitReady("http://" + addr)
	}
	var res struct {
		WebhookSecret string `json:"webhook_secret"`
	}
	b, _ := json.Marshal(map[string]any{"type": "gitlab", "token": tok, "base_url": gl.URL, "gitlab_project": "bench/app", "name": "app"})
	req, _ := http.NewRequest(http.MethodPost, cl.urls[0]+"/api/v1/integrations", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err := http.DefaultClient.Do(req)
	must(err)
	must(json.NewDecoder(resp.Body).Decode(&res))
	resp.Body.Close()
	if resp.StatusCode != 201 {
		panic(fmt.Sprintf("integration:add answered %d", resp.StatusCode))
	}
	cl.secret = res.WebhookSecret
	return cl
}

func (cl *cluster) stop() {
	for _, p := range cl.procs {
		p.Process.Signal(syscall.SIGTERM)
	}
	for _, p := range cl.procs {
		p.Wait()
	}
	cl.cap.close()
	cl.gl.Close()
	cl.db.Close()
	cl.drop()
}

// load sends n distinct deliveries (each to its own branch, <branch>-<i>)
// from c goroutines, spread round-robin
// over targets, and returns acknowledgements per second.
func load(client *http.Client, targets []string, secret string, body []byte, n, c int, branch string) (float64, int64) {
	var next, errs atomic.Int64
	var wg sync.WaitGroup
	stamp := time.Now().UnixNano()
	start := time.Now()
	for w := 0; w < c; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				b := bytes.Replace(body, []byte("refs/heads/ms-viewport"), []byte(fmt.Sprintf("refs/heads/%s-%d", branch, i)), 1)
				req, _ := http.NewRequest(http.MethodPost, targets[i%len(targets)]+"/hooks/gitlab/app", bytes.NewReader(b))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-Gitlab-Event", "Push Hook")
				req.Header.Set("X-Gitlab-Token", secret)
				req.Header.Set("Idempotency-Key", fmt.Sprintf("bench-%d-%d", stamp, i))
				resp, err := client.Do(req)
				if err != nil {
					errs.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					errs.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return float64(n) / time.Since(start).Seconds(), errs.Load()
}

func median(s []float64) float64 {
	c := append([]float64(nil), s...)
	sort.Float64s(c)
	return c[len(c)/2]
}

func waitReady(u string) {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(u + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	panic(u + " not ready after 60s")
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	defer l.Close()
	return l.Addr().String()
}

// payload is GitLab's push payload for a created branch, padded with commits to size.
func payload(size int) []byte {
	b, err := benchkit.PushPayload(size)
	must(err)
	return b
}

// freshPostgres creates an empty database and returns the server's
// maintenance connection, the database's name and URL, and how to drop it.
func freshPostgres(base string) (*sql.DB, string, string, func()) {
	adm, err := sql.Open("pgx", base)
	must(err)
	name := fmt.Sprintf("glenv_bench_%d", time.Now().UnixNano())
	_, err = adm.Exec("CREATE DATABASE " + name)
	must(err)
	u, err := url.Parse(base)
	must(err)
	u.Path = "/" + name
	return adm, name, u.String(), func() {
		adm.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
		adm.Close()
	}
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}
