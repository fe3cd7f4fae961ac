// Command push measures a push to an active environment until the new
// commit is served (issue 15), phase by phase, against the app's own build
// and start timed alone in the same run. A real glenv (the process runtime,
// sandboxed where bubblewrap and pasta work, SQLite or PostgreSQL) serves a
// project of the GitLab double; each push commits a new version.txt,
// delivers GitLab's push webhook, and polls the environment through glenv's
// proxy until it answers with the new version. The app's own start is
// measured between pushes, so both see the same machine load.
//
// Phases: the webhook's ack (request → 202), the delivery's pickup and
// processing (202 → deploy activity recorded; below zero when it was
// recorded before the 202 reached the client), the deploy's pickup (→ the
// runtime's start), then the runtime's own phases from the deploy log
// (fetch, configure, build, data, sandbox, health, switch; stamped to the
// millisecond), and the rest until the first request (polled every 2 ms)
// served the new commit.
//
//	go run ./bench/push [-rounds 3] [-n 5] [-db sqlite|postgres]
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
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/glenv/glenv/bench/internal/benchkit"
	"github.com/glenv/glenv/internal/config"
	"github.com/glenv/glenv/internal/gitlabtest"
	"github.com/glenv/glenv/internal/runtime"
	"github.com/glenv/glenv/internal/server"
	"github.com/glenv/glenv/internal/store"
)

const admin = "glenv_bench_admin_token_0123456789"

// phaseNames are the columns of the phase table, in order.
var phaseNames = []string{"ack", "delivery", "pickup", "fetch", "configure", "build", "data", "sandbox", "health", "switch", "served"}

func main() {
	rounds := flag.Int("rounds", 3, "rounds (each gives one ratio)")
	n := flag.Int("n", 5, "pushes per round (its median is the round's figure)")
	db := flag.String("db", "sqlite", "database: sqlite, or postgres (GLENV_TEST_DATABASE_URL names the server)")
	flag.Parse()
	tb := benchkit.New("bench/push")
	defer tb.RemoveAll()
	app, err := filepath.Abs("examples/static")
	tb.Must(err)

	g := start(tb, app, *db)
	defer g.stop()
	fmt.Printf("push to an active environment → new commit served (examples/static, %s, %s), %d rounds of %d pushes\n",
		g.sandbox, *db, *rounds, *n)

	var ratios []float64
	all := map[string][]time.Duration{}
	var allTotal, allOwn []time.Duration
	for r := range *rounds {
		var totals, owns []time.Duration
		for i := range *n {
			owns = append(owns, tb.StartDirect(app))
			ph, total := g.push(tb, fmt.Sprintf("round %d push %d", r+1, i+1))
			totals = append(totals, total)
			for k, v := range ph {
				all[k] = append(all[k], v)
			}
		}
		med, own := benchkit.Median(totals), benchkit.Median(owns)
		ratio := float64(med) / float64(own)
		ratios = append(ratios, ratio)
		allTotal, allOwn = append(allTotal, totals...), append(allOwn, owns...)
		fmt.Printf("  round %d: push → served median %s (min %s, max %s); app's own build + start %s (no build steps): %.2f×\n", r+1, med,
			slices.Min(totals).Round(time.Millisecond), slices.Max(totals).Round(time.Millisecond), own, ratio)
	}
	fmt.Printf("\n  phases (median over %d pushes; min / median / max):\n", len(allTotal))
	for _, name := range phaseNames {
		ds := all[name]
		if len(ds) == 0 {
			continue
		}
		fmt.Printf("    %-10s %9s %9s %9s\n", name, slices.Min(ds).Round(100*time.Microsecond), median(ds), slices.Max(ds).Round(100*time.Microsecond))
	}
	fmt.Printf("    %-10s %9s %9s %9s\n", "total", slices.Min(allTotal).Round(time.Millisecond), benchkit.Median(allTotal), slices.Max(allTotal).Round(time.Millisecond))
	fmt.Printf("    %-10s %9s %9s %9s\n", "app alone", slices.Min(allOwn).Round(time.Millisecond), benchkit.Median(allOwn), slices.Max(allOwn).Round(time.Millisecond))
	fmt.Printf("\n  ratio to the app's own build + start per round: min %.2f× / median %.2f× / max %.2f× (goal ≤ 1.3× in every round): %s\n",
		slices.Min(ratios), medianF(ratios), slices.Max(ratios), benchkit.Verdict(slices.Max(ratios) <= 1.3))
}

type glenv struct {
	url, secret, sandbox string
	front                string // glenv's listener, for environment traffic
	st                   *store.Store
	gl                   *gitlabtest.Server
	projectID            int64
	head                 string
	cancel               func()
	done                 chan error
	client               *http.Client
	body                 map[string]any
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
	g := &glenv{url: cfg.PublicURL, front: "http://" + listen, cancel: cancel, done: make(chan error, 1), gl: gl, projectID: p.ID, head: head,
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
	g.secret = res.WebhookSecret
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

// push commits a new version, delivers its push webhook and waits until
// the environment serves it; it returns each phase and the whole.
func (g *glenv) push(tb *benchkit.TB, version string) (map[string]time.Duration, time.Duration) {
	sha := g.gl.Commit(tb, g.projectID, gitlabtest.Commit{Files: map[string]string{"version.txt": version}})
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
	served := g.waitServed(tb, version, t0.Add(time.Minute))
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
	return ph, served.Sub(t0)
}

// waitServed polls the environment through glenv's proxy every 2 ms until
// version.txt says version, and returns when it first did.
func (g *glenv) waitServed(tb *benchkit.TB, version string, deadline time.Time) time.Time {
	c := &http.Client{Timeout: 5 * time.Second}
	for {
		req, _ := http.NewRequest(http.MethodGet, g.front+"/version.txt", nil)
		req.Host = "main--app.localhost"
		req.Header.Set("Accept", "text/plain")
		resp, err := c.Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && string(b) == version {
				return time.Now()
			}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("version %q never served; last deploy log:\n%s", version, g.lastLog(tb))
		}
		time.Sleep(2 * time.Millisecond)
	}
}

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
	g.cancel()
	<-g.done
	g.st.Close()
	g.gl.Close()
	g.gl.RemoveRepos()
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
