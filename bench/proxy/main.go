// Command proxy measures glenv's environment proxy against the best any
// program could do on the same machine in the same run (issue 15): the app
// reached directly, a plain TCP forwarder (io.Copy between connections,
// which splices), glenv's proxy, and glenv's proxy with its lean path off
// (everything through httputil.ReverseProxy). Each runs in a process of its
// own; the app is a plain net/http server answering 13 bytes.
//
// Two loads, each measured for every path in every round, after a warm-up
// of each; within a round the paths take turns in stretches of -slice (the
// order rotating), so what else runs on the machine weighs on each alike:
//   - saturated: c connections sending as fast as answers come; throughput
//     and the CPU the path's own process spends per request;
//   - paced: -rate requests per second in all from c connections, open
//     loop with Poisson arrivals from random offsets; p50 and p99. Each
//     path is paced at the same time as the app direct (each at -rate):
//     a p99 is made of the machine's worst moments, which a shared machine
//     has plenty of, and this way both sides of a comparison live through
//     the same ones.
//
// Then a Python http.server app speaking HTTP/1.1, with Nagle's algorithm
// on (its default) and off, reached directly and through both paths.
//
// Figures are min / median / max over the rounds; ratios and added
// latencies are taken within a round, then summarised.
//
//	go run ./bench/proxy [-d 5s] [-c 32] [-rounds 3] [-rate 2000] [-cpuprofile proxy.pprof]
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"slices"
	"time"
)

func main() {
	role := flag.String("role", "", "internal: run as this child (app, forwarder, proxy, proxy-netfront, proxy-reverseproxy)")
	listen := flag.String("listen", "", "internal: the child's address")
	upstream := flag.String("upstream", "", "internal: where the child forwards to")
	d := flag.Duration("d", 5*time.Second, "duration of each measurement")
	c := flag.Int("c", 32, "connections (clients)")
	rounds := flag.Int("rounds", 3, "rounds; each measures every path under both loads")
	slice := flag.Duration("slice", 500*time.Millisecond, "the paths take turns in stretches this long")
	rate := flag.Int("rate", 2000, "requests per second in all for the paced load; 0 skips it")
	pythonN := flag.Int("python", 20, "requests to a Python http.server app with and without Nagle's algorithm; 0 skips it")
	profile := flag.String("cpuprofile", "", "write a CPU profile of glenv's proxy (its lean path on) to this file")
	flag.Parse()
	if *role != "" {
		runRole(*role, *listen, *upstream, *profile)
		return
	}

	app := startChild("app", freeAddr(), "", "")
	defer app.stop()
	appChild = app
	fwd := startChild("forwarder", freeAddr(), app.addr, "")
	defer fwd.stop()
	px := startChild("proxy", freeAddr(), app.addr, *profile)
	defer px.stop()
	nf := startChild("proxy-netfront", freeAddr(), app.addr, "")
	defer nf.stop()
	rp := startChild("proxy-reverseproxy", freeAddr(), app.addr, "")
	defer rp.stop()
	const host = "app--bench.localhost"
	targets := []target{
		{name: "direct", addr: app.addr, host: app.addr, proc: app},
		{name: "tcp forwarder", addr: fwd.addr, host: app.addr, proc: fwd},
		{name: "glenv proxy", addr: px.addr, host: host, proc: px},
		{name: "  lean, net/http", addr: nf.addr, host: host, proc: nf},
		{name: "  ReverseProxy only", addr: rp.addr, host: host, proc: rp},
	}
	saturated := func(t target, d time.Duration) sample { return saturate(t, *c, d) }
	interleaved(targets, time.Second, *slice, saturated) // warm: connections, buffers, the heap
	sat := make([][]result, len(targets))                // [target][round]
	pac := make([][]result, len(targets))                // paths but direct
	withDirect := make([][]result, len(targets))         // direct, at the same time as pac
	for round := range *rounds {
		for i, r := range interleaved(targets, *d, *slice, saturated) {
			sat[i] = append(sat[i], r)
		}
		if *rate > 0 {
			for j := range len(targets) - 1 {
				i := 1 + (j+round)%(len(targets)-1)
				p, dr := alongside(targets[i], targets[0], *c, *d, *rate)
				pac[i], withDirect[i] = append(pac[i], p), append(withDirect[i], dr)
			}
		}
	}

	fmt.Printf("proxy: %d connections, %s per path per round in turns of %s, %d rounds, small responses (13 B); min / median / max\n", *c, *d, *slice, *rounds)
	fmt.Printf("(load generator, paths and app share this machine's %d CPUs; CPU is each path's own process)\n\n", runtime.NumCPU())
	fmt.Printf("saturated\n  %-20s %-24s %-22s %-22s %s\n", "path", "req/s", "CPU µs per request", "× tcp forwarder", "errors")
	for i, t := range targets {
		fmt.Printf("  %-20s %-24s %-22s %-22s %d\n", t.name,
			spread(sat[i], func(r result) float64 { return r.rps }, "%.0f"),
			spread(sat[i], func(r result) float64 { return us(r.cpuPerReq) }, "%.0f"),
			ratios(sat[i], sat[1], "%.2f"), errors(sat[i]))
	}
	ratio := median(perRound(sat[2], sat[1], func(a, b result) float64 { return a.rps / b.rps }))
	cpu := median(values(sat[2], func(r result) float64 { return us(r.cpuPerReq) }))
	fmt.Printf("  glenv proxy ≥ 0.9× the tcp forwarder (median %.2f×): %s\n", ratio, verdict(ratio >= 0.9))
	fmt.Printf("  glenv proxy ≤ 60 µs CPU per request (median %.0f µs): %s\n", cpu, verdict(cpu <= 60))
	if *rate > 0 {
		fmt.Printf("\npaced: %d req/s to each of two paths at once (the path, and direct: the same moments, so the same noise),\n", *rate)
		fmt.Printf("%d connections each, Poisson arrivals from random offsets (open loop)\n", *c)
		fmt.Printf("  %-20s %-22s %-24s %-24s %-24s %s\n", "path", "p50 µs", "p99 µs", "direct's p99 meanwhile", "added p99 µs", "errors")
		for i, t := range targets[1:] {
			i++
			fmt.Printf("  %-20s %-22s %-24s %-24s %-24s %d\n", t.name,
				spread(pac[i], func(r result) float64 { return us(r.p50) }, "%.0f"),
				spread(pac[i], func(r result) float64 { return us(r.p99) }, "%.0f"),
				spread(withDirect[i], func(r result) float64 { return us(r.p99) }, "%.0f"),
				spreadOf(perRound(pac[i], withDirect[i], func(a, b result) float64 { return us(a.p99 - b.p99) }), "%+.0f"),
				errors(pac[i])+errors(withDirect[i]))
		}
		added := median(perRound(pac[2], withDirect[2], func(a, b result) float64 { return us(a.p99 - b.p99) }))
		fmt.Printf("  glenv proxy p99 ≤ +500 µs over direct (median %+.0f µs): %s\n", added, verdict(added <= 500))
		fmt.Printf("\n  where a round's glenv proxy p99 went (run-queue wait: runnable, waiting for a CPU; switches: its threads put to sleep\n")
		fmt.Printf("  or woken, the tcp forwarder's in its own paced stretch; new app connections: the pool's dials)\n")
		fmt.Printf("  %-6s %-10s %-10s %-12s %-22s %-22s %-24s %-10s %-12s %s\n", "round", "p99 µs", "direct's", "load (1 min)",
			"proxy run-queue µs/req", "app run-queue µs/req", "switches/req, forwarder", "proxy GCs", "GC pause µs", "new app conns")
		for r := range pac[2] {
			p, d, fw := pac[2][r], withDirect[2][r], pac[1][r]
			n := float64(p.requests)
			fmt.Printf("  %-6d %-10.0f %-10.0f %-12.2f %-22.1f %-22.1f %-24s %-10d %-12.0f %d\n", r+1, us(p.p99), us(d.p99), p.load,
				us(p.use.runq)/n, us(p.app.runq)/float64(p.requests+d.requests),
				fmt.Sprintf("%.2f, %.2f", float64(p.use.csw)/n, float64(fw.use.csw)/float64(fw.requests)),
				p.use.gcs, us(p.use.gcPause), p.app.conns)
		}
	}
	if *pythonN > 0 {
		python(*pythonN)
	}
	for i := range targets {
		if errors(sat[i])+errors(pac[i])+errors(withDirect[i]) > 0 {
			os.Exit(1)
		}
	}
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func values(rs []result, f func(result) float64) []float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	return v
}

// perRound compares a with b round by round.
func perRound(a, b []result, f func(a, b result) float64) []float64 {
	v := make([]float64, len(a))
	for i := range a {
		v[i] = f(a[i], b[i])
	}
	return v
}

func spread(rs []result, f func(result) float64, format string) string {
	return spreadOf(values(rs, f), format)
}

func ratios(a, b []result, format string) string {
	return spreadOf(perRound(a, b, func(a, b result) float64 { return a.rps / b.rps }), format)
}

func spreadOf(v []float64, format string) string {
	s := slices.Clone(v)
	slices.Sort(s)
	return fmt.Sprintf(format+" / "+format+" / "+format, s[0], median(s), s[len(s)-1])
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func errors(rs []result) int64 {
	var n int64
	for _, r := range rs {
		n += r.errors
	}
	return n
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}
