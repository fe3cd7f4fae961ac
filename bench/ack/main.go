// Command ack measures how fast glenv acknowledges GitLab webhooks: requests
// per second and p99 latency with 32 concurrent senders posting 8 KB push
// payloads, each with its own Idempotency-Key, against a raw net/http handler
// that only reads the body and answers 202 — both measured in the same run.
// It also measures webhook → environment record updated (p50). It runs on
// SQLite, and on PostgreSQL when GLENV_TEST_DATABASE_URL names a server.
//
//	go run ./bench/ack [-n 20000] [-c 32]
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
	"net/url"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/glenv/glenv/internal/config"
	"github.com/glenv/glenv/internal/gitlabtest"
	"github.com/glenv/glenv/internal/server"
	"github.com/glenv/glenv/internal/store"
)

const admin = "glenv_bench_admin_token_0123456789"

func main() {
	n := flag.Int("n", 20000, "deliveries per measurement")
	c := flag.Int("c", 32, "concurrent senders")
	e2e := flag.Int("e2e", 200, "deliveries for the webhook → environment latency")
	only := flag.String("db", "", "run only on this database: sqlite or postgres")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		must(err)
		must(pprof.StartCPUProfile(f))
		defer pprof.StopCPUProfile()
	}
	body := payload(8 << 10)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxIdleConns: 256}}

	raw := http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusAccepted)
	})}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	go raw.Serve(l)
	defer raw.Close()

	fmt.Printf("webhook ack benchmark: %d deliveries of %d bytes, %d concurrent senders\n\n", *n, len(body), *c)
	fmt.Printf("%-10s %-22s %10s %10s %10s %8s\n", "database", "target", "req/s", "p50", "p99", "ratio")
	dbs := []string{"sqlite"}
	if os.Getenv("GLENV_TEST_DATABASE_URL") != "" {
		dbs = append(dbs, "postgres")
	}
	if *only != "" {
		dbs = []string{*only}
	}
	for _, db := range dbs {
		base := load(client, "http://"+l.Addr().String()+"/", "", body, *n, *c, func(int) string { return "" })
		g := startGlenv(db)
		res := load(client, g.url+"/hooks/gitlab/app", g.secret, body, *n, *c, func(i int) string { return fmt.Sprintf("refs/heads/%s-%d", db, i) })
		fmt.Printf("%-10s %-22s %10.0f %10s %10s %8s\n", db, "raw net/http", base.rps, base.p50, base.p99, "1.00x")
		fmt.Printf("%-10s %-22s %10.0f %10s %10s %7.2fx\n", db, "glenv /hooks/gitlab", res.rps, res.p50, res.p99, res.rps/base.rps)
		if res.errors > 0 || base.errors > 0 {
			fmt.Printf("%-10s non-2xx answers: glenv %d, raw %d\n", db, res.errors, base.errors)
		}
		lat := g.endToEnd(client, body, *e2e)
		build := g.buildStarts(client, body, *e2e/2)
		fmt.Printf("%-10s webhook accepted → build starts (push to an active environment): p50 %s, p99 %s (goal p50 ≤ 100ms)\n", db, build[0], build[1])
		fmt.Printf("%-10s webhook → environment record updated: p50 %s, p99 %s (%d deliveries, one at a time)\n", db, lat[0], lat[1], *e2e)
		g.stop()
	}
	fmt.Println("\ngoal: glenv ≥ 0.5× raw net/http with p99 ≤ 10 ms; every 202 is committed to the database (group commit)")
}

type result struct {
	rps      float64
	p50, p99 time.Duration
	errors   int64
}

// load sends n deliveries from c goroutines and measures each request.
func load(client *http.Client, target, secret string, body []byte, n, c int, ref func(int) string) result {
	var next, errs atomic.Int64
	lat := make([]time.Duration, n)
	var wg sync.WaitGroup
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
				b := body
				if r := ref(i); r != "" {
					b = bytes.Replace(body, []byte("refs/heads/ms-viewport"), []byte(r), 1)
				}
				req, _ := http.NewRequest(http.MethodPost, target, bytes.NewReader(b))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-Gitlab-Event", "Push Hook")
				req.Header.Set("X-Gitlab-Token", secret)
				req.Header.Set("Idempotency-Key", fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), i))
				t0 := time.Now()
				resp, err := client.Do(req)
				lat[i] = time.Since(t0)
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
	elapsed := time.Since(start)
	sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
	return result{rps: float64(n) / elapsed.Seconds(), p50: lat[n/2].Round(10 * time.Microsecond),
		p99: lat[n*99/100].Round(10 * time.Microsecond), errors: errs.Load()}
}

// payload is GitLab's push payload for a created branch, padded with commits to size.
func payload(size int) []byte {
	raw, err := os.ReadFile(filepath.Join(repoRoot(), "internal", "lifecycle", "testdata", "webhooks", "push_branch_created.json"))
	must(err)
	var p map[string]any
	must(json.Unmarshal(raw, &p))
	p["project_id"] = 1
	p["project"].(map[string]any)["id"] = 1
	commits := p["commits"].([]any)
	for {
		b, _ := json.Marshal(p)
		if len(b) >= size {
			return b
		}
		commits = append(commits, commits[0])
		p["commits"] = commits
	}
}

func repoRoot() string {
	dir, _ := os.Getwd()
	for d := dir; d != "/"; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
	}
	return dir
}

type glenv struct {
	url, secret string
	st          *store.Store
	cancel      func()
	done        chan error
	gl          *gitlabtest.Server
}

// startGlenv runs a real glenv server in this process on a fresh database,
// connected to a GitLab double's project 1 as integration "app".
func startGlenv(db string) *glenv {
	dir, err := os.MkdirTemp("", "glenv-bench-ack")
	must(err)
	gl := gitlabtest.NewServer()
	u := gl.AddUser(gitlabtest.User{Username: "bench"})
	p := gl.AddProject(gitlabtest.Project{ID: 1, PathWithNamespace: "bench/app", DefaultBranch: "main", Members: map[int64]int{u.ID: 40}})
	gl.SetBranch(p.ID, "main", strings.Repeat("a", 40))
	tok := gl.AddToken(gitlabtest.Token{UserID: u.ID, Scopes: []string{"api"}})

	cfg := config.Config{Listen: "127.0.0.1:0", DataDir: dir, EnvDomain: "localhost", AdminToken: admin,
		ReconcileInterval: time.Hour, JobRescueAfter: 6 * time.Minute, LogLevel: "error", LogFormat: "text",
		// Acknowledgement is what is measured: deploys are recorded, not run.
		Runtime: "record"}
	if db == "postgres" {
		cfg.DatabaseURL = freshPostgres()
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	cfg.Listen = l.Addr().String()
	l.Close()
	must(cfg.Validate())
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := server.New(ctx, cfg, log)
	must(err)
	must(srv.Listen())
	g := &glenv{url: cfg.PublicURL, cancel: cancel, done: make(chan error, 1), gl: gl}
	go func() { g.done <- srv.Run(ctx) }()
	var res struct {
		WebhookSecret string `json:"webhook_secret"`
	}
	b, _ := json.Marshal(map[string]any{"type": "gitlab", "token": tok, "base_url": gl.URL, "gitlab_project": "bench/app", "name": "app"})
	req, _ := http.NewRequest(http.MethodPost, g.url+"/api/v1/integrations", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err := http.DefaultClient.Do(req)
	must(err)
	must(json.NewDecoder(resp.Body).Decode(&res))
	resp.Body.Close()
	if resp.StatusCode != 201 {
		panic(fmt.Sprintf("integration:add answered %d", resp.StatusCode))
	}
	g.secret = res.WebhookSecret
	g.st, err = store.Open(context.Background(), cfg.DatabaseURL, dir)
	must(err)
	return g
}

// endToEnd sends deliveries one at a time and measures until each one's
// environment record exists; returns p50 and p99.
func (g *glenv) endToEnd(client *http.Client, body []byte, n int) [2]time.Duration {
	// Let the load test's backlog drain first, so this measures one delivery's path.
	for {
		left, err := store.CountDeliveries(context.Background(), g.st.Reader(), store.DeliveryAccepted)
		must(err)
		if left == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	lat := make([]time.Duration, n)
	for i := 0; i < n; i++ {
		branch := fmt.Sprintf("e2e-%d", i)
		b := bytes.Replace(body, []byte("refs/heads/ms-viewport"), []byte("refs/heads/"+branch), 1)
		req, _ := http.NewRequest(http.MethodPost, g.url+"/hooks/gitlab/app", bytes.NewReader(b))
		req.Header.Set("X-Gitlab-Event", "Push Hook")
		req.Header.Set("X-Gitlab-Token", g.secret)
		req.Header.Set("Idempotency-Key", "e2e-"+branch)
		t0 := time.Now()
		resp, err := client.Do(req)
		must(err)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		for {
			if _, err := store.GetEnvironment(context.Background(), g.st.Reader(), "app", branch); err == nil {
				break
			}
			if time.Since(t0) > 30*time.Second {
				panic("environment " + branch + " never appeared")
			}
			time.Sleep(200 * time.Microsecond)
		}
		lat[i] = time.Since(t0)
	}
	sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
	return [2]time.Duration{lat[n/2].Round(100 * time.Microsecond), lat[n*99/100].Round(100 * time.Microsecond)}
}

// buildStarts pushes new heads to the active default branch one at a time
// and measures from the 202 until its deploy activity has started.
func (g *glenv) buildStarts(client *http.Client, body []byte, n int) [2]time.Duration {
	lat := make([]time.Duration, n)
	head := strings.Repeat("a", 40)
	for i := 0; i < n; i++ {
		next := fmt.Sprintf("%040x", i+1)
		b := bytes.Replace(body, []byte("refs/heads/ms-viewport"), []byte("refs/heads/main"), 1)
		b = bytes.Replace(b, []byte(`"before":"0000000000000000000000000000000000000000"`), []byte(`"before":"`+head+`"`), 1)
		b = bytes.Replace(b, []byte(`"after":"da1560886d4f094c3e6c9ef40349f7d38b5d27d7"`), []byte(`"after":"`+next+`"`), 1)
		req, _ := http.NewRequest(http.MethodPost, g.url+"/hooks/gitlab/app", bytes.NewReader(b))
		req.Header.Set("X-Gitlab-Event", "Push Hook")
		req.Header.Set("X-Gitlab-Token", g.secret)
		req.Header.Set("Idempotency-Key", "build-"+next)
		resp, err := client.Do(req)
		must(err)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		acked := time.Now()
		for {
			acts, err := store.ListActivities(context.Background(), g.st.Reader(), store.ActivityFilter{Integration: "app", Kind: store.ActivityDeploy, Limit: 1})
			must(err)
			if len(acts) == 1 && acts[0].SHA == next && !acts[0].StartedAt.IsZero() {
				lat[i] = acts[0].StartedAt.Sub(acked)
				if lat[i] < 0 {
					lat[i] = 0
				}
				break
			}
			if time.Since(acked) > 30*time.Second {
				panic("deploy of " + next + " never started")
			}
			time.Sleep(200 * time.Microsecond)
		}
		head = next
		// Let this deploy finish so the next push is not a supersede.
		for {
			env, err := store.GetEnvironment(context.Background(), g.st.Reader(), "app", "main")
			must(err)
			if env.DeployedSHA == next {
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
	sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
	return [2]time.Duration{lat[n/2].Round(100 * time.Microsecond), lat[n*99/100].Round(100 * time.Microsecond)}
}

func (g *glenv) stop() {
	g.cancel()
	<-g.done
	g.st.Close()
	g.gl.Close()
}

func freshPostgres() string {
	base := os.Getenv("GLENV_TEST_DATABASE_URL")
	admin, err := sql.Open("pgx", base)
	must(err)
	defer admin.Close()
	name := fmt.Sprintf("glenv_bench_%d", time.Now().UnixNano())
	_, err = admin.Exec("CREATE DATABASE " + name)
	must(err)
	u, err := url.Parse(base)
	must(err)
	u.Path = "/" + name
	return u.String()
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}
