// Command wake measures idle pause and wake (issue 17) in one run: a
// visit to a paused environment until the app's first 200 through glenv's
// proxy, against the app's own start (its `run` command started directly
// until its health path answers), and the memory glenv keeps for paused
// environments (its RSS with N paused environments against one, and the
// processes they leave: none). The wake is what the wake's deploy job
// does, a deploy of the built tree, called directly: River's poll interval
// (50 ms on SQLite, 10 ms on PostgreSQL) comes on top in glenv serve.
//
//	go run ./bench/wake [-n 10] [-paused 100]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/glenv/glenv/bench/internal/benchkit"

	"github.com/glenv/glenv/internal/gitlabtest"
	"github.com/glenv/glenv/internal/proxy"
	"github.com/glenv/glenv/internal/runtime"
	"github.com/glenv/glenv/internal/store"
)

func main() {
	n := flag.Int("n", 10, "wakes (and app starts) measured")
	paused := flag.Int("paused", 100, "environments deployed then paused for the memory figure")
	flag.Parse()
	ctx := context.Background()

	tb := benchkit.New("bench/wake")
	defer tb.RemoveAll()
	gl := tb.GitLab()
	defer gl.Close()
	abs, err := filepath.Abs("examples/static")
	must(err)
	sha := gl.Commit(tb, gl.Project.ID, gitlabtest.Commit{Dir: abs})

	own := make([]time.Duration, 0, *n)
	for range *n {
		own = append(own, tb.StartDirect(abs))
	}

	dir, err := os.MkdirTemp("", "bench-wake-")
	must(err)
	defer os.RemoveAll(dir)
	rt, err := runtime.New(runtime.Options{Dir: dir, StopGrace: 2 * time.Second, UnsafeNoSandbox: true})
	must(err)
	defer rt.Close()
	envs := sync.Map{} // host → store.Environment
	wakeLogs := make(chan string, *n+1)
	envOf := func(id int64) store.Environment {
		e := store.Environment{ID: id, Name: "env" + strconv.FormatInt(id, 10), Kind: "branch", IntegrationName: "app",
			Host: "env" + strconv.FormatInt(id, 10) + "--app", Ref: "main", State: store.StateActive}
		envs.Store(e.Host, e)
		return e
	}
	req := func(env store.Environment) runtime.DeployRequest { return gl.Request(env, sha) }
	setState := func(env store.Environment, state string) {
		env.State = state
		envs.Store(env.Host, env)
	}
	px := proxy.New(proxy.Options{EnvDomain: "localhost", Backends: rt,
		Lookup: func(_ context.Context, host string) (store.Environment, error) {
			if e, ok := envs.Load(host); ok {
				return e.(store.Environment), nil
			}
			return store.Environment{}, store.ErrNotFound
		},
		Wake: func(_ context.Context, id int64) (bool, error) {
			env := envOf(id)
			setState(env, store.StateBuilding)
			go func() {
				var log strings.Builder
				var mu sync.Mutex
				r := req(env)
				r.Log = func(s string) { mu.Lock(); log.WriteString(s); mu.Unlock() }
				must(rt.Deploy(ctx, r))
				setState(env, store.StateActive)
				mu.Lock()
				wakeLogs <- log.String()
				mu.Unlock()
			}()
			return true, nil
		}})
	front := httptest.NewServer(px)
	defer front.Close()

	// Wake: pause, then one API-style request that waits for the app.
	env := envOf(1)
	must(rt.Deploy(ctx, req(env))) // fetch and build once
	wakes := make([]time.Duration, 0, *n)
	for range *n {
		must(rt.Pause(ctx, env.ID))
		setState(env, store.StatePaused)
		start := time.Now()
		code := get(front.URL, env.Host)
		if code != 200 {
			must(fmt.Errorf("wake answered %d", code))
		}
		wakes = append(wakes, time.Since(start))
	}
	phases := map[string][]time.Duration{}
	var order []string
	for range wakes {
		for _, f := range strings.Split(phaseLine(<-wakeLogs), ", ") {
			name, d, _ := strings.Cut(f, " ")
			v, err := time.ParseDuration(d)
			if err != nil {
				continue
			}
			if _, seen := phases[name]; !seen {
				order = append(order, name)
			}
			phases[name] = append(phases[name], v)
		}
	}
	sandbox := "no sandbox"
	if rt.Sandboxed() {
		sandbox = "sandboxed"
	}
	fmt.Printf("wake: a visit to a paused environment → first 200 from the app (examples/static, %s), median of %d\n", sandbox, *n)
	fmt.Printf("  %-36s %9s %9s\n", "", "median", "max")
	fmt.Printf("  %-36s %9s %9s\n", "app's own start (run → health 2xx)", benchkit.Median(own), slices.Max(own).Round(time.Millisecond))
	fmt.Printf("  %-36s %9s %9s   +%s over the app's own start (goal ≤ +200ms): %s\n", "wake on visit → first 200", benchkit.Median(wakes),
		slices.Max(wakes).Round(time.Millisecond), (benchkit.Median(wakes) - benchkit.Median(own)).Round(time.Millisecond), benchkit.Verdict(benchkit.Median(wakes)-benchkit.Median(own) <= 200*time.Millisecond))

	fmt.Printf("  the wake's deploy, phase by phase (median, max):")
	for _, name := range order {
		fmt.Printf(" %s %s/%s", name, benchkit.Median(phases[name]), slices.Max(phases[name]).Round(time.Millisecond))
	}
	fmt.Println()

	// Memory: RSS with one paused environment, then with -paused of them.
	must(rt.Pause(ctx, env.ID))
	base := rss()
	for i := range *paused {
		e := envOf(int64(100 + i))
		must(rt.Deploy(ctx, req(e)))
		must(rt.Pause(ctx, e.ID))
	}
	after := rss()
	left := children(os.Getpid())
	fmt.Printf("memory: %d paused environments: RSS %s → %s (+%s; goal ≤ +10 MB: %s), processes left: %d\n", *paused,
		mb(base), mb(after), mb(after-base), benchkit.Verdict(after-base <= 10<<20), left)
}

func get(base, host string) int {
	r, _ := http.NewRequest(http.MethodGet, base+"/", nil)
	r.Host = host + ".localhost"
	r.Header.Set("User-Agent", "bench/wake")
	resp, err := http.DefaultClient.Do(r)
	must(err)
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// phaseLine is what follows runtime.PhasesPrefix in a deploy's log.
func phaseLine(log string) string {
	_, rest, _ := strings.Cut(log, runtime.PhasesPrefix)
	line, _, _ := strings.Cut(rest, "\n")
	return line
}

// rss is this process's resident set after a full collection.
func rss() int64 {
	debug.FreeOSMemory()
	b, err := os.ReadFile("/proc/self/status")
	must(err)
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// children counts the live processes whose parent is pid.
func children(pid int) int {
	n := 0
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		f := strings.Fields(s[i+2:])
		if len(f) > 1 && f[1] == strconv.Itoa(pid) && f[0] != "Z" {
			n++
		}
	}
	return n
}

func mb(b int64) string { return fmt.Sprintf("%.1f MB", float64(b)/(1<<20)) }

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/wake:", err)
		os.Exit(1)
	}
}
