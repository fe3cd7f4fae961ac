package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/glenv/glenv/internal/config"
	"github.com/glenv/glenv/internal/gitlabtest"
	"github.com/glenv/glenv/internal/jobs"
	"github.com/glenv/glenv/internal/server"
	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/webhook"
)

const admin = "glenv_bench_admin_token_0123456789"

type glenv struct {
	url, secret string
	// read queries glenv's database for the bench: a plain pool, not a
	// second store.Open, whose own checkpointer would checkpoint glenv's
	// SQLite WAL alongside glenv's (twice the checkpoint I/O, and a
	// RESTART of its own that would block glenv's writer).
	read   *sql.DB
	cancel func()
	done   chan error
	gl     *gitlabtest.Server
	drop   func()
	dbURL  string
	dir    string // its data directory, removed by stop
}

// startGlenv runs a real glenv server in this process on a fresh database,
// connected to a GitLab double's project 1 as integration "app".
func startGlenv(db string) *glenv {
	drop := func() {}
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
		cfg.DatabaseURL, drop = freshPostgres()
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
	g := &glenv{url: cfg.PublicURL, cancel: cancel, done: make(chan error, 1), gl: gl, drop: drop, dbURL: cfg.DatabaseURL, dir: dir}
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
	if db == "postgres" {
		g.read, err = sql.Open("pgx", cfg.DatabaseURL)
	} else {
		g.read, err = sql.Open("sqlite", "file:"+store.SQLiteFile(cfg.DatabaseURL, dir)+"?_pragma=busy_timeout(10000)&_pragma=query_only(1)")
	}
	must(err)
	return g
}

// endToEnd sends deliveries one at a time and measures until each one's
// environment record exists; returns p50 and p99.
func (g *glenv) endToEnd(client *http.Client, body []byte, n int) [2]time.Duration {
	// Let the load test's backlog drain first, so this measures one delivery's path.
	g.waitDrained()
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
			if _, err := store.GetEnvironment(context.Background(), g.read, "app", branch); err == nil {
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
			acts, err := store.ListActivities(context.Background(), g.read, store.ActivityFilter{Integration: "app", Kind: store.ActivityDeploy, Limit: 1})
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
			env, err := store.GetEnvironment(context.Background(), g.read, "app", "main")
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
	g.read.Close()
	g.gl.Close()
	g.drop()
	os.RemoveAll(g.dir) // each round's glenv made one: a bench run left six behind
}

// freshPostgres creates an empty database and returns its URL and a drop function.
func freshPostgres() (string, func()) {
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
	return u.String(), func() {
		a, err := sql.Open("pgx", base)
		if err == nil {
			a.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
			a.Close()
		}
	}
}

// waitQuiet waits until glenv has no job but the delivery drain to run in
// the next seconds: the work processing set off (GitLab feedback for the
// environments it changed, held back a second to fold updates together)
// then runs before the next measurement, whichever target that is, not in
// it. The drain is left out: it lingers a while after its backlog, idle.
// It gives up after a minute (a job retrying against the GitLab double,
// say), saying so: the bench goes on, its figures marked by it.
func (g *glenv) waitQuiet() {
	soon := `datetime('now', '+2 seconds', 'subsec')`
	if strings.HasPrefix(g.dbURL, "postgres") {
		soon = `now() + interval '2 seconds'`
	}
	q := `SELECT count(*) FROM river_job WHERE kind <> 'process_delivery' AND (state IN ('available', 'pending', 'running')
		OR state IN ('scheduled', 'retryable') AND scheduled_at <= ` + soon + `)`
	if n := untilNone(time.Minute, func() int {
		var n int
		must(g.read.QueryRowContext(context.Background(), q).Scan(&n))
		return n
	}); n > 0 {
		fmt.Fprintf(os.Stderr, "glenv still has %d jobs to run after a minute; measuring anyway\n", n)
	}
}

// settle is glenv's settle (target.settle): its backlog processed and
// what that set off run.
func (g *glenv) settle() {
	g.waitDrained()
	g.waitQuiet()
}

// waitDrained waits until every delivery glenv accepted was processed, so
// the next measurement does not share the machine with this one's backlog.
func (g *glenv) waitDrained() {
	if left := untilNone(5*time.Minute, func() int {
		left, err := store.CountDeliveries(context.Background(), g.read, store.DeliveryAccepted)
		must(err)
		return left
	}); left > 0 {
		panic(fmt.Sprintf("%d deliveries still unprocessed after 5 minutes", left))
	}
}

// untilNone polls count every 20 ms until it is 0 or limit passed, and
// returns what it last counted.
func untilNone(limit time.Duration, count func() int) int {
	deadline := time.Now().Add(limit)
	for {
		n := count()
		if n == 0 || time.Now().After(deadline) {
			return n
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ackOnly is glenv's acknowledgement path with no delivery processing: the
// receiver and the same persist step as internal/server (deliveries and
// their job in one group-commit transaction), its River client never
// started, so jobs are enqueued and never worked.
type ackOnly struct {
	url   string
	st    *store.Store
	recv  *webhook.Receiver
	close func()
}

type benchSecret struct{}

func (benchSecret) WebhookSecret(context.Context, string) (int64, string, error) {
	return 1, "bench-secret", nil
}

func startAckOnly(databaseURL, dir string) *ackOnly {
	st, err := store.Open(context.Background(), databaseURL, dir)
	must(err)
	q, err := jobs.NewQueue(st, jobs.Deps{Runtime: jobs.RecordRuntime{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, jobs.QueueConfig{})
	must(err)
	// internal/server's persist: the same group commit.
	persist := q.AcceptDeliveries
	flushers := 1
	if st.Dialect == store.Postgres {
		flushers = webhook.PostgresFlushers
	}
	recv := webhook.NewReceiver(webhook.Options{Secrets: benchSecret{}, Persist: persist, Flushers: flushers, Prepare: st.PrepareBody,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	mux := http.NewServeMux()
	mux.Handle("/hooks/gitlab/{integration}", recv)
	u, stop := serve(mux)
	return &ackOnly{url: u + "hooks/gitlab/app", st: st, recv: recv, close: func() { stop(); recv.Close(); st.Close() }}
}
