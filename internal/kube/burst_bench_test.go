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

	"github.com/glenv/glenv/internal/config"
	"github.com/glenv/glenv/internal/gitlabtest"
	"github.com/glenv/glenv/internal/kube"
	"github.com/glenv/glenv/internal/kube/kubetest"
	"github.com/glenv/glenv/internal/store"
)

// BenchmarkBurstOfEnvironments creates GLENV_KUBE_BURST environments (100
// unless set) at once through the runtime alone, as one burst of MR events
// does, with GLENV_KUBE_BURST_WORKERS deploys running at a time (glenv's
// default --workers on Kubernetes unless set), and reports when each was Available,
// counted from the burst (every event arrives at once, so the last event is
// the first instant). It logs where an environment's time goes, milestone
// by milestone, as the cluster shows it. bench/kubeburst measures the same
// through glenv's whole path (webhooks, deliveries, deploy jobs).
//
//	GLENV_KUBE_BIN=$(scripts/kube-binaries --cached) GLENV_KUBE_BURST=300 \
//	  go test -run '^$' -bench BurstOfEnvironments -benchtime 1x -v ./internal/kube/
func BenchmarkBurstOfEnvironments(b *testing.B) {
	n := envInt(b, "GLENV_KUBE_BURST", 100)
	workers := envInt(b, "GLENV_KUBE_BURST_WORKERS", config.DefaultKubernetesWorkers)
	w := newKubeWorldTB(b)
	sha := w.gl.Commit(b, w.project.ID, gitlabtest.Commit{Branch: "main", Files: map[string]string{".glenv.yml": glenvYML, "requirements.txt": ""}})
	ctx, cancel := context.WithTimeout(b.Context(), 30*time.Minute)
	defer cancel()
	var all []time.Duration
	var calls int
	b.ResetTimer()
	for iter := range b.N {
		w.calls.Take()
		prefix := fmt.Sprintf("glenv-burst%d-", iter)
		trace, err := kubetest.StartTrace(ctx, w.cluster.Client, prefix, true)
		if err != nil {
			b.Fatal(err)
		}
		var mu sync.Mutex
		glenvSeen := map[string]map[string]time.Time{} // namespace → applied, noticed
		mark := func(ns, m string) {
			mu.Lock()
			defer mu.Unlock()
			if glenvSeen[ns] == nil {
				glenvSeen[ns] = map[string]time.Time{}
			}
			glenvSeen[ns][m] = time.Now()
		}
		done := make([]time.Duration, n)
		errs := make(chan error, n)
		sem := make(chan struct{}, workers)
		var wg sync.WaitGroup
		start := time.Now()
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				id := int64(iter*n + i + 1000)
				name := fmt.Sprintf("mr-%d", id)
				env := store.Environment{ID: id, Name: name, Slug: name, Kind: "mr", MRIID: id, IntegrationName: "app",
					Host: fmt.Sprintf("burst%d-%s--app", iter, name)}
				ns := kube.Namespace(env.Host)
				req := w.request(env, sha)
				req.Log = func(s string) {
					if strings.Contains(s, " applied ") {
						mark(ns, "applied")
					}
				}
				if err := w.rt.Deploy(ctx, req); err != nil {
					errs <- fmt.Errorf("%s: %w", name, err)
					return
				}
				mark(ns, "noticed")
				done[i] = time.Since(start)
			}()
		}
		wg.Wait()
		trace.Stop()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
		all = append(all, done...)
		calls += len(w.calls.Take())
		seen := trace.Seen()
		for ns, m := range glenvSeen {
			if seen[ns] == nil {
				seen[ns] = map[string]time.Time{}
			}
			for k, v := range m {
				seen[ns][k] = v
			}
		}
		order := slices.Insert(slices.Clone(kubetest.Milestones), 2, "applied")
		b.Logf("burst %d: %d environments, %d deploys at a time; where the time goes:\n%s", iter, n, workers,
			kubetest.Breakdown(start, seen, append(order, "noticed")))
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
