package main

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// The load generator speaks HTTP/1.1 on raw keep-alive connections (one per
// client, a fixed request written as bytes, the answer read with
// http.ReadResponse): it costs the shared CPUs as little as it can, the
// same for every path measured.

type target struct {
	name string
	addr string
	host string // the Host header
	proc *child // whose CPU counts for this path
}

// sample is one stretch of load on one path.
type sample struct {
	lats    []time.Duration
	errors  int64
	cpu     time.Duration // of the path's process
	elapsed time.Duration
	use     usage // of the path's process
	app     usage // of the app's process
	load    float64
}

type result struct {
	requests  int64
	rps       float64
	p50, p99  time.Duration
	errors    int64
	cpuPerReq time.Duration
	use, app  usage   // summed over the samples
	load      float64 // the 1-minute load average after the last sample
}

// summary merges the samples of one path in one round.
func summary(ss []sample) result {
	var all []time.Duration
	var r result
	var cpu, elapsed time.Duration
	for _, s := range ss {
		all = append(all, s.lats...)
		r.errors += s.errors
		cpu += s.cpu
		elapsed += s.elapsed
		r.use, r.app = r.use.add(s.use), r.app.add(s.app)
		r.load = s.load
	}
	slices.Sort(all)
	r.requests = int64(len(all))
	if len(all) == 0 {
		return r
	}
	r.rps = float64(len(all)) / elapsed.Seconds()
	r.p50, r.p99 = all[len(all)/2], all[len(all)*99/100]
	r.cpuPerReq = cpu / time.Duration(len(all))
	return r
}

// interleaved measures each target for d in turns of slice, the order
// rotating, so whatever else runs on the machine meanwhile weighs on every
// path alike. It returns one result per target.
func interleaved(targets []target, d, slice time.Duration, measure func(target, time.Duration) sample) []result {
	ss := make([][]sample, len(targets))
	for turn := 0; time.Duration(turn)*slice < d; turn++ {
		for j := range targets {
			i := (j + turn) % len(targets)
			ss[i] = append(ss[i], measure(targets[i], min(slice, d-time.Duration(turn)*slice)))
		}
	}
	rs := make([]result, len(targets))
	for i := range targets {
		rs[i] = summary(ss[i])
	}
	return rs
}

type client struct {
	t   target
	c   net.Conn
	br  *bufio.Reader
	req []byte
}

func newClient(t target) *client {
	return &client{t: t, req: []byte("GET / HTTP/1.1\r\nHost: " + t.host + "\r\nUser-Agent: bench/proxy\r\n\r\n")}
}

// do sends one request and reads the whole answer, reconnecting when the
// connection was closed.
func (k *client) do() error {
	if k.c == nil {
		c, err := net.Dial("tcp", k.t.addr)
		if err != nil {
			return err
		}
		k.c, k.br = c, bufio.NewReader(c)
	}
	if _, err := k.c.Write(k.req); err != nil {
		k.close()
		return err
	}
	resp, err := http.ReadResponse(k.br, nil)
	if err != nil {
		k.close()
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || resp.Close {
		k.close()
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return err
}

func (k *client) close() {
	if k.c != nil {
		k.c.Close()
		k.c = nil
	}
}

// saturate runs c clients for d, each sending its next request as soon as
// the previous answer arrived.
func saturate(t target, c int, d time.Duration) sample {
	return run(t, c, d, func(k *client, stop time.Time, lats *[]time.Duration, errs *atomic.Int64) {
		for time.Now().Before(stop) {
			start := time.Now()
			if err := k.do(); err != nil {
				errs.Add(1)
				continue
			}
			*lats = append(*lats, time.Since(start))
		}
	})
}

// paced sends rate requests per second in all from c clients, open loop:
// each client's arrivals are a Poisson process of rate/c per second
// starting at a random offset, so the clients are not in lockstep and
// requests do not come in bursts of c. A request is timed from its
// scheduled arrival when its client was still busy with the previous one
// (no coordinated omission), otherwise from when it was sent (the load
// generator's timer lateness is not the path's).
func paced(t target, c int, d time.Duration, rate int) sample {
	mean := time.Duration(float64(time.Second) * float64(c) / float64(rate))
	return run(t, c, d, func(k *client, stop time.Time, lats *[]time.Duration, errs *atomic.Int64) {
		next := time.Now().Add(time.Duration(rand.Int64N(int64(mean))))
		for next.Before(stop) {
			start := next
			if wait := time.Until(next); wait > 0 {
				time.Sleep(wait)
				start = time.Now()
			}
			if err := k.do(); err != nil {
				errs.Add(1)
			} else {
				*lats = append(*lats, time.Since(start))
			}
			next = next.Add(time.Duration(rand.ExpFloat64() * float64(mean)))
		}
	})
}

// alongside paces t and also at the same time, each at rate.
func alongside(t, also target, c int, d time.Duration, rate int) (result, result) {
	done := make(chan sample)
	go func() { done <- paced(also, c, d, rate) }()
	s := paced(t, c, d, rate)
	return summary([]sample{s}), summary([]sample{<-done})
}

func run(t target, c int, d time.Duration, loop func(k *client, stop time.Time, lats *[]time.Duration, errs *atomic.Int64)) sample {
	clients := make([]*client, c)
	for i := range clients {
		clients[i] = newClient(t)
		must(clients[i].do()) // connected and warm before the clock starts
	}
	defer func() {
		for _, k := range clients {
			k.close()
		}
	}()
	var wg sync.WaitGroup
	var errs atomic.Int64
	lats := make([][]time.Duration, c)
	u0, a0 := t.proc.usage(), appChild.usage()
	began := time.Now()
	stop := began.Add(d)
	for i, k := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			loop(k, stop, &lats[i], &errs)
		}()
	}
	wg.Wait()
	elapsed := time.Since(began)
	use, app := t.proc.usage().sub(u0), appChild.usage().sub(a0)
	return sample{lats: slices.Concat(lats...), errors: errs.Load(), cpu: use.cpu, elapsed: elapsed, use: use, app: app, load: loadAverage()}
}

// appChild is the app every path reaches.
var appChild *child

// loadAverage is the machine's 1-minute load average.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	var l float64
	fmt.Sscan(string(b), &l)
	return l
}
