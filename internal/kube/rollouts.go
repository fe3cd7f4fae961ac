package kube

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	glruntime "github.com/glenv/glenv/internal/runtime"
)

// rolloutSyncWithin bounds how long a deploy waits for the shared watch's
// first list before it says why (usually RBAC), instead of hanging until
// its job times out.
const rolloutSyncWithin = time.Minute

// rollouts is one watch on every Deployment glenv manages, across all
// namespaces (a client-go informer selected by the managed-by label), that
// wakes the deploys waiting for their rollout. A watch per deploy cost one
// API call and one API-server watch per deploy; a burst of a thousand
// environments held a thousand of them.
type rollouts struct {
	c kubernetes.Interface

	once     sync.Once
	informer cache.SharedIndexInformer
	stop     context.CancelFunc

	mu      sync.Mutex
	waiters map[string]map[chan struct{}]struct{} // namespace → waiting deploys
	lastErr error                                 // the watch's last failure, for a deploy that cannot sync

	// ended, once set (WatchRollouts), hears of every rollout's end; the
	// queue holds the Deployments (namespace/name) to look at, so a slow
	// handler never holds up the informer, and one that fails is asked
	// again with back-off.
	ended func(context.Context, glruntime.RolloutEnd) error
	queue workqueue.TypedRateLimitingInterface[string]
	// reported is, per Deployment, the activity whose end was reported:
	// each end is reported once (per process). Entries go with their
	// Deployment, so it holds at most one per Deployment.
	reported map[string]int64
}

func newRollouts(c kubernetes.Interface) *rollouts {
	return &rollouts{c: c, waiters: map[string]map[chan struct{}]struct{}{}, reported: map[string]int64{}}
}

// start runs the informer on first use: a glenv that never deploys on
// Kubernetes never lists Deployments.
func (r *rollouts) start() {
	r.once.Do(func() {
		selector := LabelManagedBy + "=glenv"
		lw := &cache.ListWatch{
			ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
				o.LabelSelector = selector
				return r.c.AppsV1().Deployments(metav1.NamespaceAll).List(ctx, o)
			},
			WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
				o.LabelSelector = selector
				return r.c.AppsV1().Deployments(metav1.NamespaceAll).Watch(ctx, o)
			},
		}
		r.informer = cache.NewSharedIndexInformer(lw, &appsv1.Deployment{}, 0, cache.Indexers{})
		// Only the status and generation matter here: the managed
		// fields are most of a Deployment's size in memory.
		_ = r.informer.SetTransform(func(o any) (any, error) {
			if m, ok := o.(metav1.Object); ok {
				m.SetManagedFields(nil)
			}
			return o, nil
		})
		_ = r.informer.SetWatchErrorHandler(func(_ *cache.Reflector, err error) {
			r.mu.Lock()
			r.lastErr = err
			r.mu.Unlock()
		})
		wake := func(o any) {
			if t, ok := o.(cache.DeletedFinalStateUnknown); ok {
				o = t.Obj
			}
			if m, ok := o.(metav1.Object); ok {
				r.wake(m.GetNamespace())
				if r.queue != nil {
					r.queue.Add(m.GetNamespace() + "/" + m.GetName())
				}
			}
		}
		_, _ = r.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    wake,
			UpdateFunc: func(_, o any) { wake(o) },
			DeleteFunc: wake,
		})
		ctx, cancel := context.WithCancel(context.Background())
		r.stop = cancel
		go r.informer.RunWithContext(ctx)
		if r.queue != nil {
			go func() { <-ctx.Done(); r.queue.ShutDown() }()
			for range reportWorkers {
				go r.reportLoop(ctx)
			}
		}
	})
}

// reportWorkers report rollout ends at once: each is a short database
// transaction, and a burst ends hundreds of rollouts a second.
const reportWorkers = 4

// watch makes the informer report each rollout's end to ended, and starts it
// now: a restarted glenv hears of rollouts that ended while it was down
// from the informer's first list.
func (r *rollouts) watch(ended func(context.Context, glruntime.RolloutEnd) error) {
	r.ended = ended
	r.queue = workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "glenv-rollouts"})
	r.start()
}

func (r *rollouts) reportLoop(ctx context.Context) {
	for {
		key, quit := r.queue.Get()
		if quit {
			return
		}
		if err := r.report(ctx, key); err != nil {
			r.queue.AddRateLimited(key)
		} else {
			r.queue.Forget(key)
		}
		r.queue.Done(key)
	}
}

// report hands the Deployment's rollout to ended once it finished, unless
// its activity's end was reported already.
func (r *rollouts) report(ctx context.Context, key string) error {
	o, ok, _ := r.informer.GetStore().GetByKey(key)
	d, _ := o.(*appsv1.Deployment)
	if !ok || d == nil {
		r.mu.Lock()
		delete(r.reported, key)
		r.mu.Unlock()
		return nil
	}
	end, ok := rolloutEnd(d)
	if !ok {
		return nil
	}
	r.mu.Lock()
	done := r.reported[key] == end.ActivityID
	r.mu.Unlock()
	if done {
		return nil
	}
	if err := r.ended(ctx, end); err != nil {
		return err
	}
	r.mu.Lock()
	r.reported[key] = end.ActivityID
	r.mu.Unlock()
	return nil
}

// rolloutEnd is the end of d's rollout, when it ended and d names the
// deploy it rolls out (Deployments applied before glenv said so name none).
func rolloutEnd(d *appsv1.Deployment) (glruntime.RolloutEnd, bool) {
	env, err1 := strconv.ParseInt(d.Annotations[AnnotationEnvironmentID], 10, 64)
	act, err2 := strconv.ParseInt(d.Annotations[AnnotationActivity], 10, 64)
	if err1 != nil || err2 != nil || act == 0 {
		return glruntime.RolloutEnd{}, false
	}
	done, failure := Rollout(d)
	if !done && failure == "" {
		return glruntime.RolloutEnd{}, false
	}
	return glruntime.RolloutEnd{EnvironmentID: env, ActivityID: act, SHA: d.Annotations[AnnotationSHA], Failure: failure}, true
}

// close stops the informer, if it ran.
func (r *rollouts) close() {
	r.once.Do(func() {}) // a later start does nothing
	if r.stop != nil {
		r.stop()
	}
}

func (r *rollouts) wake(ns string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for ch := range r.waiters[ns] {
		select {
		case ch <- struct{}{}:
		default: // already woken: it reads the latest state anyway
		}
	}
}

func (r *rollouts) register(ns string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.waiters[ns] == nil {
		r.waiters[ns] = map[chan struct{}]struct{}{}
	}
	r.waiters[ns][ch] = struct{}{}
	return ch, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		delete(r.waiters[ns], ch)
		if len(r.waiters[ns]) == 0 {
			delete(r.waiters, ns)
		}
	}
}

// synced waits for the informer's first list, at most rolloutSyncWithin.
func (r *rollouts) synced(ctx context.Context) error {
	if r.informer.HasSynced() {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, rolloutSyncWithin)
	defer cancel()
	if cache.WaitForCacheSync(ctx.Done(), r.informer.HasSynced) {
		return nil
	}
	if err := context.Cause(ctx); !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	r.mu.Lock()
	last := r.lastErr
	r.mu.Unlock()
	return fmt.Errorf("watch glenv's Deployments in all namespaces: no answer within %s (%v); glenv's service account needs list and watch on deployments cluster-wide (README, Running on Kubernetes)", rolloutSyncWithin, explainNil(last))
}

func explainNil(err error) error {
	if err == nil {
		return errors.New("no error reported")
	}
	return explain(err)
}

// current is the freshest state of the Deployment d applied: the informer's
// copy when it has seen this incarnation (same UID) at this spec or later,
// else d itself. gone is true once the informer lost an incarnation it had
// seen.
func (r *rollouts) current(d *appsv1.Deployment, seen *bool) (cur *appsv1.Deployment, gone bool) {
	o, ok, _ := r.informer.GetStore().GetByKey(d.Namespace + "/" + d.Name)
	got, _ := o.(*appsv1.Deployment)
	if !ok || got == nil || got.UID != d.UID {
		return d, *seen
	}
	*seen = true
	if got.Generation < d.Generation {
		return d, false // the watch has not caught up with the apply yet
	}
	return got, false
}

// waitRolledOut returns once the shared watch shows the Deployment d (as
// glenv applied it) rolled out, or why it failed.
func (r *Runtime) waitRolledOut(ctx context.Context, d *appsv1.Deployment) error {
	if done, failure := Rollout(d); failure != "" {
		return errors.New(failure)
	} else if done {
		return nil
	}
	ro := r.rollouts
	ro.start()
	woken, unregister := ro.register(d.Namespace)
	defer unregister()
	if err := ro.synced(ctx); err != nil {
		return err
	}
	seen := false
	for {
		cur, gone := ro.current(d, &seen)
		if gone {
			return errors.New("the Deployment was deleted during the rollout")
		}
		done, failure := Rollout(cur)
		if failure != "" {
			return errors.New(failure)
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-woken:
		}
	}
}
