package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/glenv/glenv/internal/store"
)

// LogLimit caps one read of an app's log that does not follow it, so a
// chatty app cannot make glenv hold its whole output in memory.
const LogLimit = 4 << 20

// ErrNoPod is an environment with no pod to read output from yet.
var ErrNoPod = errors.New("no pod of this environment exists yet; its deploy log says why (glenv activity:list --environment <name>)")

// LogOptions asks for the app container's output: followed (the stream
// stays open while the pod runs, as `kubectl logs -f`), or what it wrote
// so far, at most LogLimit bytes.
func LogOptions(follow bool) *corev1.PodLogOptions {
	o := &corev1.PodLogOptions{Container: AppName, Follow: follow}
	if !follow {
		limit := int64(LogLimit)
		o.LimitBytes = &limit
	}
	return o
}

// LogPod picks the pod whose output environment:logs shows: the newest
// ready one (during a rollout, the one serving), else the newest.
func LogPod(pods []corev1.Pod) (string, error) {
	live := make([]corev1.Pod, 0, len(pods))
	for _, p := range pods {
		if p.DeletionTimestamp == nil {
			live = append(live, p)
		}
	}
	if len(live) == 0 {
		return "", ErrNoPod
	}
	sort.SliceStable(live, func(i, j int) bool {
		ri, rj := ready(live[i]), ready(live[j])
		if ri != rj {
			return ri
		}
		return live[j].CreationTimestamp.Before(&live[i].CreationTimestamp)
	})
	return live[0].Name, nil
}

func ready(p corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// Logs streams the app's output from the environment's pod (client-go's
// GetLogs): two calls, the pods of the environment, then the log.
func (r *Runtime) Logs(ctx context.Context, env store.Environment, follow bool) (io.ReadCloser, error) {
	ns := Namespace(env.Host)
	sel := labels.SelectorFromSet(Spec{Slug: env.Slug}.selector()).String()
	pods, err := r.c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, fmt.Errorf("list the pods of %s: %w", env.Name, explain(err))
	}
	name, err := LogPod(pods.Items)
	if err != nil {
		return nil, err
	}
	rc, err := r.c.CoreV1().Pods(ns).GetLogs(name, LogOptions(follow)).Stream(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the log of pod %s/%s: %w", ns, name, explain(err))
	}
	return rc, nil
}
