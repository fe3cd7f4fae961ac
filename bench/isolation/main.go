// Command isolation measures what an environment's isolation costs: deploy
// time (a redeploy of an already-built tree, until the new app answers its
// health path) and proxy latency (requests to the app through glenv's
// proxy), with the isolation (bubblewrap + a network namespace connected
// by pasta + a cgroup per environment, one child per command) and without
// it (bubblewrap only, the host's network, rlimits) — both in the same run.
// The repository comes from the GitLab double over smart HTTP, as in
// production.
//
//	go run ./bench/isolation [-n 6] [-requests 400] [-app examples/static]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/glenv/glenv/bench/internal/benchkit"

	"github.com/glenv/glenv/internal/gitlabtest"
	"github.com/glenv/glenv/internal/jobs"
	"github.com/glenv/glenv/internal/proxy"
	"github.com/glenv/glenv/internal/runtime"
	"github.com/glenv/glenv/internal/store"
)

func main() {
	n := flag.Int("n", 6, "redeploys measured per mode")
	requests := flag.Int("requests", 400, "sequential requests through the proxy measured per mode")
	appDir := flag.String("app", "examples/static", "example app to deploy")
	flag.Parse()
	ctx := context.Background()

	tb := benchkit.New("bench/isolation")
	defer tb.RemoveAll()
	gl := tb.GitLab()
	defer gl.Close()
	abs, err := filepath.Abs(*appDir)
	must(err)
	shaA := gl.Commit(tb, gl.Project.ID, gitlabtest.Commit{Dir: abs})
	shaB := gl.Commit(tb, gl.Project.ID, gitlabtest.Commit{Files: map[string]string{"bench.txt": "b"}})

	fmt.Printf("isolation: what a network namespace + cgroups cost (%s); %d redeploys, %d proxied requests per mode\n", *appDir, *n, *requests)
	fmt.Printf("  %-44s %10s %10s %10s %10s\n", "", "deploy p50", "deploy max", "proxy p50", "proxy p99")
	type row struct {
		label                       string
		deploy, deployMax, p50, p99 time.Duration
	}
	var rows []row
	for _, isolated := range []bool{true, false} {
		dir, err := os.MkdirTemp("", "bench-isolation-")
		must(err)
		rt, err := runtime.New(runtime.Options{Dir: dir, DisableIsolation: !isolated, StopGrace: 2 * time.Second})
		must(err)
		label := "isolated (netns via pasta + cgroups)"
		if !isolated {
			label = "not isolated (host network, rlimits)"
		}
		if !rt.Sandboxed() {
			fmt.Printf("  %-44s (the sandbox is not usable here: row skipped)\n", label)
			rt.Close()
			os.RemoveAll(dir)
			continue
		}
		env := store.Environment{ID: 1, Name: "main", Kind: "branch", Host: "main--app"}
		req := func(sha string) jobs.DeployRequest { return gl.Request(env, sha) }
		// Fetch and build both commits once; then alternate between them.
		must(rt.Deploy(ctx, req(shaA)))
		must(rt.Deploy(ctx, req(shaB)))
		deploys := make([]time.Duration, 0, *n)
		for i := range *n {
			sha := shaA
			if i%2 == 1 {
				sha = shaB
			}
			start := time.Now()
			must(rt.Deploy(ctx, req(sha)))
			deploys = append(deploys, time.Since(start))
		}
		px := proxy.New(proxy.Options{EnvDomain: "localhost", Backends: rt,
			Lookup: func(context.Context, string) (store.Environment, error) { return env, nil }})
		pl, err := net.Listen("tcp", "127.0.0.1:0")
		must(err)
		srv := &http.Server{Handler: px}
		go srv.Serve(pl)
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
		get := func() time.Duration {
			r, _ := http.NewRequest(http.MethodGet, "http://"+pl.Addr().String()+"/", nil)
			r.Host = env.Host + ".localhost"
			start := time.Now()
			resp, err := client.Do(r)
			must(err)
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				must(fmt.Errorf("GET through the proxy: %s", resp.Status))
			}
			return time.Since(start)
		}
		for range 20 {
			get() // warm up connections
		}
		lat := make([]time.Duration, 0, *requests)
		for range *requests {
			lat = append(lat, get())
		}
		srv.Close()
		rows = append(rows, row{label, pct(deploys, 50), slices.Max(deploys), pct(lat, 50), pct(lat, 99)})
		r := rows[len(rows)-1]
		fmt.Printf("  %-44s %10s %10s %10s %10s\n", r.label, r.deploy.Round(time.Millisecond), r.deployMax.Round(time.Millisecond),
			r.p50.Round(10*time.Microsecond), r.p99.Round(10*time.Microsecond))
		rt.Close()
		os.RemoveAll(dir)
	}
	if len(rows) == 2 {
		fmt.Printf("  cost of the isolation: deploy p50 %+v, proxy p50 %+v, proxy p99 %+v\n",
			(rows[0].deploy - rows[1].deploy).Round(time.Millisecond), (rows[0].p50 - rows[1].p50).Round(10*time.Microsecond),
			(rows[0].p99 - rows[1].p99).Round(10*time.Microsecond))
	}
}

func pct(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s) - 1) * p / 100
	return s[i]
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/isolation:", err)
		os.Exit(1)
	}
}
