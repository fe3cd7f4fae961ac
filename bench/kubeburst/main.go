// Command kubeburst measures issue 16's "1,000 environments on Kubernetes:
// create all from one burst of MR events — all Available p99 ≤ 60 s after
// the last event (fake nodes)" through glenv's whole path: n merge request
// open webhooks are posted to a real glenv (in this process, --runtime
// kubernetes, its default --workers and client limits), which records the
// deliveries, runs their jobs, and deploys each environment on a real
// control plane with kwok's fake node (internal/kube/kubetest). Times count
// from the last event's 202.
//
// The same-run baseline is the runtime alone: the same n deploys called
// directly (kube.Runtime.Deploy, --workers at a time, all "events" at
// once), so the difference is what webhooks, deliveries and jobs add. Each
// measurement gets a fresh control plane; the two alternate per round.
// Besides p50/p99/max it prints the Kubernetes API calls glenv made per
// environment and where an environment's time goes, milestone by
// milestone, as the cluster shows it.
//
//	GLENV_KUBE_BIN=$(scripts/kube-binaries --cached) go run ./bench/kubeburst [-n 1000] [-rounds 3] [-db sqlite|postgres]
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/glenv/glenv/bench/internal/benchkit"
	"github.com/glenv/glenv/internal/config"
	"github.com/glenv/glenv/internal/gitlabtest"
	"github.com/glenv/glenv/internal/kube/kubetest"
)

// glenvYML is the environments' app: kwok runs nothing, so only the image
// and health path matter.
const glenvYML = "image: python:3.13-slim\nrun: python3 -m http.server $PORT\nhealth: /\n"

// goal is issue 16's: every environment Available within 60 s of the last
// event, at the 99th percentile.
const goal = 60 * time.Second

var tb = benchkit.New("bench/kubeburst")

func main() {
	n := flag.Int("n", 1000, "merge requests opened in the burst")
	rounds := flag.Int("rounds", 1, "rounds of each measurement")
	senders := flag.Int("c", 32, "concurrent webhook senders")
	db := flag.String("db", "sqlite", "glenv's database: sqlite, or postgres (GLENV_TEST_DATABASE_URL)")
	workers := flag.Int("workers", 0, "glenv's --workers (0 = its default on Kubernetes)")
	baseline := flag.Bool("baseline", true, "also measure the runtime alone, alternated with glenv's path")
	keep := flag.String("keep-logs", "", "keep the control plane's files and logs under this directory")
	lean := flag.Bool("lean", false, "control plane without the garbage collector and resource quota controllers (kubetest.LaunchOptions.NoWatchAll)")
	traceAll := flag.Bool("trace", true, "watch namespaces, ReplicaSets and pods too, for where the time goes (the watches cost the API server)")
	cpuprofile := flag.String("cpuprofile", "", "write this process's CPU profile (glenv, the GitLab double, the trace) to this file")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		tb.Must(err)
		tb.Must(pprof.StartCPUProfile(f))
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	if *db != "sqlite" && *db != "postgres" {
		tb.Fatalf("-db %q: must be sqlite or postgres", *db)
	}
	if *db == "postgres" && os.Getenv("GLENV_TEST_DATABASE_URL") == "" {
		tb.Fatalf("-db postgres: set GLENV_TEST_DATABASE_URL to a PostgreSQL server")
	}
	w := *workers
	if w == 0 {
		w = config.DefaultKubernetesWorkers
	}
	fmt.Printf("kubeburst: %d merge requests opened at once, glenv --workers %d, %s, %d round(s), lean control plane %v, full trace %v; load average %s\n\n",
		*n, w, *db, *rounds, *lean, *traceAll, loadavg())
	results := map[string][]result{}
	modes := []string{"glenv"}
	if *baseline {
		modes = []string{"runtime", "glenv"}
	}
	for r := range *rounds {
		for _, mode := range modes {
			res := measure(mode, *n, w, *senders, *db, *keep, kubetest.LaunchOptions{NoWatchAll: *lean}, *traceAll)
			fmt.Printf("round %d, %s (load average %s):\n%s\n", r+1, describe(mode), loadavg(), res.detail)
			results[mode] = append(results[mode], res)
		}
	}
	fmt.Printf("from the last event, min / median / max of %d round(s):\n", *rounds)
	for _, mode := range modes {
		rs := results[mode]
		row := func(what string, f func(result) [3]time.Duration) {
			for i, label := range []string{"p50", "p99", "max"} {
				var v []time.Duration
				for _, r := range rs {
					v = append(v, f(r)[i])
				}
				fmt.Printf("  %-58s %s\n", describe(mode)+", "+what+" "+label, spread(v))
			}
		}
		row("Available", func(r result) [3]time.Duration { return r.available })
		row("noticed by glenv", func(r result) [3]time.Duration { return r.noticed })
		var calls []string
		for _, r := range rs {
			calls = append(calls, fmt.Sprintf("%.2f", r.callsPerEnv))
		}
		fmt.Printf("  %-58s %s\n", describe(mode)+", API calls per environment", strings.Join(calls, " / "))
	}
	if rs := results["glenv"]; len(rs) > 0 {
		var p99 []time.Duration
		for _, r := range rs {
			p99 = append(p99, r.available[1])
		}
		fmt.Printf("\ngoal: all Available p99 ≤ %s after the last event (glenv's path, median of rounds %s): %s\n",
			goal, benchkit.Median(p99), benchkit.Verdict(benchkit.Median(p99) <= goal))
	}
	fmt.Printf("load average at the end: %s\n", loadavg())
}

func describe(mode string) string {
	if mode == "runtime" {
		return "runtime alone"
	}
	return "glenv's path"
}

// result is one measurement: p50, p99 and max from the last event.
type result struct {
	available, noticed [3]time.Duration
	callsPerEnv        float64
	detail             string
}

// world is one measurement's control plane and GitLab double.
type world struct {
	cluster *kubetest.Cluster
	gl      *benchkit.GitLab
	sha     string // the merge requests' head
	dir     string
}

func newWorld(o kubetest.LaunchOptions, keep string) *world {
	dir := tb.TempDir()
	if keep != "" {
		// Kept in place, so a measurement that fails leaves them too.
		dir = fmt.Sprintf("%s/%d", keep, time.Now().UnixNano())
		tb.Must(os.MkdirAll(dir, 0o700))
	}
	c, err := kubetest.Launch(context.Background(), dir, o)
	tb.Must(err)
	gl := tb.GitLab()
	gl.Commit(tb, gl.Project.ID, gitlabtest.Commit{Branch: "main", Files: map[string]string{".glenv.yml": glenvYML}})
	sha := gl.Commit(tb, gl.Project.ID, gitlabtest.Commit{Branch: "feature", Files: map[string]string{".glenv.yml": glenvYML, "app.py": "1\n"}})
	return &world{cluster: c, gl: gl, sha: sha, dir: dir}
}

func (w *world) close() {
	w.cluster.Stop()
	w.gl.Close()
	tb.RemoveAll()
}

func measure(mode string, n, workers, senders int, db, keep string, o kubetest.LaunchOptions, traceAll bool) result {
	w := newWorld(o, keep)
	defer w.close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	calls := &counter{}
	cpu0, self0 := w.cluster.CPU(), selfCPU()
	req0 := requestCounts(ctx, w.cluster.Client)
	var run burst
	if mode == "runtime" {
		run = runtimeAlone(ctx, w, calls, n, workers, traceAll)
	} else {
		run = throughGlenv(ctx, w, calls, n, workers, senders, db, traceAll)
	}
	seen := run.trace.Seen()
	for ns, m := range run.glenv {
		if seen[ns] == nil {
			seen[ns] = map[string]time.Time{}
		}
		for k, v := range m {
			seen[ns][k] = v
		}
	}
	var avail, noticed []time.Duration
	for _, m := range seen {
		if t, ok := m[kubetest.MilestoneAvailable]; ok {
			avail = append(avail, t.Sub(run.last))
		}
		if t, ok := m["noticed"]; ok {
			noticed = append(noticed, t.Sub(run.last))
		}
	}
	if len(avail) != n || len(noticed) != n {
		tb.Fatalf("%s: %d of %d environments seen Available, %d noticed", mode, len(avail), n, len(noticed))
	}
	order := append(slices.Clone(run.before), kubetest.Milestones...)
	order = append(order, "noticed")
	detail := fmt.Sprintf("  last event %s after the first; from the last event:\n%s", run.last.Sub(run.first).Round(10*time.Millisecond),
		indent(kubetest.Breakdown(run.last, seen, order)))
	cpu1, self1 := w.cluster.CPU(), selfCPU()
	detail += "  CPU used during the burst: " + mode + " (this process) " + (self1 - self0).Round(100*time.Millisecond).String()
	for _, name := range []string{"kube-apiserver", "etcd", "kube-controller-manager", "kube-scheduler", "kwok"} {
		detail += ", " + name + " " + (cpu1[name] - cpu0[name]).Round(100*time.Millisecond).String()
	}
	detail += "\n"
	detail += requestsPerEnv(req0, requestCounts(ctx, w.cluster.Client), n)
	return result{available: quantiles(avail), noticed: quantiles(noticed), callsPerEnv: float64(run.calls) / float64(n), detail: detail}
}

// burst is what one measurement saw.
type burst struct {
	first, last time.Time // the first and the last event
	trace       *kubetest.Trace
	glenv       map[string]map[string]time.Time // namespace → glenv's own milestones
	before      []string                        // glenv's milestones before the namespace exists
	calls       int
}

// counter counts glenv's requests to the Kubernetes API.
type counter struct {
	next http.RoundTripper
	mu   sync.Mutex
	n    int
}

func (c *counter) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
	return c.next.RoundTrip(r)
}

func (c *counter) take() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.n
	c.n = 0
	return n
}

func (c *counter) wrap(rt http.RoundTripper) http.RoundTripper { c.next = rt; return c }

func quantiles(ds []time.Duration) [3]time.Duration {
	slices.Sort(ds)
	at := func(p float64) time.Duration { return ds[int(p*float64(len(ds)-1))].Round(10 * time.Millisecond) }
	return [3]time.Duration{at(0.5), at(0.99), ds[len(ds)-1].Round(10 * time.Millisecond)}
}

func spread(v []time.Duration) string {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 1 {
		return fmt.Sprintf("%8s", s[0])
	}
	return fmt.Sprintf("%8s / %8s / %8s", s[0], benchkit.Median(s), s[len(s)-1])
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n  ") + "\n"
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:3], " ")
}
