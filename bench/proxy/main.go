// Command proxy measures glenv's environment proxy: requests per second and
// p99 latency for small responses with 32 concurrent clients, against the
// same app reached directly — both in the same run. The app is this program
// started again as a child process (a plain net/http server answering 13
// bytes), as an environment's app runs in a process of its own.
//
//	go run ./bench/proxy [-d 5s] [-c 32] [-rounds 3]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/glenv/glenv/internal/proxy"
	"github.com/glenv/glenv/internal/store"
)

func main() {
	serve := flag.String("serve", "", "internal: run the app on this address")
	d := flag.Duration("d", 5*time.Second, "duration of each measurement")
	c := flag.Int("c", 32, "concurrent clients")
	rounds := flag.Int("rounds", 3, "measurements of each, alternating; the median is reported")
	rate := flag.Int("rate", 2000, "requests per second (all clients together) for the latency measurement below saturation; 0 skips it")
	flag.Parse()
	if *serve != "" {
		app(*serve)
		return
	}
	appAddr := freeAddr()
	self, err := os.Executable()
	must(err)
	cmd := exec.Command(self, "-serve", appAddr)
	cmd.Stderr = os.Stderr
	must(cmd.Start())
	defer cmd.Process.Kill()
	waitUp(appAddr)

	p := proxy.New(proxy.Options{EnvDomain: "localhost", Backends: fixed{addr: appAddr},
		Lookup: func(context.Context, string) (store.Environment, error) {
			return store.Environment{}, store.ErrNotFound
		}})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	srv := &http.Server{Handler: p}
	go srv.Serve(l)
	defer srv.Close()

	direct := target{url: "http://" + appAddr + "/", host: appAddr}
	viaProxy := target{url: "http://" + l.Addr().String() + "/", host: "app--bench.localhost"}
	load(direct, *c, time.Second, 0) // warm up both paths
	load(viaProxy, *c, time.Second, 0)
	var ds, ps []result
	for range *rounds {
		ds = append(ds, load(direct, *c, *d, 0))
		ps = append(ps, load(viaProxy, *c, *d, 0))
	}
	dr, pr := median(ds), median(ps)
	fmt.Printf("proxy: %d concurrent clients, %s per measurement, median of %d, small responses (13 B)\n", *c, *d, *rounds)
	fmt.Printf("  %-8s %10s %9s %9s %7s\n", "path", "req/s", "p50", "p99", "errors")
	for _, r := range []struct {
		name string
		r    result
	}{{"direct", dr}, {"proxy", pr}} {
		fmt.Printf("  %-8s %10.0f %9s %9s %7d\n", r.name, r.r.rps, r.r.p50, r.r.p99, r.r.errors)
	}
	ratio := pr.rps / dr.rps
	added := pr.p99 - dr.p99
	fmt.Printf("  proxy/direct throughput %.2f× (goal ≥ 0.8×): %s\n", ratio, verdict(ratio >= 0.8))
	fmt.Printf("  added p99 %s (goal ≤ +1ms): %s\n", added.Round(time.Microsecond), verdict(added <= time.Millisecond))
	if *rate > 0 {
		var dl, pl []result
		for range *rounds {
			dl = append(dl, load(direct, *c, *d, *rate))
			pl = append(pl, load(viaProxy, *c, *d, *rate))
		}
		dm, pm := median(dl), median(pl)
		fmt.Printf("  below saturation, %d req/s from %d clients: p50 %s → %s, p99 %s → %s, added p99 %s (goal ≤ +1ms): %s\n",
			*rate, *c, dm.p50, pm.p50, dm.p99, pm.p99, (pm.p99 - dm.p99).Round(time.Microsecond), verdict(pm.p99-dm.p99 <= time.Millisecond))
	}
	fmt.Printf("  (load generator, proxy and app share this machine's %d CPUs)\n", numCPU())
}

func app(addr string) {
	body := []byte("hello, glenv\n")
	srv := &http.Server{Addr: addr, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write(body)
	})}
	must(srv.ListenAndServe())
}

// fixed is a Backends with the runtime's cost: a lookup and a counter.
type fixed struct{ addr string }

var inflight atomic.Int64

func (f fixed) Acquire(host string) (string, func(), bool) {
	inflight.Add(1)
	return f.addr, func() { inflight.Add(-1) }, true
}

type target struct{ url, host string }

type result struct {
	rps      float64
	p50, p99 time.Duration
	errors   int64
}

// load runs c clients for d; with rate > 0 they pace themselves to rate
// requests per second in all, else they send as fast as answers come.
func load(t target, c int, d time.Duration, rate int) result {
	tr := &http.Transport{MaxIdleConnsPerHost: c, MaxConnsPerHost: c}
	client := &http.Client{Transport: tr}
	defer tr.CloseIdleConnections()
	var wg sync.WaitGroup
	var errs atomic.Int64
	lats := make([][]time.Duration, c)
	stop := time.Now().Add(d)
	for i := range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var tick <-chan time.Time
			if rate > 0 {
				tk := time.NewTicker(time.Duration(float64(time.Second) * float64(c) / float64(rate)))
				defer tk.Stop()
				tick = tk.C
			}
			for time.Now().Before(stop) {
				if tick != nil {
					<-tick
				}
				req, _ := http.NewRequest(http.MethodGet, t.url, nil)
				req.Host = t.host
				start := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					errs.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					errs.Add(1)
					continue
				}
				lats[i] = append(lats[i], time.Since(start))
			}
		}()
	}
	wg.Wait()
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	slices.Sort(all)
	if len(all) == 0 {
		return result{errors: errs.Load()}
	}
	return result{rps: float64(len(all)) / d.Seconds(), p50: all[len(all)/2].Round(time.Microsecond),
		p99: all[len(all)*99/100].Round(time.Microsecond), errors: errs.Load()}
}

func median(rs []result) result {
	slices.SortFunc(rs, func(a, b result) int {
		switch {
		case a.rps < b.rps:
			return -1
		case a.rps > b.rps:
			return 1
		}
		return 0
	})
	m := rs[len(rs)/2]
	// p99 of the median-throughput round, but the median of the p99s is
	// steadier on a shared machine.
	p99s := make([]time.Duration, len(rs))
	for i, r := range rs {
		p99s[i] = r.p99
	}
	slices.Sort(p99s)
	m.p99 = p99s[len(p99s)/2]
	return m
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

func numCPU() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return max(1, strings.Count(string(b), "processor\t:"))
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	defer l.Close()
	return l.Addr().String()
}

func waitUp(addr string) {
	for range 100 {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	must(fmt.Errorf("app did not start on %s", addr))
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/proxy:", err)
		os.Exit(1)
	}
}
