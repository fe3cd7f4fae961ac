package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// clockTick is the unit of /proc/<pid>/stat's utime and stime: USER_HZ,
// which Linux fixes at 100 for user space whatever the kernel's HZ.
const clockTick = 100

// procCPU is the CPU time (user + system) process pid has used, or false
// once it is gone.
func procCPU(pid int) (time.Duration, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// The command name (field 2) may hold spaces and parentheses: fields
	// are counted from the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, false
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64) // field 14
	st, _ := strconv.ParseInt(f[12], 10, 64) // field 15
	return time.Duration(ut+st) * time.Second / clockTick, true
}

// machineCPU is the busy and total CPU time of the whole machine so far
// (/proc/stat), every process of every user included.
func machineCPU() (busy, total time.Duration) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)[1:]
	for i, s := range f {
		v, _ := strconv.ParseInt(s, 10, 64)
		total += time.Duration(v) * time.Second / clockTick
		if i != 3 && i != 4 { // idle, iowait
			busy += time.Duration(v) * time.Second / clockTick
		}
	}
	return busy, total
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// usage is where the CPU went while one measurement ran.
type usage struct {
	replicas, postgres, senders time.Duration
	machineBusy, machineTotal   time.Duration
	waits                       map[string]int // PostgreSQL wait events of the round's backends, sampled
	locks                       map[string]int // heavyweight locks they waited for, sampled
	samples                     int
}

// meter watches one measurement: the replicas' processes, the round's
// PostgreSQL backends (found in pg_stat_activity every sample, so a backend
// that comes and goes between two samples is missed) and the machine.
type meter struct {
	adm    *sql.DB
	dbName string
	procs  []int

	mu       sync.Mutex
	backends map[int][2]time.Duration // pid → CPU at first sight, last sight
	waits    map[string]int
	locks    map[string]int
	samples  int

	start  map[int]time.Duration
	busy0  time.Duration
	total0 time.Duration
	self0  time.Duration
	stop   chan struct{}
	done   chan struct{}
}

func startMeter(adm *sql.DB, dbName string, procs []int) *meter {
	m := &meter{adm: adm, dbName: dbName, procs: procs, backends: map[int][2]time.Duration{}, waits: map[string]int{}, locks: map[string]int{},
		start: map[int]time.Duration{}, stop: make(chan struct{}), done: make(chan struct{})}
	for _, p := range procs {
		m.start[p], _ = procCPU(p)
	}
	m.sample(true)
	m.busy0, m.total0 = machineCPU()
	m.self0 = selfCPU()
	go func() {
		defer close(m.done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-m.stop:
				return
			case <-t.C:
				m.sample(false)
			}
		}
	}()
	return m
}

// sample records the round's backends' CPU and what they wait on. A
// backend first seen after the start began at zero CPU.
func (m *meter) sample(first bool) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	rows, err := m.adm.QueryContext(ctx, `SELECT pid, COALESCE(wait_event_type, ''), COALESCE(wait_event, ''), COALESCE(state, '')
		FROM pg_stat_activity WHERE datname = $1 AND application_name <> $2`, m.dbName, benchApp)
	if err != nil {
		return
	}
	defer rows.Close()
	m.mu.Lock()
	defer m.mu.Unlock()
	if !first {
		m.samples++
	}
	for rows.Next() {
		var pid int
		var wt, we, st string
		if rows.Scan(&pid, &wt, &we, &st) != nil {
			continue
		}
		c, ok := procCPU(pid)
		if !ok {
			continue
		}
		v, seen := m.backends[pid]
		if !seen {
			if !first {
				v[0] = 0
			} else {
				v[0] = c
			}
		}
		v[1] = c
		m.backends[pid] = v
		if first || st != "active" {
			continue
		}
		key := "on CPU"
		if wt != "" {
			key = wt + ":" + we
		}
		m.waits[key]++
	}
	if !first {
		m.sampleLocks(ctx)
	}
}

// sampleLocks counts the locks the round's backends wait for, by kind: an
// "object" lock on pg_database is the one NOTIFY takes at commit, which
// serialises every committing transaction that notified in the database.
func (m *meter) sampleLocks(ctx context.Context) {
	rows, err := m.adm.QueryContext(ctx, `SELECT l.locktype || COALESCE(' ' || l.classid::regclass::text, '') || COALESCE(' ' || l.relation::regclass::text, '') || ' ' || l.mode
		FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE NOT l.granted AND a.datname = $1`, m.dbName)
	if err != nil {
		return
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		if rows.Scan(&k) == nil {
			m.locks[k]++
		}
	}
}

// snapshot is the usage since the start; the meter goes on.
func (m *meter) snapshot() usage {
	m.sample(false)
	self := selfCPU() - m.self0
	busy, total := machineCPU()
	u := usage{senders: self, machineBusy: busy - m.busy0, machineTotal: total - m.total0}
	for _, p := range m.procs {
		c, _ := procCPU(p)
		u.replicas += c - m.start[p]
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, v := range m.backends {
		u.postgres += v[1] - v[0]
	}
	u.waits = map[string]int{}
	for k, v := range m.waits {
		u.waits[k] = v
	}
	u.locks = map[string]int{}
	for k, v := range m.locks {
		u.locks[k] = v
	}
	u.samples = m.samples
	return u
}

func (m *meter) close() {
	close(m.stop)
	<-m.done
}

// backendPIDs are the round's PostgreSQL backends seen so far.
func (m *meter) backendPIDs() []int {
	m.mu.Lock()
	defer m.mu.Unlock()
	var pids []int
	for p := range m.backends {
		pids = append(pids, p)
	}
	return pids
}

// topWaits renders the most frequent wait events, as active backends per sample.
func topWaits(w map[string]int, samples, k int) string {
	type kv struct {
		k string
		v int
	}
	var s []kv
	for key, v := range w {
		s = append(s, kv{key, v})
	}
	sort.Slice(s, func(i, j int) bool { return s[i].v > s[j].v })
	var out []string
	for i := 0; i < len(s) && i < k; i++ {
		out = append(out, fmt.Sprintf("%s %.1f", s[i].k, float64(s[i].v)/float64(max(samples, 1))))
	}
	return strings.Join(out, ", ")
}
