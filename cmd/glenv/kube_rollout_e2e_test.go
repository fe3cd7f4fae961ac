package main_test

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/glenv/glenv/internal/gitlabtest"
	"github.com/glenv/glenv/internal/kube"
	"github.com/glenv/glenv/internal/kube/kubetest"
)

// heldYML's pods never become ready on kwok (kubetest.ImageHeld) until a
// test changes their image.
const heldYML = "image: " + kubetest.ImageHeld + "\nrun: python3 -m http.server $PORT\nhealth: /\n"

// A deploy on Kubernetes applies and returns; its deadline is a job of its
// own (the deploy's timeout, --job-rescue-after): a rollout that never
// becomes Available fails then, with a message saying so.
func TestKubernetesRolloutThatNeverBecomesAvailableFailsAfterItsDeadline(t *testing.T) {
	k := &kubeRuntime{}
	gl := newGitLab(t)
	sha := gl.Commit(t, gl.Project.ID, gitlabtest.Commit{Branch: "main", Files: map[string]string{".glenv.yml": heldYML}})
	g := startGlenv(t, "", append(k.env(t), "GLENV_JOB_RESCUE_AFTER=15s")...)
	var res integrationJSON
	g.mustJSON(&res, addArgs(gl)...)
	e := g.waitEnvLong("app", "main", func(e envJSON, ok bool) bool { return ok && e.State == "failed" })
	a, ok := g.deployActivity(e.ID, sha)
	if !ok || a.State != "failed" || !strings.Contains(a.Result, "did not become Available within its deadline (14s") {
		t.Fatalf("deploy activity %+v (found %v), want failed for its deadline\n%s", a, ok, g.tail())
	}
	if log := g.activityLog(a.ID); !strings.Contains(log, "the Deployment rolls out") || !strings.Contains(log, "rollout failed: the deploy did not become Available") {
		t.Errorf("the deploy's log does not show the hand-over and the deadline:\n%s", log)
	}
}

// glenv stopped while the cluster rolls an environment out (its deploy job
// done, the rollout not): the restarted glenv finds it rolled out and makes
// it active, without deploying it again.
func TestKubernetesRestartMidRolloutStillReachesActive(t *testing.T) {
	k := &kubeRuntime{}
	gl := newGitLab(t)
	sha := gl.Commit(t, gl.Project.ID, gitlabtest.Commit{Branch: "main", Files: map[string]string{".glenv.yml": heldYML}})
	g := startGlenv(t, "", k.env(t)...)
	var res integrationJSON
	g.mustJSON(&res, addArgs(gl)...)
	e := g.waitEnvLong("app", "main", func(e envJSON, ok bool) bool { return ok && e.State == "deploying" })
	a := waitLog(g, e.ID, sha, "the Deployment rolls out")
	g.stop(syscall.SIGTERM)

	// Released while glenv is down: the pod gets an image kwok makes ready.
	ns := kube.Namespace("main--app")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	pod := untilWatched(ctx, t, cache.NewListWatchFromClient(k.c.CoreV1().RESTClient(), "pods", ns, fields.Everything()), &corev1.Pod{},
		func(o any) bool { p, _ := o.(*corev1.Pod); return p != nil && p.DeletionTimestamp == nil })
	patch := `[{"op":"replace","path":"/spec/containers/0/image","value":"python:3.13-slim"}]`
	if _, err := k.c.CoreV1().Pods(ns).Patch(ctx, pod.(*corev1.Pod).Name, types.JSONPatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatalf("release the held pod: %v", err)
	}
	untilWatched(ctx, t, cache.NewListWatchFromClient(k.c.AppsV1().RESTClient(), "deployments", ns, fields.Everything()), &appsv1.Deployment{},
		func(o any) bool { d, _ := o.(*appsv1.Deployment); done, _ := kube.Rollout(d); return d != nil && done })

	g.start()
	waitServing(g, "main", sha)
	var acts []activityJSON
	g.apiGet(fmt.Sprintf("/api/v1/activities?kind=deploy&environment_id=%d", e.ID), &acts)
	if len(acts) != 1 || acts[0].ID != a.ID || acts[0].State != "complete" {
		t.Errorf("deploy activities after the restart %+v, want only the first, complete (no second deploy)", acts)
	}
	if log := g.activityLog(a.ID); !strings.Contains(log, "serving "+sha[:8]+": the rollout finished") {
		t.Errorf("the deploy's log does not say the rollout finished:\n%s", log)
	}
}

// waitLog waits until the deploy of sha on environment envID has a log line
// holding want, and returns its activity.
func waitLog(g *glenv, envID int64, sha, want string) activityJSON {
	g.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if a, ok := g.deployActivity(envID, sha); ok && strings.Contains(g.activityLog(a.ID), want) {
			return a
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("no deploy log line %q within 60s\n%s", want, g.tail())
		}
		time.Sleep(100 * time.Millisecond) // glenv's API has no event to wait on
	}
}

// untilWatched lists and watches objects until one meets cond, and returns it.
func untilWatched(ctx context.Context, t *testing.T, lw cache.ListerWatcher, obj runtime.Object, cond func(any) bool) any {
	t.Helper()
	var got any
	_, err := watchtools.UntilWithSync(ctx, lw, obj, nil, func(ev watch.Event) (bool, error) {
		if ev.Type != watch.Deleted && cond(ev.Object) {
			got = ev.Object
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("wait for %T: %v", obj, err)
	}
	return got
}
