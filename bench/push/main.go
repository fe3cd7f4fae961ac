// Command push measures a push to an active environment until the new
// commit is served (issue 15), phase by phase, against baselines timed in
// the same run (runner.go): what a CI runner does to serve the same commit
// (git fetch + checkout + the app's start), the floor of any program (one
// fetch request + the app's start), and, as before, the app's start alone.
// A real glenv (the process runtime, sandboxed where bubblewrap and pasta
// work, SQLite or PostgreSQL) serves a project of the GitLab double; each
// push commits a new version.txt, the baselines get that commit, then glenv
// is sent GitLab's push webhook, and the bench waits until the environment
// answers with the new version through glenv's proxy.
//
// Two detectors of "served" take turns, push by push, in the same run
// (served.go). The goal's: glenv's switch is learnt from the rename of the
// environment's state.json (inotify, nothing polled), then ONE request
// through the proxy confirms the new commit, and served is when it
// returned (an upper bound). Earlier sessions' figure: the environment
// polled every 2 ms through glenv's proxy. That polling keeps the bench's
// client, glenv's proxy, pasta and the old app busy on the same two cores
// while the new app starts, which the floor's start (timed alone) is not:
// it measured the bench's load as much as glenv.
//
// Phases: the webhook's ack (request → 202), the delivery's pickup and
// processing (202 → deploy activity recorded; below zero when it was
// recorded before the 202 reached the client), the deploy's pickup (→ the
// runtime's start), then the runtime's own phases from the deploy log
// (fetch, configure, build, data, sandbox, health, switch; stamped to the
// millisecond), and the rest until the new commit was seen served.
//
//	go run ./bench/push [-rounds 3] [-n 5] [-db sqlite|postgres] [-log]
package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/glenv/glenv/bench/internal/benchkit"
	"github.com/glenv/glenv/internal/config"
	"github.com/glenv/glenv/internal/gitlabtest"
	"github.com/glenv/glenv/internal/runtime"
	"github.com/glenv/glenv/internal/server"
	"github.com/glenv/glenv/internal/store"
)

var pollEvery = 2 * time.Millisecond

const admin = "glenv_bench_admin_token_0123456789"

// phaseNames are the columns of the phase table, in order.
var phaseNames = []string{"ack", "delivery", "pickup", "fetch", "configure", "build", "data", "sandbox", "health", "switch", "served"}

func main() {
	rounds := flag.Int("rounds", 3, "rounds (each gives one ratio)")
	n := flag.Int("n", 5, "pushes per round (its median is the round's figure)")
	db := flag.String("db", "sqlite", "database: sqlite, or postgres (GLENV_TEST_DATABASE_URL names the server)")
	flag.DurationVar(&pollEvery, "poll", 2*time.Millisecond, "how often the environment is polled through glenv's proxy for the new commit")
	showLog := flag.Bool("log", false, "print each push's deploy log (its lines are stamped to the millisecond) and when it was acked and served")
	flag.Parse()
	tb := benchkit.New("bench/push")
	defer tb.RemoveAll()
	app, err := filepath.Abs("examples/static")
	tb.Must(err)

	g := start(tb, app, *db)
	defer g.stop()
	g.showLog = *showLog
	fmt.Printf("push to an active environment → new commit served (examples/static, %s, %s), %d rounds of %d pushes\n",
		g.sandbox, *db, *rounds, *n)

	ru := newRunner(tb, g.gl.URL+"/bench/app.git", g.token, g.head)
	ru.poll = g.pollOnce
	// sw: pushes seen served by the switch detector (served.go), the
	// goal's; po: pushes seen served by polling every 2 ms, as before.
	var sw, po series
	for r := range *rounds {
		var rs, rp series
		for i := range *n {
			// The two detectors take turns, first one then the other, so
			// neither always follows the same thing.
			for k := range 2 {
				polled := (i+k)%2 == 1
				version := fmt.Sprintf("round %d push %d", r+1, 2*i+k+1)
				sha := g.commit(tb, version)
				// The baselines get the same commit just before glenv does,
				// so both see the same machine load.
				b := ru.measure(tb, sha)
				cpu0 := selfCPU()
				ph, total, n := g.push(tb, sha, version, polled)
				ph["cpu"] = selfCPU() - cpu0
				if *showLog {
					fmt.Printf("--- %s (%s): %s\n%s  polls before: %s\n", version, map[bool]string{true: "polled", false: "switch detected"}[polled],
						g.stamps, g.lastLog(tb), strings.Join(g.polls, "; "))
				}
				if polled {
					rp.add(ph, total, b, n)
				} else {
					rs.add(ph, total, b, n)
				}
			}
		}
		sw.round(rs)
		po.round(rp)
		fmt.Printf("  round %d: push → served, switch detected (the goal's), median %s (min %s, max %s): ÷ runner (git fetch + checkout + start) %s: %.2f×; ÷ floor (one fetch request + start) %s: %.2f×; ÷ start alone %s: %.2f×\n",
			r+1, rs.med(), rs.min(), rs.max(), rs.runner(), sw.ratios[r], rs.floor(), sw.floorRatios[r], rs.start(), sw.startRatios[r])
		fmt.Printf("           push → served, polled every %s, median %s (min %s, max %s): ÷ floor %s: %.2f× (its start polled as glenv's: %s, %.2f×)\n",
			pollEvery, rp.med(), rp.min(), rp.max(), rp.floor(), po.floorRatios[r], rp.polledFloor(), po.polledRatios[r])
	}
	row := func(name string, ds []time.Duration) {
		if len(ds) > 0 {
			fmt.Printf("    %-22s %9s %9s %9s\n", name, slices.Min(ds).Round(100*time.Microsecond), median(ds), slices.Max(ds).Round(100*time.Microsecond))
		}
	}
	fmt.Printf("\n  phases of the pushes seen by the switch detector (median over %d pushes; min / median / max):\n", len(sw.totals))
	for _, name := range phaseNames {
		row(name, sw.phases[name])
	}
	row("total", sw.totals)
	// This process's CPU (user + system) from the webhook to served:
	// glenv's, the double's Go side and the bench's client; not the
	// children's (git, pasta, the app). It holds under load, which the
	// phases do not.
	row("CPU of glenv+bench", sw.phases["cpu"])
	// Paired per push (its baseline was timed just before it, under the
	// same load): what glenv's fetch phase took over one fetch request.
	row("fetch − floor's", sw.fetchOver())
	fmt.Printf("    confirming requests per push: %s\n", confirms(sw.confirms))
	fmt.Printf("\n  the same phases of the pushes polled every %s (over %d pushes):\n", pollEvery, len(po.totals))
	for _, name := range phaseNames {
		row(name, po.phases[name])
	}
	row("total", po.totals)
	row("CPU of glenv+bench", po.phases["cpu"])
	row("fetch − floor's", po.fetchOver())
	all := append(slices.Clone(sw.bases), po.bases...)
	fmt.Printf("\n  baselines, all pushes (no build steps: the app's build is its checkout):\n")
	row("runner fetch", mapB(all, func(b baseline) time.Duration { return b.fetch }))
	row("runner checkout", mapB(all, func(b baseline) time.Duration { return b.checkout }))
	row("floor fetch", mapB(all, func(b baseline) time.Duration { return b.rawFetch }))
	row("  while polled", mapB(all, func(b baseline) time.Duration { return b.rawFetchPolled }))
	row("start alone", mapB(all, func(b baseline) time.Duration { return b.start }))
	row("  while polled", mapB(all, func(b baseline) time.Duration { return b.startPolled }))
	row("runner total", mapB(all, baseline.runner))
	row("floor total", mapB(all, baseline.floor))
	row("  start polled", mapB(all, baseline.polledFloor))
	fmt.Printf("\n  ratio per round, min / median / max (goal ≤ 1.3× in every round):\n")
	fmt.Printf("    switch detected, to the floor (one fetch request + start): %.2f× / %.2f× / %.2f×: %s (the goal's)\n",
		slices.Min(sw.floorRatios), medianF(sw.floorRatios), slices.Max(sw.floorRatios), benchkit.Verdict(slices.Max(sw.floorRatios) <= 1.3))
	fmt.Printf("    switch detected, to the runner's fetch + checkout + start: %.2f× / %.2f× / %.2f×: %s\n",
		slices.Min(sw.ratios), medianF(sw.ratios), slices.Max(sw.ratios), benchkit.Verdict(slices.Max(sw.ratios) <= 1.3))
	fmt.Printf("    switch detected, to the start alone (no fetch; earlier figures): %.2f× / %.2f× / %.2f×\n",
		slices.Min(sw.startRatios), medianF(sw.startRatios), slices.Max(sw.startRatios))
	// Polled, the new app starts as the bench polls the environment every
	// 2 ms through glenv's proxy (the old app, Python, answering 500
	// requests a second on the same two cores), which the strict floor's
	// start is not timed under: earlier sessions' figure, not the goal's.
	fmt.Printf("    polled every %s, to the floor (earlier sessions' figure, not the goal's): %.2f× / %.2f× / %.2f×\n",
		pollEvery, slices.Min(po.floorRatios), medianF(po.floorRatios), slices.Max(po.floorRatios))
	fmt.Printf("    polled every %s, to the floor with its start polled as glenv's: %.2f× / %.2f× / %.2f×\n",
		pollEvery, slices.Min(po.polledRatios), medianF(po.polledRatios), slices.Max(po.polledRatios))
	fmt.Printf("  load average now: %s\n", loadAvg())
}

// series is the pushes one detector saw served, and per round the ratios
// of their median to their baselines'.
type series struct {
	totals   []time.Duration
	bases    []baseline
	phases   map[string][]time.Duration
	confirms []int

	ratios, floorRatios, polledRatios, startRatios []float64
}

func (s *series) add(ph map[string]time.Duration, total time.Duration, b baseline, confirms int) {
	if s.phases == nil {
		s.phases = map[string][]time.Duration{}
	}
	for k, v := range ph {
		s.phases[k] = append(s.phases[k], v)
	}
	s.totals, s.bases, s.confirms = append(s.totals, total), append(s.bases, b), append(s.confirms, confirms)
}

func (s *series) med() time.Duration { return benchkit.Median(s.totals) }
func (s *series) min() time.Duration { return slices.Min(s.totals).Round(time.Millisecond) }
func (s *series) max() time.Duration { return slices.Max(s.totals).Round(time.Millisecond) }
func (s *series) runner() time.Duration {
	return benchkit.Median(mapB(s.bases, baseline.runner))
}
func (s *series) floor() time.Duration { return benchkit.Median(mapB(s.bases, baseline.floor)) }
func (s *series) polledFloor() time.Duration {
	return benchkit.Median(mapB(s.bases, baseline.polledFloor))
}
func (s *series) start() time.Duration {
	return benchkit.Median(mapB(s.bases, func(b baseline) time.Duration { return b.start }))
}

// round adds the ratios of round r (its pushes) to s's, and its pushes.
func (s *series) round(r series) {
	med := float64(r.med())
	s.ratios = append(s.ratios, med/float64(r.runner()))
	s.floorRatios = append(s.floorRatios, med/float64(r.floor()))
	s.polledRatios = append(s.polledRatios, med/float64(r.polledFloor()))
	s.startRatios = append(s.startRatios, med/float64(r.start()))
	s.totals, s.bases, s.confirms = append(s.totals, r.totals...), append(s.bases, r.bases...), append(s.confirms, r.confirms...)
	if s.phases == nil {
		s.phases = map[string][]time.Duration{}
	}
	for k, v := range r.phases {
		s.phases[k] = append(s.phases[k], v...)
	}
}

// fetchOver is, per push, glenv's fetch phase less the floor's fetch.
func (s *series) fetchOver() []time.Duration {
	if len(s.phases["fetch"]) != len(s.bases) {
		return nil
	}
	over := make([]time.Duration, len(s.bases))
	for i, b := range s.bases {
		over[i] = s.phases["fetch"][i] - b.rawFetch
	}
	return over
}

// confirms counts pushes by how many confirming requests they took.
func confirms(ns []int) string {
	by := map[int]int{}
	for _, n := range ns {
		by[n]++
	}
	var out []string
	for n := 1; len(by) > 0; n++ {
		if c, ok := by[n]; ok {
			out = append(out, fmt.Sprintf("%d request(s): %d pushes", n, c))
			delete(by, n)
		}
	}
	return strings.Join(out, ", ")
}

// selfCPU is this process's CPU time so far, user and system.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func mapB(bs []baseline, f func(baseline) time.Duration) []time.Duration {
	out := make([]time.Duration, len(bs))
	for i, b := range bs {
		out[i] = f(b)
	}
	return out
}

// loadAvg is /proc/loadavg's first three figures: the machine is shared.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

type glenv struct {
	dir                  string // its data directory, removed by stop
	url, secret, sandbox string
	token                string // the double's token, for the baselines' fetches
	front                string // glenv's listener, for environment traffic
	st                   *store.Store
	gl                   *gitlabtest.Server
	projectID            int64
	head                 string
	cancel               func()
	done                 chan error
	client               *http.Client
	body                 map[string]any
	polls                []string
	stamps               string       // the last push's sent, acked and served times, for -log
	watch                *switchWatch // the environment's switches (served.go)
	showLog              bool
}

// start runs glenv in this process with the process runtime, connects the
// double's project (its main branch holding the app), and waits until main
// serves.
func start(tb *benchkit.TB, app, db string) *glenv {
	dir, err := os.MkdirTemp("", "glenv-bench-push")
	tb.Must(err)
	gl := gitlabtest.NewServer()
	u := gl.AddUser(gitlabtest.User{Username: "bench"})
	p := gl.AddProject(gitlabtest.Project{PathWithNamespace: "bench/app", DefaultBranch: "main", Members: map[int64]int{u.ID: 40}})
	tok := gl.AddToken(gitlabtest.Token{UserID: u.ID, Scopes: []string{"api"}})
	head := gl.Commit(tb, p.ID, gitlabtest.Commit{Dir: app, Files: map[string]string{"version.txt": "start"}})

	l, err := net.Listen("tcp", "127.0.0.1:0")
	tb.Must(err)
	listen := l.Addr().String()
	l.Close()
	cfg := config.Config{Listen: listen, DataDir: dir, EnvDomain: "localhost", AdminToken: admin,
		ReconcileInterval: time.Hour, JobRescueAfter: 6 * time.Minute, LogLevel: "error", LogFormat: "text", Runtime: "process"}
	if db == "postgres" {
		cfg.DatabaseURL = freshPostgres(tb)
	}
	tb.Must(cfg.Validate())
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	tb.Must(err)
	tb.Must(srv.Listen())
	g := &glenv{dir: dir, url: cfg.PublicURL, front: "http://" + listen, cancel: cancel, done: make(chan error, 1), gl: gl, projectID: p.ID, head: head,
		client: &http.Client{Timeout: 10 * time.Second}}
	go func() { g.done <- srv.Run(ctx) }()
	var res struct {
		WebhookSecret string `json:"webhook_secret"`
	}
	b, _ := json.Marshal(map[string]any{"type": "gitlab", "token": tok, "base_url": gl.URL, "gitlab_project": "bench/app", "name": "app"})
	req, _ := http.NewRequest(http.MethodPost, g.url+"/api/v1/integrations", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err := http.DefaultClient.Do(req)
	tb.Must(err)
	tb.Must(json.NewDecoder(resp.Body).Decode(&res))
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		tb.Fatalf("integration:add answered %d", resp.StatusCode)
	}
	g.secret, g.token = res.WebhookSecret, tok
	g.st, err = store.Open(context.Background(), cfg.DatabaseURL, dir)
	tb.Must(err)
	raw, err := os.ReadFile("bench/push/testdata/push.json") // GitLab's push example (internal/webhook/testdata)
	tb.Must(err)
	tb.Must(json.Unmarshal(raw, &g.body))
	g.body["project_id"] = p.ID
	g.body["project"].(map[string]any)["id"] = p.ID
	g.body["project"].(map[string]any)["default_branch"] = "main"
	g.body["ref"] = "refs/heads/main"
	g.waitServed(tb, "start", time.Now().Add(2*time.Minute))
	env, err := store.GetEnvironment(context.Background(), g.st.Reader(), "app", "main")
	tb.Must(err)
	g.watch = watchSwitches(tb, filepath.Join(dir, "runtime", "envs", fmt.Sprint(env.ID)))
	g.sandbox = "no sandbox"
	if strings.Contains(g.lastLog(tb), "sandbox") || sandboxed(tb) {
		g.sandbox = "sandboxed"
	}
	return g
}

// sandboxed reports whether a runtime here runs apps under bubblewrap, as
// glenv's own does (it probes the same way).
func sandboxed(tb *benchkit.TB) bool {
	dir, err := os.MkdirTemp("", "bench-push-probe")
	tb.Must(err)
	defer os.RemoveAll(dir)
	rt, err := runtime.New(runtime.Options{Dir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	tb.Must(err)
	defer rt.Close()
	return rt.Sandboxed()
}

// commit commits a new version.txt to main and returns its SHA.
func (g *glenv) commit(tb *benchkit.TB, version string) string {
	return g.gl.Commit(tb, g.projectID, gitlabtest.Commit{Files: map[string]string{"version.txt": version}})
}

// push delivers the push webhook of sha (which set version.txt to version)
// and waits until the environment serves it, seen by polling or by the
// switch detector (served.go); it returns each phase, the whole, and how
// many confirming requests the switch detector sent (0 when polled).
func (g *glenv) push(tb *benchkit.TB, sha, version string, polled bool) (map[string]time.Duration, time.Duration, int) {
	g.body["before"], g.body["after"], g.body["checkout_sha"] = g.head, sha, sha
	g.head = sha
	body, _ := json.Marshal(g.body)
	req, _ := http.NewRequest(http.MethodPost, g.url+"/hooks/gitlab/app", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Gitlab-Event", "Push Hook")
	req.Header.Set("X-Gitlab-Token", g.secret)
	req.Header.Set("Idempotency-Key", "push-"+sha)
	t0 := time.Now()
	resp, err := g.client.Do(req)
	tb.Must(err)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	acked := time.Now()
	if resp.StatusCode/100 != 2 {
		tb.Fatalf("webhook answered %d", resp.StatusCode)
	}
	var served time.Time
	var confirms int
	if polled {
		served = g.waitServed(tb, version, t0.Add(time.Minute))
	} else {
		g.polls = g.polls[:0]
		served, confirms = g.waitSwitched(tb, sha, version, t0.Add(time.Minute))
	}
	act := g.deployOf(tb, sha)
	ph, end := g.phasesOf(tb, act.ID)
	var runtimeTook time.Duration
	for _, d := range ph {
		runtimeTook += d
	}
	// The phase line is stamped (to the millisecond) when the runtime
	// finished: pickup is from the deploy's activity to the runtime's start,
	// served from its end to the first request that got the new commit.
	ph["ack"], ph["delivery"] = acked.Sub(t0), act.CreatedAt.Sub(acked)
	ph["pickup"] = end.Add(-runtimeTook).Sub(act.CreatedAt)
	ph["served"] = served.Sub(end)
	clock := func(t time.Time) string { return t.UTC().Format("15:04:05.000") }
	g.stamps = fmt.Sprintf("sent %s, acked %s, deploy recorded %s, served %s", clock(t0), clock(acked), clock(act.CreatedAt), clock(served))
	return ph, served.Sub(t0), confirms
}

// waitServed polls the environment through glenv's proxy every 2 ms until
// version.txt says version, and returns when it first did.
func (g *glenv) waitServed(tb *benchkit.TB, version string, deadline time.Time) time.Time {
	c := &http.Client{Timeout: 5 * time.Second}
	g.polls = g.polls[:0]
	for {
		t0 := time.Now()
		ok, what := g.askVersion(c, version)
		if ok {
			return time.Now()
		}
		if len(g.polls) == 8 {
			g.polls = g.polls[1:]
		}
		g.polls = append(g.polls, fmt.Sprintf("%s +%s %s", t0.UTC().Format("15:04:05.000"), time.Since(t0).Round(100*time.Microsecond), what))
		if time.Now().After(deadline) {
			tb.Fatalf("version %q never served; last deploy log:\n%s", version, g.lastLog(tb))
		}
		time.Sleep(pollEvery)
	}
}

// askVersion sends one request for version.txt through glenv's proxy with
// c, and reports whether it answered version, and what it answered (its
// status and the start of its body, or the error).
func (g *glenv) askVersion(c *http.Client, version string) (bool, string) {
	req, _ := http.NewRequest(http.MethodGet, g.front+"/version.txt", nil)
	req.Host = "main--app.localhost"
	req.Header.Set("Accept", "text/plain")
	resp, err := c.Do(req)
	if err != nil {
		return false, fmt.Sprint(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK && string(b) == version, fmt.Sprintf("%d %.20q", resp.StatusCode, b)
}

// pollOnce is one request of waitServed's, its answer read and dropped.
func (g *glenv) pollOnce() { g.askVersion(g.client, "") }

// deployOf is the deploy activity of sha.
func (g *glenv) deployOf(tb *benchkit.TB, sha string) store.Activity {
	acts, err := store.ListActivities(context.Background(), g.st.Reader(), store.ActivityFilter{Integration: "app", Kind: store.ActivityDeploy, Limit: 5})
	tb.Must(err)
	for _, a := range acts {
		if a.SHA == sha {
			return a
		}
	}
	tb.Fatalf("no deploy activity for %s", sha)
	return store.Activity{}
}

// phasesOf reads the runtime's phase line from the deploy's log (waiting
// for the log to be stored: it is written in batches), and when it was
// written.
func (g *glenv) phasesOf(tb *benchkit.TB, id int64) (map[string]time.Duration, time.Time) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		part, err := store.ReadLog(context.Background(), g.st.Reader(), id, 0, 1<<20)
		tb.Must(err)
		for _, line := range strings.Split(part.Text, "\n") {
			stamp, rest, ok := strings.Cut(line, " "+runtime.PhasesPrefix)
			if !ok {
				continue
			}
			out := map[string]time.Duration{}
			for _, f := range strings.Split(rest, ", ") {
				name, d, _ := strings.Cut(f, " ")
				v, err := time.ParseDuration(d)
				tb.Must(err)
				out[name] = v
			}
			return out, clockToday(tb, stamp)
		}
		if time.Now().After(deadline) {
			tb.Fatalf("deploy %d logged no phases:\n%s", id, part.Text)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// clockToday turns a log line's UTC "15:04:05.000" into a time of today
// (the bench never runs across midnight for long).
func clockToday(tb *benchkit.TB, stamp string) time.Time {
	c, err := time.Parse("15:04:05.000", stamp)
	tb.Must(err)
	now := time.Now().UTC()
	t := time.Date(now.Year(), now.Month(), now.Day(), c.Hour(), c.Minute(), c.Second(), c.Nanosecond(), time.UTC)
	if t.After(now.Add(time.Hour)) {
		t = t.AddDate(0, 0, -1)
	}
	return t
}

func (g *glenv) lastLog(tb *benchkit.TB) string {
	acts, err := store.ListActivities(context.Background(), g.st.Reader(), store.ActivityFilter{Integration: "app", Limit: 1})
	tb.Must(err)
	if len(acts) == 0 {
		return "(no activity)"
	}
	part, err := store.ReadLog(context.Background(), g.st.Reader(), acts[0].ID, 0, 1<<20)
	tb.Must(err)
	return part.Text
}

func (g *glenv) stop() {
	g.watch.close()
	g.cancel()
	<-g.done
	g.st.Close()
	g.gl.Close()
	g.gl.RemoveRepos()
	os.RemoveAll(g.dir)
}

// freshPostgres makes an empty database on GLENV_TEST_DATABASE_URL's server.
func freshPostgres(tb *benchkit.TB) string {
	base := os.Getenv("GLENV_TEST_DATABASE_URL")
	if base == "" {
		tb.Fatalf("-db postgres needs GLENV_TEST_DATABASE_URL")
	}
	adm, err := sql.Open("pgx", base)
	tb.Must(err)
	defer adm.Close()
	name := fmt.Sprintf("bench_push_%d", time.Now().UnixNano())
	_, err = adm.Exec("CREATE DATABASE " + name)
	tb.Must(err)
	i := strings.LastIndex(base, "/")
	q := ""
	if j := strings.Index(base[i:], "?"); j >= 0 {
		q = base[i+j:]
	}
	return base[:i] + "/" + name + q
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2].Round(100 * time.Microsecond)
}

func medianF(fs []float64) float64 {
	s := slices.Clone(fs)
	slices.Sort(s)
	return s[len(s)/2]
}
