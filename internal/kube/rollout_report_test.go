package kube_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/glenv/glenv/internal/gitlabtest"
	"github.com/glenv/glenv/internal/kube"
	"github.com/glenv/glenv/internal/kube/kubetest"
	"github.com/glenv/glenv/internal/runtime"
	"github.com/glenv/glenv/internal/store"
)

// With its rollouts watched, a deploy returns once applied (no worker waits
// for the cluster), the shared watch reports the rollout's end once, and a
// runtime started later (a restarted glenv) hears of it from its first list.
func TestWithRolloutsWatchedADeployReturnsOnceAppliedAndTheWatchReportsItsEnd(t *testing.T) {
	w := newKubeWorld(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	ends := make(chan runtime.RolloutEnd, 16)
	report := func(_ context.Context, e runtime.RolloutEnd) error { ends <- e; return nil }
	w.rt.WatchRollouts(report)
	t.Cleanup(w.rt.Close)
	sha := w.gl.Commit(t, w.project.ID, gitlabtest.Commit{Branch: "async", Files: map[string]string{".glenv.yml": glenvYML, "requirements.txt": ""}})
	env := store.Environment{ID: 31, Name: "mr-31", Slug: "mr-31", Kind: "mr", MRIID: 31, IntegrationName: "app", Host: "mr-31--app"}
	req := w.request(env, sha)
	req.ActivityID = 310
	if err := w.rt.Deploy(ctx, req); !errors.Is(err, runtime.ErrRollingOut) {
		t.Fatalf("deploy: %v, want runtime.ErrRollingOut", err)
	}
	want := runtime.RolloutEnd{EnvironmentID: 31, ActivityID: 310, SHA: sha}
	if got := nextEnd(t, ends, "mr-31"); got != want {
		t.Fatalf("reported %+v, want %+v", got, want)
	}
	if done, failure, err := w.rt.RolloutState(ctx, env); !done || failure != "" || err != nil {
		t.Errorf("RolloutState after the end: %v %q %v, want done", done, failure, err)
	}

	restarted, err := kube.New(w.opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(restarted.Close)
	again := make(chan runtime.RolloutEnd, 64)
	restarted.WatchRollouts(func(_ context.Context, e runtime.RolloutEnd) error { again <- e; return nil })
	for {
		// Other tests' Deployments are reported too: look for this one.
		if got := nextEnd(t, again, "mr-31 after a restart"); got.ActivityID == 310 {
			if got != want {
				t.Fatalf("after a restart reported %+v, want %+v", got, want)
			}
			break
		}
	}
}

// A rollout held on the cluster is neither done nor failed: the deploy's
// deadline (internal/jobs) is what ends it.
func TestAHeldRolloutIsNeitherDoneNorFailed(t *testing.T) {
	w := newKubeWorld(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	w.rt.WatchRollouts(func(context.Context, runtime.RolloutEnd) error { return nil })
	t.Cleanup(w.rt.Close)
	yml := "image: " + kubetest.ImageHeld + "\nrun: sleep 1\nhealth: /\n"
	sha := w.gl.Commit(t, w.project.ID, gitlabtest.Commit{Branch: "held", Files: map[string]string{".glenv.yml": yml}})
	env := store.Environment{ID: 32, Name: "mr-32", Slug: "mr-32", Kind: "mr", MRIID: 32, IntegrationName: "app", Host: "mr-32--app"}
	req := w.request(env, sha)
	req.ActivityID = 320
	if err := w.rt.Deploy(ctx, req); !errors.Is(err, runtime.ErrRollingOut) {
		t.Fatalf("deploy: %v, want runtime.ErrRollingOut", err)
	}
	if done, failure, err := w.rt.RolloutState(ctx, env); done || failure != "" || err != nil {
		t.Errorf("RolloutState of a held rollout: %v %q %v, want neither done nor failed", done, failure, err)
	}
	gone := store.Environment{ID: 33, Host: "never-deployed--app"}
	if done, failure, err := w.rt.RolloutState(ctx, gone); done || failure == "" || err != nil {
		t.Errorf("RolloutState without a Deployment: %v %q %v, want a failure saying it is gone", done, failure, err)
	}
}

func nextEnd(t *testing.T, ends <-chan runtime.RolloutEnd, what string) runtime.RolloutEnd {
	t.Helper()
	select {
	case e := <-ends:
		return e
	case <-time.After(2 * time.Minute):
		t.Fatalf("no rollout end reported for %s within 2m", what)
	}
	return runtime.RolloutEnd{}
}
