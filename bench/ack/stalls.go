package main

import (
	"cmp"
	"flag"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/glenv/glenv/internal/store"
)

// -stalls FILE tells the causes of slow acknowledgements apart. During
// every open-loop measurement of a SQLite target it records each reply
// slower than -slow, every use of that target's SQLite writer and
// checkpoint connections (store.TraceSQLiteWriters: BEGIN, each statement,
// each transaction's span, each checkpoint), and the hiccups of a probe
// goroutine that sleeps 1 ms at a time (a hiccup is the whole process
// off the CPU: the machine's load, or the Go runtime). Then it writes to
// FILE, per measurement, each stall (slow replies whose waits overlap)
// next to what held the writer, what checkpointed and what hiccuped
// meanwhile, and a summary: BEGINs that waited (a lock or SQLite's busy
// handler), long transactions by their first statement, checkpoints by
// mode, hiccups and Go's GC pauses.
var (
	stallsFile = flag.String("stalls", "", "write a trace of every open-loop reply slower than -slow, and what held SQLite's writer meanwhile, to this file")
	slowAck    = flag.Duration("slow", 10*time.Millisecond, "with -stalls: the reply time that counts as slow")
)

type stallTrace struct {
	out io.Writer
	mu  sync.Mutex
	on  atomic.Bool
	db  string // the traced target's database file
	// what was recorded during the current measurement
	slow    []span
	uses    []store.WriterUse
	hiccups []span
	all     int
}

type span struct {
	at  time.Time
	lat time.Duration
}

var stalls *stallTrace

func startStalls() {
	if *stallsFile == "" {
		return
	}
	f, err := os.Create(*stallsFile)
	must(err)
	stalls = &stallTrace{out: f}
	// Every wait of 1 ms or more, with its stack: SQLite's busy handler
	// (modernc.org/sqlite.busyHandler) sleeps in a select, so a writer
	// that met SQLITE_BUSY shows there; so does a wait for the writer
	// connection (database/sql.(*DB).conn).
	runtime.SetBlockProfileRate(int(time.Millisecond))
	store.TraceSQLiteWriters(func(u store.WriterUse) {
		if !stalls.on.Load() || !strings.HasSuffix(u.Conn, " "+stalls.db) {
			return
		}
		stalls.mu.Lock()
		stalls.uses = append(stalls.uses, u)
		stalls.mu.Unlock()
	})
}

// stopStalls writes the block profile of the whole run to FILE.block.
func stopStalls() {
	if stalls == nil {
		return
	}
	f, err := os.Create(*stallsFile + ".block")
	must(err)
	must(pprof.Lookup("block").WriteTo(f, 0))
	must(f.Close())
}

// watch records one open-loop measurement of t through s; the function
// it returns stops and writes the record.
func watch(t *target, s *sender) func() {
	if stalls == nil || t.sqlite == "" {
		return func() {}
	}
	st := stalls
	st.mu.Lock()
	st.db, st.slow, st.uses, st.hiccups, st.all = t.sqlite, nil, nil, nil, 0
	st.mu.Unlock()
	s.acked = func(due time.Time, lat time.Duration) {
		st.mu.Lock()
		st.all++
		if lat >= *slowAck {
			st.slow = append(st.slow, span{due, lat})
		}
		st.mu.Unlock()
	}
	gc0 := gcPauses()
	start := time.Now()
	probeDone := make(chan struct{})
	quit := make(chan struct{})
	go func() {
		defer close(probeDone)
		for {
			select {
			case <-quit:
				return
			default:
			}
			t0 := time.Now()
			time.Sleep(time.Millisecond)
			if d := time.Since(t0); d >= 4*time.Millisecond {
				st.mu.Lock()
				st.hiccups = append(st.hiccups, span{t0, d})
				st.mu.Unlock()
			}
		}
	}()
	st.on.Store(true)
	return func() {
		st.on.Store(false)
		close(quit)
		<-probeDone
		s.acked = nil
		st.mu.Lock()
		defer st.mu.Unlock()
		st.write(t.name, start, gcPauses().sub(gc0))
	}
}

// write prints the measurement's stalls and summary.
func (st *stallTrace) write(name string, start time.Time, gc pauseHist) {
	w := st.out
	rel := func(t time.Time) string { return fmt.Sprintf("%7.1fms", float64(t.Sub(start))/1e6) }
	fmt.Fprintf(w, "\n=== %s: %d replies, %d ≥ %s; load %s\n", name, st.all, len(st.slow), *slowAck, loadAverage())
	// A stall: slow replies whose waits [due, due+lat] overlap.
	slices.SortFunc(st.slow, func(a, b span) int { return a.at.Compare(b.at) })
	type stall struct {
		from, to time.Time
		n        int
		worst    time.Duration
	}
	var ss []stall
	for _, a := range st.slow {
		end := a.at.Add(a.lat)
		if k := len(ss) - 1; k >= 0 && !a.at.After(ss[k].to) {
			ss[k].n++
			ss[k].worst = max(ss[k].worst, a.lat)
			if end.After(ss[k].to) {
				ss[k].to = end
			}
			continue
		}
		ss = append(ss, stall{a.at, end, 1, a.lat})
	}
	overlaps := func(at time.Time, d time.Duration, from, to time.Time) bool {
		return at.Before(to) && at.Add(d).After(from.Add(-2*time.Millisecond))
	}
	for _, s := range ss {
		fmt.Fprintf(w, "stall %s–%s: %d replies, worst %s\n", rel(s.from), rel(s.to), s.n, ms(s.worst))
		for _, u := range st.uses {
			long := u.Took >= time.Millisecond || strings.HasPrefix(u.Conn, "checkpoint")
			if long && overlaps(u.Start, u.Took, s.from, s.to) {
				fmt.Fprintf(w, "   %s +%-8s %-22s %-9s %.90s\n", rel(u.Start), ms(u.Took), strings.Fields(u.Conn)[0], u.What, oneLine(u.Query))
			}
		}
		for _, h := range st.hiccups {
			if overlaps(h.at, h.lat, s.from, s.to) {
				fmt.Fprintf(w, "   %s +%-8s process hiccup (1 ms sleep took %s)\n", rel(h.at), ms(h.lat), ms(h.lat))
			}
		}
	}
	// Summary.
	var begins []time.Duration
	txs := map[string][]time.Duration{}
	cps := map[string][]time.Duration{}
	for _, u := range st.uses {
		switch {
		case strings.HasPrefix(u.Conn, "checkpoint"):
			k := strings.Fields(u.Conn)[0] + " " + u.What
			cps[k] = append(cps[k], u.Took)
		case u.What == "begin":
			begins = append(begins, u.Took)
		case u.What == "tx":
			k := oneLine(u.Query)
			if len(k) > 60 {
				k = k[:60]
			}
			txs[k] = append(txs[k], u.Took)
		}
	}
	fmt.Fprintf(w, "summary: BEGIN IMMEDIATE ≥1ms %d of %d (max %s)\n", count(begins, time.Millisecond), len(begins), ms(slices.Max(append(begins, 0))))
	for k, v := range cps {
		fmt.Fprintf(w, "summary: %s ×%d, ≥5ms %d, max %s\n", k, len(v), count(v, 5*time.Millisecond), ms(slices.Max(v)))
	}
	for k, v := range txs {
		if c := count(v, 5*time.Millisecond); c > 0 {
			fmt.Fprintf(w, "summary: tx %-60s ×%d, ≥5ms %d, max %s\n", k, len(v), c, ms(slices.Max(v)))
		}
	}
	st.writeTurns(w)
	var hs []time.Duration
	for _, h := range st.hiccups {
		hs = append(hs, h.lat)
	}
	fmt.Fprintf(w, "summary: process hiccups ≥4ms %d (≥10ms %d, max %s); GC pauses %d, ≥1ms %d, max ≤ %s\n",
		len(hs), count(hs, 10*time.Millisecond), ms(slices.Max(append(hs, 0))), gc.n, gc.over1ms, ms(gc.max))
	fmt.Fprintf(os.Stderr, "%s: %d stalls (%d slow replies); see %s\n", name, len(ss), len(st.slow), *stallsFile)
}

func count(v []time.Duration, over time.Duration) int {
	n := 0
	for _, d := range v {
		if d >= over {
			n++
		}
	}
	return n
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// pauseHist is Go's GC stop-the-world pauses (runtime/metrics).
type pauseHist struct {
	counts  []uint64
	buckets []float64
	n       uint64
	over1ms uint64
	max     time.Duration
}

func gcPauses() pauseHist {
	s := []metrics.Sample{{Name: "/sched/pauses/total/gc:seconds"}}
	metrics.Read(s)
	h := s[0].Value.Float64Histogram()
	return pauseHist{counts: slices.Clone(h.Counts), buckets: h.Buckets}
}

// sub is the pauses since old, summarised.
func (p pauseHist) sub(old pauseHist) pauseHist {
	out := pauseHist{}
	for i, c := range p.counts {
		d := c - old.counts[i]
		if d == 0 {
			continue
		}
		out.n += d
		if p.buckets[i] >= 0.001 {
			out.over1ms += d
		}
		if hi := p.buckets[i+1]; !math.IsInf(hi, 1) {
			out.max = time.Duration(hi * 1e9)
		} else {
			out.max = time.Duration(p.buckets[i] * 1e9)
		}
	}
	return out
}

// writeTurns prints the writer's turns of the measurement by whose they
// were (turnKind), per 1,000 replies: how many, and how long they held
// the writer. A count survives a loaded machine where a latency does not.
func (st *stallTrace) writeTurns(w io.Writer) {
	type turns struct {
		n    int
		held time.Duration
	}
	by := map[string]*turns{}
	for _, u := range st.uses {
		if !strings.HasPrefix(u.Conn, "writer") || (u.What != "tx" && u.What != "exec" && u.What != "query") {
			continue
		}
		k := turnKind(u.Query)
		if by[k] == nil {
			by[k] = &turns{}
		}
		by[k].n++
		by[k].held += u.Took
	}
	kinds := slices.Collect(maps.Keys(by))
	slices.SortFunc(kinds, func(a, b string) int { return cmp.Compare(by[b].held, by[a].held) })
	per := float64(max(st.all, 1)) / 1000
	var n int
	var held time.Duration
	for _, k := range kinds {
		n, held = n+by[k].n, held+by[k].held
	}
	fmt.Fprintf(w, "summary: writer turns per 1,000 replies: %.0f, holding it %s (per reply %s)\n", float64(n)/per, ms(time.Duration(float64(held)/per)), ms(held/time.Duration(max(st.all, 1))))
	for _, k := range kinds {
		fmt.Fprintf(w, "summary:   %-40s %6.0f turns, %9s held\n", k, float64(by[k].n)/per, ms(time.Duration(float64(by[k].held)/per)))
	}
}

// turnKind names a writer turn by its first statement: River's queries
// carry sqlc's "-- name: X" comment; glenv's are named by their first words.
func turnKind(q string) string {
	q = oneLine(q)
	if i := strings.Index(q, "-- name: "); i >= 0 {
		f := strings.Fields(q[i+len("-- name: "):])
		if len(f) > 0 {
			return "river " + f[0]
		}
	}
	if len(q) > 40 {
		q = q[:40]
	}
	return q
}
