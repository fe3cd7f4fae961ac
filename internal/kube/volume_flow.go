package kube

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
)

// makeClaim creates one services.files claim of a new environment, once:
// empty, a CSI clone of the parent's claim, or a copy of it made by a Job,
// as the storage class allows (ChooseClone). A claim's spec is immutable
// and the clone source is not known after a restart, so an existing claim
// is left alone.
func (r *Runtime) makeClaim(ctx context.Context, s Spec, c *corev1.PersistentVolumeClaim, logf func(string, ...any)) error {
	claims := r.c.CoreV1().PersistentVolumeClaims(c.Namespace)
	if s.CloneFrom != "" {
		// A parent without this volume (services.files grew in this
		// branch) has nothing to clone: a clone of a missing claim would
		// stay pending for good.
		_, err := r.c.CoreV1().PersistentVolumeClaims(s.CloneFrom).Get(ctx, c.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			logf("the parent has no %s: %s starts empty", c.Name, c.Name)
			c = c.DeepCopy()
			c.Spec.DataSourceRef = nil
		} else if err != nil {
			return fmt.Errorf("read the parent's claim %s/%s: %w", s.CloneFrom, c.Name, explain(err))
		}
	}
	var mode VolumeClone
	verify := false
	if c.Spec.DataSourceRef != nil {
		var why string
		var err error
		if mode, why, verify, err = r.cloneMode(ctx, s.StorageClass); err != nil {
			return err
		}
		if mode == CloneCopy {
			logf("copying %s from %s with a Job: %s", c.Name, s.CloneFrom, why)
			return r.copyClaim(ctx, s, c, logf)
		}
	}
	got, err := claims.Create(ctx, c, metav1.CreateOptions{FieldManager: FieldManager})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create %s: %w", c.Name, explain(err))
	}
	if !CloneDropped(c, got) {
		if verify {
			return r.verifyClone(ctx, s, c, got, logf)
		}
		return nil
	}
	if r.opts.VolumeClone == CloneCSI {
		logf("the API server dropped the clone source of %s (its CrossNamespaceVolumeDataSource feature is off): %s starts empty", c.Name, c.Name)
		return nil
	}
	// The API server cannot clone across namespaces here: copy instead,
	// into a claim made for it (this one is empty and unused).
	logf("the API server dropped the clone source of %s (its CrossNamespaceVolumeDataSource feature is off): copying with a Job instead", c.Name)
	r.setCloneMode(s.StorageClass, CloneCopy, "the API server drops cross-namespace clone sources", false)
	return r.copyInstead(ctx, s, c, got, logf)
}

// copyInstead replaces a claim that did not get the parent's data (still
// empty and unused: no pod of the environment exists before its claims)
// by a copy made with a Job.
func (r *Runtime) copyInstead(ctx context.Context, s Spec, c, got *corev1.PersistentVolumeClaim, logf func(string, ...any)) error {
	claims := r.c.CoreV1().PersistentVolumeClaims(c.Namespace)
	if err := claims.Delete(ctx, c.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &got.UID}}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete the empty claim %s: %w", c.Name, explain(err))
	}
	if err := r.waitFor(ctx, claimWatch(r, c.Namespace, c.Name, got.ResourceVersion), nil); err != nil {
		return fmt.Errorf("wait for the empty claim %s to go: %w", c.Name, err)
	}
	return r.copyClaim(ctx, s, c, logf)
}

// verifyClone follows the first CSI clone auto asked of a storage class
// until it binds (the driver clones: later clones are not followed) or
// its provisioner refuses it with a ProvisioningFailed event, as a CSI
// driver without the CLONE_VOLUME capability does. A refused class copies
// from then on, and this claim, which would stay Pending for good, is
// replaced by a copy. A clone neither bound nor refused within
// cloneVerifyLimit is left to bind (a large volume may take a while to
// clone) and the next clone is followed again.
func (r *Runtime) verifyClone(ctx context.Context, s Spec, c, got *corev1.PersistentVolumeClaim, logf func(string, ...any)) error {
	refused, bound, err := r.cloneOutcome(ctx, got)
	switch {
	case err != nil:
		return err
	case bound:
		r.confirmClone(s.StorageClass)
		return nil
	case refused == "":
		logf("%s is not bound %s after it was created as a clone; going on without waiting for it", c.Name, cloneVerifyLimit)
		return nil
	}
	logf("storage class %s's CSI driver refused to clone %s (ProvisioningFailed: %s): copying with a Job instead, and for this class from now on", className(got), c.Name, refused)
	r.setCloneMode(s.StorageClass, CloneCopy, fmt.Sprintf("storage class %s's CSI driver refused a clone: %s", className(got), refused), false)
	return r.copyInstead(ctx, s, c, got, logf)
}

func className(c *corev1.PersistentVolumeClaim) string {
	if c.Spec.StorageClassName == nil {
		return "(default)"
	}
	return *c.Spec.StorageClassName
}

// cloneVerifyLimit bounds how long a deploy follows a clone (verifyClone).
const cloneVerifyLimit = 2 * time.Minute

// cloneOutcome watches a new clone claim and the events about it until
// the claim binds, a ProvisioningFailed event about it appears (its
// message returned), or cloneVerifyLimit passes (neither). Both watches
// start from the current state (no resource version: existing objects
// come first as added), so an outcome already recorded is seen.
func (r *Runtime) cloneOutcome(ctx context.Context, claim *corev1.PersistentVolumeClaim) (refused string, bound bool, err error) {
	wctx, cancel := context.WithTimeout(ctx, cloneVerifyLimit)
	defer cancel()
	claims, events := r.c.CoreV1().PersistentVolumeClaims(claim.Namespace), r.c.CoreV1().Events(claim.Namespace)
	onClaim := metav1.ListOptions{FieldSelector: "metadata.name=" + claim.Name}
	onEvents := metav1.ListOptions{FieldSelector: fields.Set{"involvedObject.kind": "PersistentVolumeClaim",
		"involvedObject.name": claim.Name, "involvedObject.uid": string(claim.UID), "reason": "ProvisioningFailed"}.String()}
	var cw, ew watch.Interface
	defer func() {
		for _, w := range []watch.Interface{cw, ew} {
			if w != nil {
				w.Stop()
			}
		}
	}()
	for {
		// A watch the API server ended is opened again, from the current state.
		if cw == nil {
			if cw, err = claims.Watch(wctx, onClaim); err != nil {
				return "", false, outcomeErr(ctx, wctx, "watch claim "+claim.Namespace+"/"+claim.Name, err)
			}
		}
		if ew == nil {
			if ew, err = events.Watch(wctx, onEvents); err != nil {
				return "", false, outcomeErr(ctx, wctx, "watch the events of claim "+claim.Namespace+"/"+claim.Name, err)
			}
		}
		select {
		case <-wctx.Done():
			return "", false, outcomeErr(ctx, wctx, "", nil)
		case ev, ok := <-cw.ResultChan():
			if !ok {
				cw.Stop()
				cw = nil
				continue
			}
			pvc, isClaim := ev.Object.(*corev1.PersistentVolumeClaim)
			switch {
			case ev.Type == watch.Deleted:
				return "", false, fmt.Errorf("claim %s/%s was deleted while glenv waited for its clone", claim.Namespace, claim.Name)
			case isClaim && pvc.UID == claim.UID && pvc.Status.Phase == corev1.ClaimBound:
				return "", true, nil
			}
		case ev, ok := <-ew.ResultChan():
			if !ok {
				ew.Stop()
				ew = nil
				continue
			}
			if e, isEvent := ev.Object.(*corev1.Event); isEvent && ev.Type != watch.Deleted {
				return e.Message, false, nil
			}
		}
	}
}

// outcomeErr is cloneOutcome's end when its watch could not go on: the
// deploy's own end is an error, the limit is not (nil).
func outcomeErr(ctx, wctx context.Context, what string, err error) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	if wctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, explain(err))
}

// cloneMode is how claims of a storage class clone, decided once per class.
// verify says to follow the claim's clone (verifyClone): auto guessed
// that the class clones, and no clone of it has bound yet.
func (r *Runtime) cloneMode(ctx context.Context, class string) (mode VolumeClone, why string, verify bool, err error) {
	if r.opts.VolumeClone == CloneCSI || r.opts.VolumeClone == CloneCopy {
		m, why := ChooseClone(r.opts.VolumeClone, nil, false)
		return m, why, false, nil
	}
	r.mu.Lock()
	d, ok := r.clone[class]
	r.mu.Unlock()
	if ok {
		return d.mode, d.why, d.verify, nil
	}
	var sc *storagev1.StorageClass
	if class != "" {
		got, err := r.c.StorageV1().StorageClasses().Get(ctx, class, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return "", "", false, fmt.Errorf("--kubernetes-storage-class %s: no such storage class; name one of `kubectl get storageclass`", class)
		}
		if err != nil {
			return "", "", false, fmt.Errorf("read storage class %s: %w", class, explain(err))
		}
		sc = got
	} else {
		list, err := r.c.StorageV1().StorageClasses().List(ctx, metav1.ListOptions{})
		if err != nil {
			return "", "", false, fmt.Errorf("list storage classes for the default one: %w", explain(err))
		}
		sc = DefaultClass(list.Items)
	}
	csi := false
	if sc != nil {
		_, err := r.c.StorageV1().CSIDrivers().Get(ctx, sc.Provisioner, metav1.GetOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return "", "", false, fmt.Errorf("read CSIDriver %s: %w", sc.Provisioner, explain(err))
		}
		csi = err == nil
	}
	mode, why = ChooseClone(CloneAuto, sc, csi)
	verify = VerifyClone(mode, sc)
	r.setCloneMode(class, mode, why, verify)
	return mode, why, verify, nil
}

func (r *Runtime) setCloneMode(class string, mode VolumeClone, why string, verify bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.clone == nil {
		r.clone = map[string]cloneDecision{}
	}
	r.clone[class] = cloneDecision{mode: mode, why: why, verify: verify}
}

// confirmClone records that a clone of the class bound: its driver clones.
func (r *Runtime) confirmClone(class string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if d, ok := r.clone[class]; ok && d.mode == CloneCSI {
		d.verify = false
		r.clone[class] = d
	}
}

type cloneDecision struct {
	mode   VolumeClone
	why    string
	verify bool // follow the next clone: auto's guess is not confirmed yet
}

// copyClaim fills a new claim with a copy of the parent's: a Job in the
// parent's namespace copies the parent's claim into a staging claim there,
// then the staging claim's volume is handed over to the environment's
// claim (held at Retain while the staging claim goes, then bound ahead to
// the new claim). A volume a failed earlier attempt left half handed over
// is found by its labels and handed over again.
func (r *Runtime) copyClaim(ctx context.Context, s Spec, c *corev1.PersistentVolumeClaim, logf func(string, ...any)) error {
	to := c.Namespace
	pvs := r.c.CoreV1().PersistentVolumes()
	pv, err := r.handingOver(ctx, to, c.Name)
	if err != nil {
		return err
	}
	if pv == nil {
		if _, err := r.c.CoreV1().PersistentVolumeClaims(to).Get(ctx, c.Name, metav1.GetOptions{}); err == nil {
			return nil // made whole by an earlier attempt: a claim is made once
		} else if !apierrors.IsNotFound(err) {
			return fmt.Errorf("read claim %s/%s: %w", to, c.Name, explain(err))
		}
		if pv, err = r.runCopy(ctx, s, c.Name, logf); err != nil {
			return err
		}
	} else if err := r.dropCopy(ctx, s, c.Name); err != nil {
		// An earlier attempt stopped between holding the volume and
		// deleting its staging claim.
		return err
	}
	if ref := pv.Spec.ClaimRef; ref != nil && ref.Namespace == s.CloneFrom && pv.Status.Phase == corev1.VolumeBound {
		// Still bound to the staging claim: wait for its deletion to
		// release it (never hand over a volume a claim still holds).
		if err := r.waitFor(ctx, pvWatch(r, pv.Name, pv.ResourceVersion), func(o any) (bool, error) {
			return o.(*corev1.PersistentVolume).Status.Phase != corev1.VolumeBound, nil
		}); err != nil {
			return fmt.Errorf("wait for volume %s to be released by the staging claim: %w", pv.Name, err)
		}
	}
	// Still at Retain: a released volume whose policy is Delete is deleted
	// by its provisioner at once, even while glenv re-binds it.
	if pv, err = pvs.Patch(ctx, pv.Name, types.MergePatchType, bindAheadPatch(to, c.Name), metav1.PatchOptions{FieldManager: FieldManager}); err != nil {
		return fmt.Errorf("hand volume %s over to %s/%s: %w", pv.Name, to, c.Name, explain(err))
	}
	claim := HandedOverClaim(s, strings.TrimPrefix(c.Name, "files-"), pv.Name, pv.Spec.StorageClassName)
	claim.Spec.Resources = c.Spec.Resources
	got, err := r.c.CoreV1().PersistentVolumeClaims(to).Create(ctx, claim, metav1.CreateOptions{FieldManager: FieldManager})
	if apierrors.IsAlreadyExists(err) {
		got, err = r.c.CoreV1().PersistentVolumeClaims(to).Get(ctx, claim.Name, metav1.GetOptions{})
	}
	if err != nil {
		return fmt.Errorf("create %s bound to the copied volume %s: %w", c.Name, pv.Name, explain(err))
	}
	if got.Status.Phase != corev1.ClaimBound {
		if err := r.waitFor(ctx, claimWatch(r, to, c.Name, got.ResourceVersion), func(o any) (bool, error) {
			return o.(*corev1.PersistentVolumeClaim).Status.Phase == corev1.ClaimBound, nil
		}); err != nil {
			return fmt.Errorf("wait for %s/%s to bind the copied volume %s: %w", to, c.Name, pv.Name, err)
		}
	}
	// Bound now: the volume's own policy is safe to give back, and makes
	// deleting the environment delete its data.
	if _, err := pvs.Patch(ctx, pv.Name, types.MergePatchType, releasePatch(pv), metav1.PatchOptions{FieldManager: FieldManager}); err != nil {
		return fmt.Errorf("give volume %s its reclaim policy back: %w", pv.Name, explain(err))
	}
	logf("%s holds a copy of %s/%s (volume %s)", c.Name, s.CloneFrom, c.Name, pv.Name)
	return nil
}

// handingOver finds a volume an earlier attempt copied for the claim and
// held at Retain.
func (r *Runtime) handingOver(ctx context.Context, to, claim string) (*corev1.PersistentVolume, error) {
	sel := labels.SelectorFromSet(labels.Set{LabelCopyTo: to, LabelCopyClaim: claim}).String()
	list, err := r.c.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, fmt.Errorf("look for a volume copied earlier for %s/%s: %w", to, claim, explain(err))
	}
	if len(list.Items) == 0 {
		return nil, nil
	}
	return &list.Items[0], nil
}

// runCopy runs the copy Job into a staging claim, and returns the staging
// volume held at Retain with the staging claim and the Job deleted.
func (r *Runtime) runCopy(ctx context.Context, s Spec, claim string, logf func(string, ...any)) (*corev1.PersistentVolume, error) {
	file := strings.TrimPrefix(claim, "files-")
	staging, job := StagingClaim(s, file), CopyJob(s, file, r.opts.FetchImage)
	ns := s.CloneFrom
	pvcs, jobs := r.c.CoreV1().PersistentVolumeClaims(ns), r.c.BatchV1().Jobs(ns)
	if _, err := pvcs.Create(ctx, staging, metav1.CreateOptions{FieldManager: FieldManager}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("create the staging claim %s/%s: %w", ns, staging.Name, explain(err))
	}
	j, err := jobs.Create(ctx, job, metav1.CreateOptions{FieldManager: FieldManager})
	if apierrors.IsAlreadyExists(err) {
		j, err = jobs.Get(ctx, job.Name, metav1.GetOptions{})
	}
	if err != nil {
		return nil, fmt.Errorf("create the copy Job %s/%s: %w", ns, job.Name, explain(err))
	}
	logf("copy Job %s/%s started", ns, job.Name)
	cleanup := func() error { return r.dropCopy(ctx, s, claim) }
	var failure string
	if done, f := JobOutcome(j); !done && f == "" {
		err = r.waitFor(ctx, jobWatch(r, ns, job.Name, j.ResourceVersion), func(o any) (bool, error) {
			done, f := JobOutcome(o.(*batchv1.Job))
			failure = f
			return done || f != "", nil
		})
	} else {
		failure = f
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("wait for the copy Job %s/%s: %w", ns, job.Name, err), cleanup())
	}
	if failure != "" {
		// Its pods are gone with it: the Job's reason is all that is left.
		return nil, errors.Join(fmt.Errorf("copying %s from %s failed: Job %s/%s %s", claim, ns, ns, job.Name, failure), cleanup())
	}
	got, err := pvcs.Get(ctx, staging.Name, metav1.GetOptions{})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("read the staging claim %s/%s: %w", ns, staging.Name, err), cleanup())
	}
	if got.Spec.VolumeName == "" {
		return nil, errors.Join(fmt.Errorf("the staging claim %s/%s has no volume after its copy Job completed", ns, staging.Name), cleanup())
	}
	pv, err := r.c.CoreV1().PersistentVolumes().Get(ctx, got.Spec.VolumeName, metav1.GetOptions{})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("read the copied volume %s: %w", got.Spec.VolumeName, explain(err)), cleanup())
	}
	// Held at Retain before the staging claim goes, or its deletion would
	// delete the copy.
	if pv, err = r.c.CoreV1().PersistentVolumes().Patch(ctx, pv.Name, types.MergePatchType, retainPatch(pv, Namespace(s.HostLabel), claim),
		metav1.PatchOptions{FieldManager: FieldManager}); err != nil {
		return nil, errors.Join(fmt.Errorf("keep the copied volume %s: %w", got.Spec.VolumeName, explain(err)), cleanup())
	}
	if err := cleanup(); err != nil {
		return nil, err
	}
	logf("copy Job %s/%s completed into volume %s", ns, job.Name, pv.Name)
	return pv, nil
}

// dropCopy deletes a copy's Job (and its pods) and staging claim.
func (r *Runtime) dropCopy(ctx context.Context, s Spec, claim string) error {
	ns, name := s.CloneFrom, copyName(Namespace(s.HostLabel), claim)
	bg := metav1.DeletePropagationBackground
	if err := r.c.BatchV1().Jobs(ns).Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &bg}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete the copy Job %s/%s: %w", ns, name, explain(err))
	}
	if err := r.c.CoreV1().PersistentVolumeClaims(ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete the staging claim %s/%s: %w", ns, name, explain(err))
	}
	return nil
}

// watchOf opens a watch of one object by name from a resource version.
type watchOf struct {
	what string
	open func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error)
	name string
	rv   string
	// get reads the object, for a wait on its deletion whose watch must
	// start again (waitFor).
	get func(ctx context.Context, name string) (metav1.Object, error)
}

func claimWatch(r *Runtime, ns, name, rv string) watchOf {
	claims := r.c.CoreV1().PersistentVolumeClaims(ns)
	return watchOf{what: "claim " + ns + "/" + name, open: claims.Watch, name: name, rv: rv,
		get: func(ctx context.Context, name string) (metav1.Object, error) {
			return claims.Get(ctx, name, metav1.GetOptions{})
		}}
}

func pvWatch(r *Runtime, name, rv string) watchOf {
	return watchOf{what: "volume " + name, open: r.c.CoreV1().PersistentVolumes().Watch, name: name, rv: rv}
}

func jobWatch(r *Runtime, ns, name, rv string) watchOf {
	return watchOf{what: "Job " + ns + "/" + name, open: r.c.BatchV1().Jobs(ns).Watch, name: name, rv: rv}
}

// waitFor watches one object until done says so, or, with done nil, until
// it is deleted. A watch too old to resume restarts from the current state
// (a watch without a version begins with it). Waiting for a deletion, the
// object is read first: a watch from now says nothing of one already gone,
// and would wait until ctx ends.
func (r *Runtime) waitFor(ctx context.Context, w watchOf, done func(any) (bool, error)) error {
	rv := w.rv
	for {
		if rv == "" && done == nil && w.get != nil {
			cur, err := w.get(ctx, w.name)
			if apierrors.IsNotFound(err) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("read %s: %w", w.what, explain(err))
			}
			rv = cur.GetResourceVersion()
		}
		wi, err := w.open(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + w.name, ResourceVersion: rv, AllowWatchBookmarks: true})
		if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
			rv = ""
			continue
		}
		if err != nil {
			return fmt.Errorf("watch %s: %w", w.what, explain(err))
		}
		finished, next, err := untilDone(ctx, wi, rv, w.what, done)
		wi.Stop()
		if err != nil || finished {
			return err
		}
		rv = next
	}
}

func untilDone(ctx context.Context, w watch.Interface, rv, what string, done func(any) (bool, error)) (bool, string, error) {
	for {
		select {
		case <-ctx.Done():
			return false, rv, context.Cause(ctx)
		case ev, ok := <-w.ResultChan():
			if !ok {
				return false, rv, nil
			}
			switch ev.Type {
			case watch.Deleted:
				if done == nil {
					return true, rv, nil
				}
				return false, rv, fmt.Errorf("%s was deleted while glenv waited for it", what)
			case watch.Error:
				err := apierrors.FromObject(ev.Object)
				if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
					return false, "", nil
				}
				return false, rv, fmt.Errorf("watch %s: %v", what, err)
			default:
				m, ok := ev.Object.(metav1.Object)
				if !ok {
					continue
				}
				rv = m.GetResourceVersion()
				if ev.Type == watch.Bookmark || done == nil {
					continue
				}
				finished, err := done(ev.Object)
				if err != nil || finished {
					return finished, rv, err
				}
			}
		}
	}
}
