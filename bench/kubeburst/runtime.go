package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/glenv/glenv/internal/config"
	"github.com/glenv/glenv/internal/kube"
	"github.com/glenv/glenv/internal/kube/kubetest"
	"github.com/glenv/glenv/internal/store"
)

// runtimeAlone deploys n merge request environments by calling the
// runtime directly, workers at a time, with glenv's default client limits:
// every event "arrives" at once, so the first and last event are one
// instant.
func runtimeAlone(ctx context.Context, w *world, calls *counter, n, workers int, traceAll bool) burst {
	cfg := rest.CopyConfig(w.cluster.Config)
	cfg.QPS, cfg.Burst = config.DefaultKubernetesQPS, config.DefaultKubernetesBurst
	cfg.WrapTransport = calls.wrap
	client, err := kubernetes.NewForConfig(cfg)
	tb.Must(err)
	rt, err := kube.New(kube.Options{Client: client, Source: &kube.Source{Dir: tb.TempDir()}, EnvDomain: "preview.test",
		IngressClass: "nginx", FetchImage: "busybox:1.37", TreeURL: func(integration, sha string) string {
			return "http://glenv.test" + kube.TreePath + integration + "/" + sha + "?sig=bench"
		}})
	tb.Must(err)
	defer rt.Close()
	trace, err := kubetest.StartTrace(ctx, w.cluster.Client, "glenv-mr-", traceAll)
	tb.Must(err)
	defer trace.Stop()
	b := burst{trace: trace, glenv: map[string]map[string]time.Time{}}
	var mu sync.Mutex
	sem := make(chan struct{}, workers)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	calls.take()
	b.first = time.Now()
	b.last = b.first
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			iid := int64(i + 1)
			name := fmt.Sprintf("mr-%d", iid)
			env := store.Environment{ID: iid + 1, Name: name, Slug: name, Kind: "mr", MRIID: iid, IntegrationName: "app", Host: name + "--app"}
			if err := rt.Deploy(ctx, w.gl.Request(env, w.sha)); err != nil {
				errs <- fmt.Errorf("%s: %w", name, err)
				return
			}
			mu.Lock()
			b.glenv[kube.Namespace(env.Host)] = map[string]time.Time{"noticed": time.Now()}
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		tb.Must(err)
	}
	b.calls = calls.take()
	return b
}
