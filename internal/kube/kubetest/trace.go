package kubetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
)

// Milestones of one environment's first rollout as the cluster shows them,
// in order. Trace records when each was first seen per namespace.
const (
	MilestoneNamespace  = "namespace"  // the namespace exists
	MilestoneDeployment = "deployment" // glenv's Deployment exists
	MilestoneReplicaSet = "replicaset" // the deployment controller made its ReplicaSet
	MilestonePod        = "pod"        // the replicaset controller made its pod
	MilestoneScheduled  = "scheduled"  // the scheduler bound it to kwok's node
	MilestoneReady      = "ready"      // kwok marked it Ready
	MilestoneAvailable  = "available"  // the deployment controller marked the Deployment Available
)

// Milestones is the order they happen in.
var Milestones = []string{MilestoneNamespace, MilestoneDeployment, MilestoneReplicaSet, MilestonePod,
	MilestoneScheduled, MilestoneReady, MilestoneAvailable}

// Trace watches every namespace with the given prefix and records when each
// milestone was first seen there: where the time of an environment's first
// rollout goes in a burst. Its watches are its own (not glenv's calls).
type Trace struct {
	prefix string
	mu     sync.Mutex
	seen   map[string]map[string]time.Time // namespace → milestone → first seen
	stop   context.CancelFunc
	done   sync.WaitGroup
}

// StartTrace opens one cluster-wide watch per kind (namespaces, Deployments,
// ReplicaSets, pods), or with all false only the Deployments' (for when
// each is Available: every watch costs the API server); Stop closes them.
func StartTrace(ctx context.Context, c kubernetes.Interface, prefix string, all bool) (*Trace, error) {
	ctx, cancel := context.WithCancel(ctx)
	t := &Trace{prefix: prefix, seen: map[string]map[string]time.Time{}, stop: cancel}
	type source struct {
		list  func(context.Context, metav1.ListOptions) (string, error)
		watch func(context.Context, metav1.ListOptions) (watch.Interface, error)
	}
	sources := []source{
		{func(ctx context.Context, o metav1.ListOptions) (string, error) {
			l, err := c.CoreV1().Namespaces().List(ctx, o)
			return rv(l, err)
		}, func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return c.CoreV1().Namespaces().Watch(ctx, o)
		}},
		{func(ctx context.Context, o metav1.ListOptions) (string, error) {
			l, err := c.AppsV1().Deployments("").List(ctx, o)
			return rv(l, err)
		}, func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return c.AppsV1().Deployments("").Watch(ctx, o)
		}},
		{func(ctx context.Context, o metav1.ListOptions) (string, error) {
			l, err := c.AppsV1().ReplicaSets("").List(ctx, o)
			return rv(l, err)
		}, func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return c.AppsV1().ReplicaSets("").Watch(ctx, o)
		}},
		{func(ctx context.Context, o metav1.ListOptions) (string, error) {
			l, err := c.CoreV1().Pods("").List(ctx, o)
			return rv(l, err)
		}, func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return c.CoreV1().Pods("").Watch(ctx, o)
		}},
	}
	if !all {
		sources = sources[1:2]
	}
	for _, s := range sources {
		// Only what happens from now on: list for the current version,
		// then watch from it (retried across the API server's closes).
		from, err := s.list(ctx, metav1.ListOptions{Limit: 1})
		if err != nil {
			cancel()
			return nil, err
		}
		w, err := watchtools.NewRetryWatcherWithContext(ctx, from, &cache.ListWatch{WatchFuncWithContext: s.watch})
		if err != nil {
			cancel()
			return nil, err
		}
		t.done.Add(1)
		go func() {
			defer t.done.Done()
			defer w.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case ev, ok := <-w.ResultChan():
					if !ok {
						return
					}
					if ev.Type == watch.Added || ev.Type == watch.Modified {
						t.observe(ev.Object, time.Now())
					}
				}
			}
		}()
	}
	return t, nil
}

func rv(l interface{ GetResourceVersion() string }, err error) (string, error) {
	if err != nil {
		return "", err
	}
	return l.GetResourceVersion(), nil
}

func (t *Trace) observe(o runtime.Object, at time.Time) {
	switch o := o.(type) {
	case *corev1.Namespace:
		t.mark(o.Name, MilestoneNamespace, at)
	case *appsv1.Deployment:
		t.mark(o.Namespace, MilestoneDeployment, at)
		for _, c := range o.Status.Conditions {
			if c.Type == appsv1.DeploymentAvailable && c.Status == corev1.ConditionTrue && o.Status.AvailableReplicas > 0 {
				t.mark(o.Namespace, MilestoneAvailable, at)
			}
		}
	case *appsv1.ReplicaSet:
		t.mark(o.Namespace, MilestoneReplicaSet, at)
	case *corev1.Pod:
		t.mark(o.Namespace, MilestonePod, at)
		if o.Spec.NodeName != "" {
			t.mark(o.Namespace, MilestoneScheduled, at)
		}
		for _, c := range o.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				t.mark(o.Namespace, MilestoneReady, at)
			}
		}
	}
}

func (t *Trace) mark(ns, milestone string, at time.Time) {
	if !strings.HasPrefix(ns, t.prefix) {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.seen[ns]
	if m == nil {
		m = map[string]time.Time{}
		t.seen[ns] = m
	}
	if _, ok := m[milestone]; !ok {
		m[milestone] = at
	}
}

// Stop closes the watches.
func (t *Trace) Stop() {
	t.stop()
	t.done.Wait()
}

// Seen is when each milestone was first seen per namespace (a copy).
func (t *Trace) Seen() map[string]map[string]time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]map[string]time.Time, len(t.seen))
	for ns, m := range t.seen {
		out[ns] = make(map[string]time.Time, len(m))
		for k, v := range m {
			out[ns][k] = v
		}
	}
	return out
}

// Breakdown tells, per step from one milestone to the next (extra ones,
// e.g. glenv's own "applied" and "noticed", placed where after names them),
// the median and p99 of the step across environments, and p50/p99 of each
// milestone counted from start: where an environment's time goes.
func Breakdown(start time.Time, seen map[string]map[string]time.Time, order []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-24s %9s %9s   %9s %9s %9s  (n)\n", "step", "p50", "p99", "from start p50", "p99", "max")
	prev := ""
	for _, m := range order {
		var step, abs []time.Duration
		for _, ms := range seen {
			at, ok := ms[m]
			if !ok {
				continue
			}
			abs = append(abs, at.Sub(start))
			if p, ok := ms[prev]; ok && prev != "" {
				step = append(step, at.Sub(p))
			}
		}
		name := m
		if prev != "" {
			name = prev + " → " + m
		}
		fmt.Fprintf(&b, "%-24s %9s %9s   %14s %9s %9s  (%d)\n", name, q(step, 0.5), q(step, 0.99), q(abs, 0.5), q(abs, 0.99), q(abs, 1), len(abs))
		prev = m
	}
	return b.String()
}

func q(ds []time.Duration, p float64) string {
	if len(ds) == 0 {
		return "-"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[int(p*float64(len(s)-1))].Round(10 * time.Millisecond).String()
}
