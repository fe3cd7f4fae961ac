// Command envapi measures the GitLab-compatible environments list: it seeds
// 10,000 environments in one project on SQLite (and on PostgreSQL when
// GLENV_TEST_DATABASE_URL names a server), then lists them over HTTP with
// per_page=100 at pages across the whole range and prints p50/p99 next to
// the goal (p99 ≤ 20 ms).
package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/glenv/glenv/internal/envapi"
	"github.com/glenv/glenv/internal/jobs"
	"github.com/glenv/glenv/internal/slug"
	"github.com/glenv/glenv/internal/store"
)

const goal = 20 * time.Millisecond

func main() { os.Exit(bench()) }

// bench runs the measurement and returns the exit code: 1 when a database
// misses the goal. It returns rather than exits so that the temporary
// databases are removed either way.
func bench() int {
	n := flag.Int("environments", 10000, "environments to seed in the project")
	requests := flag.Int("requests", 1000, "list requests to time per database")
	perPage := flag.Int("per-page", 100, "per_page of every list request")
	flag.Parse()

	type backend struct{ name, url string }
	dir, err := os.MkdirTemp("", "glenv-bench-envapi")
	if err != nil {
		fail(err)
	}
	defer os.RemoveAll(dir)
	backends := []backend{{"sqlite", "sqlite://" + filepath.Join(dir, "glenv.db")}}
	if base := os.Getenv("GLENV_TEST_DATABASE_URL"); base != "" {
		u, drop, err := freshPostgres(base)
		if err != nil {
			fail(err)
		}
		defer drop()
		backends = append(backends, backend{"postgres", u})
	} else {
		fmt.Println("(GLENV_TEST_DATABASE_URL is not set: PostgreSQL skipped)")
	}

	fmt.Printf("GET /api/v4/projects/:id/environments?per_page=%d over %d environments, %d requests, pages 1..%d\n",
		*perPage, *n, *requests, (*n+*perPage-1) / *perPage)
	fmt.Printf("%-9s %9s %9s %9s %9s  %s\n", "database", "seed", "p50", "p99", "max", "goal p99 ≤ 20ms")
	failed := false
	for _, b := range backends {
		r, err := run(b.url, dir, *n, *requests, *perPage)
		if err != nil {
			fail(fmt.Errorf("%s: %w", b.name, err))
		}
		verdict := "met"
		if r.p99 > goal {
			verdict, failed = "MISSED", true
		}
		fmt.Printf("%-9s %9s %9s %9s %9s  %s\n", b.name, r.seed.Round(time.Millisecond), ms(r.p50), ms(r.p99), ms(r.max), verdict)
	}
	if failed {
		return 1
	}
	return 0
}

type result struct{ seed, p50, p99, max time.Duration }

func run(databaseURL, dataDir string, n, requests, perPage int) (result, error) {
	ctx := context.Background()
	var r result
	s, err := store.Open(ctx, databaseURL, dataDir)
	if err != nil {
		return r, err
	}
	defer s.Close()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	q, err := jobs.NewQueue(s, jobs.Deps{Runtime: jobs.RecordRuntime{}, Logger: quiet}, jobs.QueueConfig{Logger: quiet})
	if err != nil {
		return r, err
	}
	in := store.Integration{Name: "app", Type: "gitlab", BaseURL: "https://gitlab.example.com",
		UserFacingURL: "https://gitlab.example.com", GitLabProject: "group/app", ProjectID: 42, ProjectPath: "group/app",
		DefaultBranch: "main", TokenSealed: "sealed", WebhookSecretSealed: "sealed", Space: "root"}
	if err := store.CreateIntegration(ctx, s.DB, &in); err != nil {
		return r, err
	}
	token := store.NewTokenValue()
	if _, err := store.CreateAPIToken(ctx, s.DB, "bench", store.RoleAdmin, token); err != nil {
		return r, err
	}
	start := time.Now()
	if err := seed(ctx, s, in, n); err != nil {
		return r, fmt.Errorf("seed: %w", err)
	}
	r.seed = time.Since(start)

	srv := httptest.NewServer(envapi.New(s, q, quiet, func(e store.Environment) string { return "http://" + e.Host + ".localhost/" }))
	defer srv.Close()
	pages := max((n+perPage-1)/perPage, 1)
	get := func(page int) (time.Duration, error) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v4/projects/group%2Fapp/environments?"+
			url.Values{"per_page": {fmt.Sprint(perPage)}, "page": {fmt.Sprint(page)}}.Encode(), nil)
		req.Header.Set("PRIVATE-TOKEN", token)
		t0 := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Total") != fmt.Sprint(n) {
			return 0, fmt.Errorf("page %d: status %d, X-Total %q", page, resp.StatusCode, resp.Header.Get("X-Total"))
		}
		return time.Since(t0), err
	}
	for i := range 50 { // warm the connection, caches and query plans
		if _, err := get(1 + i%pages); err != nil {
			return r, err
		}
	}
	lat := make([]time.Duration, 0, requests)
	for i := range requests {
		// Stride through the pages so early, middle and last pages (the
		// largest OFFSET) are all measured.
		d, err := get(1 + (i*37)%pages)
		if err != nil {
			return r, err
		}
		lat = append(lat, d)
	}
	slices.Sort(lat)
	r.p50, r.p99, r.max = lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1]
	return r, nil
}

// seed writes n environments as the lifecycle does, most branch
// environments inactive and a share of them active.
func seed(ctx context.Context, s *store.Store, in store.Integration, n int) error {
	return s.Tx(ctx, func(tx *sql.Tx) error {
		for i := range n {
			name := fmt.Sprintf("feature/bench-%05d", i)
			e := store.Environment{IntegrationID: in.ID, IntegrationName: in.Name, ProjectID: in.ProjectID, Name: name,
				Slug: slug.Environment(name), Kind: "branch", Ref: name, Parent: "main", HeadSHA: "0123456789abcdef",
				State: store.StateInactive, Tier: "staging"}
			if i%4 == 0 {
				e.State = store.StateActive
			}
			e.Host = slug.Host(e.Slug, in.Name)
			if err := store.SaveEnvironment(ctx, tx, &e); err != nil {
				return err
			}
		}
		return nil
	})
}

// freshPostgres creates an empty database on the server at base and returns
// its URL and a function that drops it.
func freshPostgres(base string) (string, func(), error) {
	admin, err := sql.Open("pgx", base)
	if err != nil {
		return "", nil, err
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	name := "glenv_bench_" + hex.EncodeToString(rnd[:])
	if _, err := admin.Exec(`CREATE DATABASE ` + name); err != nil {
		admin.Close()
		return "", nil, fmt.Errorf("create benchmark database: %w", err)
	}
	u, err := url.Parse(base)
	if err != nil {
		admin.Close()
		return "", nil, err
	}
	u.Path = "/" + name
	return u.String(), func() {
		_, _ = admin.Exec(`DROP DATABASE IF EXISTS ` + name + ` WITH (FORCE)`)
		admin.Close()
	}, nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d.Microseconds())/1000) }

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench/envapi:", err)
	os.Exit(1)
}
