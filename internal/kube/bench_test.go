package kube_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/glenv/glenv/internal/gitlabtest"
	"github.com/glenv/glenv/internal/store"
)

// BenchmarkSteadyPush measures a push to an environment that already runs:
// the Kubernetes API calls it costs (goal ≤ 5) and the time until the
// Deployment rolled out (kwok's fake node, so no image pull or app start).
//
//	GLENV_KUBE_BIN=$(scripts/kube-binaries) go test -run '^$' -bench SteadyPush -benchtime 5x ./internal/kube/
func BenchmarkSteadyPush(b *testing.B) {
	w := newKubeWorldTB(b)
	env := store.Environment{ID: 1, Name: "main", Slug: "main", Kind: "branch", IntegrationName: "app", Host: "main--app"}
	sha := w.gl.Commit(b, w.project.ID, gitlabtest.Commit{Branch: "main", Files: map[string]string{".glenv.yml": glenvYML, "requirements.txt": ""}})
	if err := w.rt.Deploy(b.Context(), w.request(env, sha)); err != nil {
		b.Fatal(err)
	}
	w.calls.Take()
	shas := make([]string, b.N)
	for i := range shas {
		shas[i] = w.gl.Commit(b, w.project.ID, gitlabtest.Commit{Branch: "main", Files: map[string]string{"n": strconv.Itoa(i)}})
	}
	var calls int
	var rollout time.Duration
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		if err := w.rt.Deploy(b.Context(), w.request(env, shas[i])); err != nil {
			b.Fatal(err)
		}
		rollout += time.Since(start)
		calls += len(w.calls.Take())
	}
	b.ReportMetric(float64(calls)/float64(b.N), "k8s-calls/push")
	b.ReportMetric(rollout.Seconds()/float64(b.N), "s-to-rolled-out/push")
}
