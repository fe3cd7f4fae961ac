package kube_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/glenv/glenv/internal/gitlabtest"
	"github.com/glenv/glenv/internal/store"
)

// BenchmarkBurstOfEnvironments creates GLENV_KUBE_BURST environments (100
// unless set) at once, as one burst of MR events does, with
// GLENV_KUBE_BURST_WORKERS deploys running at a time (8 unless set: glenv's
// default --workers), and reports when each was Available, counted from
// the burst (every event arrives at once, so the last event is the first
// instant). Goal: p99 ≤ 60 s for 1,000 (issue 16), on kwok's fake node.
//
//	GLENV_KUBE_BIN=$(scripts/kube-binaries --cached) GLENV_KUBE_BURST=300 \
//	  go test -run '^$' -bench BurstOfEnvironments -benchtime 1x ./internal/kube/
func BenchmarkBurstOfEnvironments(b *testing.B) {
	n := envInt(b, "GLENV_KUBE_BURST", 100)
	workers := envInt(b, "GLENV_KUBE_BURST_WORKERS", 8)
	w := newKubeWorldTB(b)
	var logMu sync.Mutex
	var applied []time.Duration // from the burst to each environment's objects applied
	var burstStart time.Time
	w.logf = func(format string, args ...any) {
		if strings.Contains(fmt.Sprintf(format, args...), " applied ") {
			logMu.Lock()
			applied = append(applied, time.Since(burstStart))
			logMu.Unlock()
		}
	}
	sha := w.gl.Commit(b, w.project.ID, gitlabtest.Commit{Branch: "main", Files: map[string]string{".glenv.yml": glenvYML, "requirements.txt": ""}})
	ctx, cancel := context.WithTimeout(b.Context(), 30*time.Minute)
	defer cancel()
	var all []time.Duration
	var calls int
	b.ResetTimer()
	for iter := range b.N {
		w.calls.Take()
		done := make([]time.Duration, n)
		errs := make(chan error, n)
		sem := make(chan struct{}, workers)
		var wg sync.WaitGroup
		start := time.Now()
		burstStart = start
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				id := int64(iter*n + i + 1000)
				name := fmt.Sprintf("mr-%d", id)
				env := store.Environment{ID: id, Name: name, Slug: name, Kind: "mr", MRIID: id, IntegrationName: "app", Host: name + "--app"}
				if err := w.rt.Deploy(ctx, w.request(env, sha)); err != nil {
					errs <- fmt.Errorf("%s: %w", name, err)
					return
				}
				done[i] = time.Since(start)
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
		all = append(all, done...)
		calls += len(w.calls.Take())
	}
	b.StopTimer()
	if d := os.Getenv("GLENV_KUBE_BURST_KEEP_LOGS"); d != "" {
		_ = os.CopyFS(d, os.DirFS(w.cluster.Dir()))
	}
	slices.Sort(all)
	q := func(p float64) float64 { return all[int(p*float64(len(all)-1))].Seconds() }
	b.ReportMetric(q(0.5), "s-p50-available")
	b.ReportMetric(q(0.99), "s-p99-available")
	b.ReportMetric(all[len(all)-1].Seconds(), "s-last-available")
	b.ReportMetric(float64(calls)/float64(len(all)), "k8s-calls/env")
	slices.Sort(applied)
	if len(applied) > 0 {
		b.ReportMetric(applied[len(applied)-1].Seconds(), "s-last-applied")
	}
}

func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: must be a positive whole number", name, v)
	}
	return n
}
