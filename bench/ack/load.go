package main

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// sample is one measurement of one target.
type sample struct {
	n        int // requests sent
	rps      float64
	p50, p99 time.Duration
	errors   int64
	firstErr string
	// cpu is the whole process's CPU per request (load generator, target
	// and, for glenv with processing on, the processing of what it
	// received, until the backlog is gone), measured alike for every target.
	cpu time.Duration
	// loadCPU is the process's CPU per request while the load ran, the
	// settle left out: on a saturated machine what an acknowledgement
	// costs (with the processing that ran meanwhile), steadier from run
	// to run than req/s.
	loadCPU time.Duration
	// pgCPU is the PostgreSQL backends' CPU per request (PostgreSQL
	// targets); pgLoadCPU the same while the load ran, the settle left out.
	pgCPU, pgLoadCPU time.Duration
	// backlog is what processing did (glenv with processing on only).
	backlog *backlog
}

// sender posts one delivery; i makes its ref and Idempotency-Key unique.
type sender struct {
	client *http.Client
	url    string
	secret string
	body   []byte
	// firstErr is the first failure, printed with the error count.
	firstErr atomic.Value
	// acked, when set, hears of every open-loop reply (stalls.go).
	acked func(due time.Time, lat time.Duration)
}

// seq makes every delivery of the run unique: none is a duplicate.
var seq atomic.Int64

func (s *sender) send(i int) bool {
	n := seq.Add(1)
	b := bytes.Replace(s.body, []byte("refs/heads/ms-viewport"), fmt.Appendf(nil, "refs/heads/b-%d", n), 1)
	req, _ := http.NewRequest(http.MethodPost, s.url, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Gitlab-Event", "Push Hook")
	req.Header.Set("X-Gitlab-Token", s.secret)
	req.Header.Set("Idempotency-Key", fmt.Sprintf("bench-%d-%d", n, i))
	resp, err := s.client.Do(req)
	if err != nil {
		s.firstErr.CompareAndSwap(nil, err.Error())
		return false
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		s.firstErr.CompareAndSwap(nil, fmt.Sprintf("%d %s", resp.StatusCode, msg))
		return false
	}
	return true
}

// closedLoop: c senders each wait for the reply before sending again.
func closedLoop(s *sender, n, c int) sample {
	var next, errs atomic.Int64
	lat := make([]time.Duration, n)
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < c; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				t0 := time.Now()
				ok := s.send(i)
				lat[i] = time.Since(t0)
				if !ok {
					errs.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return s.summarise(lat, time.Since(start), errs.Load())
}

// openLoop sends at a fixed mean rate for d, whatever the replies do:
// arrivals are a Poisson process (exponential gaps), so requests are spread
// out rather than sent in lockstep, and each latency counts from the
// request's scheduled time, so a stalled target cannot hide its queue.
func openLoop(s *sender, rate float64, d time.Duration, seed uint64) sample {
	rng := rand.New(rand.NewPCG(seed, 15))
	var at []time.Duration
	for t := time.Duration(0); t < d; {
		t += time.Duration(rng.ExpFloat64() / rate * float64(time.Second))
		at = append(at, t)
	}
	lat := make([]time.Duration, len(at))
	var errs atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for i, off := range at {
		due := start.Add(off)
		if w := time.Until(due); w > 0 {
			time.Sleep(w)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok := s.send(i)
			lat[i] = time.Since(due)
			if s.acked != nil {
				s.acked(due, lat[i])
			}
			if !ok {
				errs.Add(1)
			}
		}()
	}
	wg.Wait()
	return s.summarise(lat, time.Since(start), errs.Load())
}

func (s *sender) summarise(lat []time.Duration, elapsed time.Duration, errs int64) sample {
	n := len(lat)
	slices.Sort(lat)
	first, _ := s.firstErr.Load().(string)
	return sample{firstErr: first, n: n, rps: float64(n) / elapsed.Seconds(), p50: lat[n/2], p99: lat[n*99/100], errors: errs}
}

// cpuTime is the CPU this process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
