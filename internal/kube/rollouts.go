package kube

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
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
}

func newRollouts(c kubernetes.Interface) *rollouts {
	return &rollouts{c: c, waiters: map[string]map[chan struct{}]struct{}{}}
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
	})
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
