package kubetest

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
)

// Storage classes the test provisioner serves. Nothing is stored anywhere
// (kwok's pods mount nothing): the provisioner makes the PersistentVolume
// objects a real one would, so claims bind and pods using them schedule.
const (
	// StorageClassClone is served by a CSI driver (a CSIDriver object
	// exists) that clones: a claim with a dataSourceRef to another claim
	// is provisioned and its PV records the source.
	StorageClassClone = "glenv-clone"
	// StorageClassCopy is served by a provisioner that is no CSI driver
	// and cannot clone: a claim asking for a data source is refused with a
	// ProvisioningFailed event, as real ones do.
	StorageClassCopy = "glenv-copy"
	// StorageClassNoClone is served by a CSI driver (a CSIDriver object
	// exists) that cannot clone, as drivers without the CLONE_VOLUME
	// capability: a claim with a data source gets a ProvisioningFailed
	// event and stays Pending, while plain claims are provisioned.
	StorageClassNoClone = "glenv-csi-noclone"

	// ImageHeld is an app image whose pods kwok never makes ready
	// (testdata/kwok-stages.yaml): a rollout held until the test changes
	// the pod's image.
	ImageHeld = "glenv.test/held"

	provisionerClone   = "clone.glenv.test"
	provisionerCopy    = "copy.glenv.test"
	provisionerNoClone = "noclone.glenv.test"
	// AnnotationClonedFrom on a PV names the claim (<namespace>/<name>)
	// it was cloned from.
	AnnotationClonedFrom = "glenv.test/cloned-from"
	annProvisionedBy     = "pv.kubernetes.io/provisioned-by"
)

var provisioners = map[string]string{StorageClassClone: provisionerClone, StorageClassCopy: provisionerCopy, StorageClassNoClone: provisionerNoClone}

// installStorage creates the storage classes and the clone class's
// CSIDriver, and starts the provisioner until ctx ends.
func installStorage(ctx context.Context, c kubernetes.Interface) error {
	immediate := storagev1.VolumeBindingImmediate
	del := corev1.PersistentVolumeReclaimDelete
	for class, prov := range provisioners {
		sc := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: class}, Provisioner: prov,
			ReclaimPolicy: &del, VolumeBindingMode: &immediate}
		if _, err := c.StorageV1().StorageClasses().Create(ctx, sc, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create storage class %s: %w", class, err)
		}
	}
	no := false
	for _, d := range []string{provisionerClone, provisionerNoClone} {
		if _, err := c.StorageV1().CSIDrivers().Create(ctx, &storagev1.CSIDriver{ObjectMeta: metav1.ObjectMeta{Name: d},
			Spec: storagev1.CSIDriverSpec{AttachRequired: &no}}, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create CSIDriver %s: %w", d, err)
		}
	}
	go loop(ctx, func(ctx context.Context) (watch.Interface, error) {
		return watchAll(ctx, c.CoreV1().PersistentVolumeClaims("").List, c.CoreV1().PersistentVolumeClaims("").Watch)
	}, func(ev watch.Event) {
		if pvc, ok := ev.Object.(*corev1.PersistentVolumeClaim); ok && ev.Type != watch.Deleted {
			provision(ctx, c, pvc)
		}
	})
	go loop(ctx, func(ctx context.Context) (watch.Interface, error) {
		return watchAll(ctx, c.CoreV1().PersistentVolumes().List, c.CoreV1().PersistentVolumes().Watch)
	}, func(ev watch.Event) {
		if pv, ok := ev.Object.(*corev1.PersistentVolume); ok && ev.Type != watch.Deleted {
			reclaim(ctx, c, pv)
		}
	})
	return nil
}

// watchAll watches from "now", sending what exists first as Added events
// (a list then a watch from its version: the watch cache is off here).
func watchAll[L any](ctx context.Context, list func(context.Context, metav1.ListOptions) (L, error),
	w func(context.Context, metav1.ListOptions) (watch.Interface, error)) (watch.Interface, error) {
	l, err := list(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	var items []watch.Event
	rv := ""
	switch l := any(l).(type) {
	case *corev1.PersistentVolumeClaimList:
		rv = l.ResourceVersion
		for i := range l.Items {
			items = append(items, watch.Event{Type: watch.Added, Object: &l.Items[i]})
		}
	case *corev1.PersistentVolumeList:
		rv = l.ResourceVersion
		for i := range l.Items {
			items = append(items, watch.Event{Type: watch.Added, Object: &l.Items[i]})
		}
	}
	inner, err := w(ctx, metav1.ListOptions{ResourceVersion: rv})
	if err != nil {
		return nil, err
	}
	out := make(chan watch.Event)
	go func() {
		defer close(out)
		defer inner.Stop()
		for _, ev := range items {
			select {
			case out <- ev:
			case <-ctx.Done():
				return
			}
		}
		for ev := range inner.ResultChan() {
			select {
			case out <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	return watch.NewProxyWatcher(out), nil
}

// loop handles events of a fresh watch each time one ends, until ctx ends.
func loop(ctx context.Context, open func(context.Context) (watch.Interface, error), handle func(watch.Event)) {
	for ctx.Err() == nil {
		w, err := open(ctx)
		if err != nil {
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond): // the API server refused; ask again shortly
			}
			continue
		}
		for ev := range w.ResultChan() {
			handle(ev)
		}
		w.Stop()
	}
}

// provision makes a bound PV for a pending claim of one of the test classes.
func provision(ctx context.Context, c kubernetes.Interface, pvc *corev1.PersistentVolumeClaim) {
	if pvc.Spec.StorageClassName == nil || pvc.Spec.VolumeName != "" || pvc.DeletionTimestamp != nil {
		return
	}
	class := *pvc.Spec.StorageClassName
	prov, ok := provisioners[class]
	if !ok {
		return
	}
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "pvc-" + string(pvc.UID), Annotations: map[string]string{annProvisionedBy: prov}},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: pvc.Spec.Resources.Requests[corev1.ResourceStorage]},
			AccessModes:                   pvc.Spec.AccessModes,
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
			StorageClassName:              class,
			ClaimRef: &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1",
				Namespace: pvc.Namespace, Name: pvc.Name, UID: pvc.UID},
			PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/glenv-test/" + string(pvc.UID)}},
		},
	}
	if src := pvc.Spec.DataSourceRef; src != nil {
		ns := pvc.Namespace
		if src.Namespace != nil {
			ns = *src.Namespace
		}
		switch class {
		case StorageClassCopy:
			refuse(ctx, c, pvc, prov, "this provisioner cannot clone volumes (no CSI volume cloning)")
			return
		case StorageClassNoClone:
			// external-provisioner's words when the driver lacks CLONE_VOLUME.
			refuse(ctx, c, pvc, prov, "failed to provision volume with StorageClass \""+class+"\": error getting handle for DataSource Type PersistentVolumeClaim by Name \""+src.Name+"\": clone not supported by the CSI driver")
			return
		}
		if src.Kind != "PersistentVolumeClaim" {
			refuse(ctx, c, pvc, prov, "data source kind "+src.Kind+" is not supported")
			return
		}
		if _, err := c.CoreV1().PersistentVolumeClaims(ns).Get(ctx, src.Name, metav1.GetOptions{}); err != nil {
			refuse(ctx, c, pvc, prov, fmt.Sprintf("clone source %s/%s: %v", ns, src.Name, err))
			return
		}
		pv.Annotations[AnnotationClonedFrom] = ns + "/" + src.Name
	}
	if _, err := c.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		refuse(ctx, c, pvc, prov, "create PV: "+err.Error())
	}
}

// refuse records why a claim was not provisioned, as an event on it.
func refuse(ctx context.Context, c kubernetes.Interface, pvc *corev1.PersistentVolumeClaim, prov, why string) {
	now := metav1.Now()
	_, _ = c.CoreV1().Events(pvc.Namespace).Create(ctx, &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{GenerateName: pvc.Name + ".", Namespace: pvc.Namespace},
		InvolvedObject: corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: pvc.Namespace,
			Name: pvc.Name, UID: pvc.UID},
		Reason: "ProvisioningFailed", Message: why, Type: corev1.EventTypeWarning,
		Source: corev1.EventSource{Component: prov}, FirstTimestamp: now, LastTimestamp: now, Count: 1,
	}, metav1.CreateOptions{})
}

// reclaim deletes a released PV of the test provisioners whose policy is
// Delete, as the external provisioner does once the PV controller releases it.
func reclaim(ctx context.Context, c kubernetes.Interface, pv *corev1.PersistentVolume) {
	if _, ours := map[string]bool{provisionerClone: true, provisionerCopy: true, provisionerNoClone: true}[pv.Annotations[annProvisionedBy]]; !ours {
		return
	}
	if pv.Status.Phase != corev1.VolumeReleased || pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete {
		return
	}
	_ = c.CoreV1().PersistentVolumes().Delete(ctx, pv.Name, metav1.DeleteOptions{})
}
