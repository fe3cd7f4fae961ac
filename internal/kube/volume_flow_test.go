package kube_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/glenv/glenv/internal/gitlabtest"
	"github.com/glenv/glenv/internal/kube"
	"github.com/glenv/glenv/internal/kube/kubetest"
	"github.com/glenv/glenv/internal/store"
)

// logBook keeps what deploys log, to assert on.
type logBook struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBook) add(t *testing.T) func(string) {
	return func(s string) {
		t.Log(s)
		l.mu.Lock()
		l.b.WriteString(s)
		l.mu.Unlock()
	}
}

func (l *logBook) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// filesWorld deploys a parent with a files volume in class, and returns
// the parent and a commit with services.files.
func filesWorld(t *testing.T, ctx context.Context, host string, adjust func(*kube.Options)) (*kubeWorld, store.Environment, string) {
	t.Helper()
	w := newKubeWorldTB(t, adjust)
	sha := w.gl.Commit(t, w.project.ID, gitlabtest.Commit{Branch: "files-" + host,
		Files: map[string]string{".glenv.yml": glenvYML + "services:\n  files: [uploads]\n"}})
	parent := store.Environment{ID: 100, Name: "main", Slug: "main", Host: "main--" + host}
	if err := w.rt.Deploy(ctx, w.request(parent, sha)); err != nil {
		t.Fatalf("deploy the parent: %v", err)
	}
	return w, parent, sha
}

// Where the storage class's provisioner is no CSI driver (the test class
// glenv-copy refuses any data source, as such provisioners do), auto
// copies: a Job in the parent's namespace mounts the parent's claim and a
// staging claim, kwok completes its pod (the pod-complete stage of Job
// pods), and the staging volume is handed over to the MR's claim. Nothing
// of the copy is left behind, and the volume is deleted with the MR again.
func TestFilesAreCopiedByAJobWhereTheStorageClassCannotClone(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	w, parent, sha := filesWorld(t, ctx, "cp", func(o *kube.Options) { o.StorageClass = kubetest.StorageClassCopy })
	c := w.cluster.Client
	parentClaim, err := c.CoreV1().PersistentVolumeClaims("glenv-main--cp").Get(ctx, "files-uploads", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}

	env := store.Environment{ID: 101, Name: "mr-5", Slug: "mr-5", Kind: "mr", MRIID: 5, IntegrationName: "app", Host: "mr-5--cp"}
	req := w.request(env, sha)
	req.Parent, req.CloneParentData = &parent, true
	var logs logBook
	req.Log = logs.add(t)
	if err := w.rt.Deploy(ctx, req); err != nil {
		t.Fatalf("deploy the MR: %v", err)
	}
	if !strings.Contains(logs.String(), "no CSI driver") || !strings.Contains(logs.String(), "copy Job glenv-main--cp/glenv-copy-") {
		t.Errorf("the deploy's log does not say it copied, and why:\n%s", logs.String())
	}
	claim, err := c.CoreV1().PersistentVolumeClaims("glenv-mr-5--cp").Get(ctx, "files-uploads", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the MR's claim: %v", err)
	}
	if claim.Status.Phase != corev1.ClaimBound || claim.Spec.DataSourceRef != nil || claim.Labels[kube.LabelEnvironment] != "mr-5" {
		t.Fatalf("the MR's claim: %s, source %v, labels %v; want Bound, no data source, the environment's labels", claim.Status.Phase, claim.Spec.DataSourceRef, claim.Labels)
	}
	if claim.Spec.VolumeName == parentClaim.Spec.VolumeName {
		t.Fatal("the MR's claim got the parent's own volume, not a copy")
	}
	pv, err := c.CoreV1().PersistentVolumes().Get(ctx, claim.Spec.VolumeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete || pv.Labels[kube.LabelCopyTo] != "" || pv.Annotations[kube.AnnotationReclaimPolicy] != "" {
		t.Errorf("the copied volume: policy %s, labels %v, annotations %v; want its own Delete back and glenv's marks gone",
			pv.Spec.PersistentVolumeReclaimPolicy, pv.Labels, pv.Annotations)
	}
	jobs, err := c.BatchV1().Jobs("glenv-main--cp").List(ctx, metav1.ListOptions{LabelSelector: kube.LabelCopyTo})
	if err != nil || len(jobs.Items) != 0 {
		t.Errorf("copy Jobs left in the parent's namespace: %v %v", jobs, err)
	}
	claims, err := c.CoreV1().PersistentVolumeClaims("glenv-main--cp").List(ctx, metav1.ListOptions{})
	if err != nil || len(claims.Items) != 1 {
		t.Errorf("the parent's namespace holds %d claims (%v), want only its own", len(claims.Items), err)
	}

	// Removing the MR deletes its namespace, the claim, and so the volume.
	if err := w.rt.Remove(ctx, env, func(s string) { t.Log(s) }); err != nil {
		t.Fatal(err)
	}
	if err := waitVolumeGone(ctx, c, pv.Name); err != nil {
		t.Fatalf("the copied volume after the MR's removal: %v", err)
	}
}

// A CSI driver that cannot clone (no CLONE_VOLUME capability) refuses a
// clone with a ProvisioningFailed event, and the claim would stay Pending
// for good. Auto follows its first clone of a class: on the refusal it
// replaces the claim with a copy, and copies for that class from then on,
// without asking the driver again.
func TestAutoCopiesWhereTheCSIDriverRefusesToClone(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	w, parent, sha := filesWorld(t, ctx, "nc", func(o *kube.Options) { o.StorageClass = kubetest.StorageClassNoClone })
	c := w.cluster.Client
	for i, mr := range []int64{7, 8} {
		env := store.Environment{ID: 110 + int64(i), Name: fmt.Sprintf("mr-%d", mr), Slug: fmt.Sprintf("mr-%d", mr), Kind: "mr", MRIID: mr,
			IntegrationName: "app", Host: fmt.Sprintf("mr-%d--nc", mr)}
		req := w.request(env, sha)
		req.Parent, req.CloneParentData = &parent, true
		var logs logBook
		req.Log = logs.add(t)
		if err := w.rt.Deploy(ctx, req); err != nil {
			t.Fatalf("deploy %s: %v", env.Name, err)
		}
		ns := "glenv-" + env.Host
		claim, err := c.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "files-uploads", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("%s's claim: %v", env.Name, err)
		}
		if claim.Status.Phase != corev1.ClaimBound || claim.Spec.DataSourceRef != nil {
			t.Fatalf("%s's claim: %s, source %v; want Bound to a copy", env.Name, claim.Status.Phase, claim.Spec.DataSourceRef)
		}
		refusals, err := c.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "reason=ProvisioningFailed"})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if !strings.Contains(logs.String(), "refused to clone files-uploads") || !strings.Contains(logs.String(), "copy Job glenv-main--nc/glenv-copy-") {
				t.Errorf("the first deploy's log does not say the driver refused and it copied:\n%s", logs.String())
			}
			if len(refusals.Items) == 0 {
				t.Errorf("no ProvisioningFailed event in %s: the driver was never asked to clone", ns)
			}
			continue
		}
		if !strings.Contains(logs.String(), "refused a clone") || len(refusals.Items) != 0 {
			t.Errorf("the second deploy asked the driver again (%d refusals) or does not say why it copies:\n%s", len(refusals.Items), logs.String())
		}
	}
}

// A copy that fails fails the deploy with the Job's own reason, and leaves
// neither Job nor staging claim nor an empty claim for the MR. The test
// image glenv.test/fails makes kwok fail the Job's pod with exit code 1
// (the pod-fail stage).
func TestAFailedCopyFailsTheDeployWithTheJobsReason(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	w, parent, sha := filesWorld(t, ctx, "cf", func(o *kube.Options) {
		o.StorageClass, o.VolumeClone, o.FetchImage = kubetest.StorageClassClone, kube.CloneCopy, "glenv.test/fails"
	})
	c := w.cluster.Client
	env := store.Environment{ID: 103, Name: "mr-6", Slug: "mr-6", Kind: "mr", MRIID: 6, IntegrationName: "app", Host: "mr-6--cf"}
	req := w.request(env, sha)
	req.Parent, req.CloneParentData = &parent, true
	err := w.rt.Deploy(ctx, req)
	if err == nil || !strings.Contains(err.Error(), "copying files-uploads from glenv-main--cf failed") || !strings.Contains(err.Error(), "PodFailurePolicy") {
		t.Fatalf("deploy with a failing copy: %v; want the copy's failure with the Job's reason", err)
	}
	t.Logf("the failed deploy says: %v", err)
	if _, err := c.CoreV1().PersistentVolumeClaims("glenv-mr-6--cf").Get(ctx, "files-uploads", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the MR's claim after a failed copy: %v, want none (no empty claim in its place)", err)
	}
	jobs, err := c.BatchV1().Jobs("glenv-main--cf").List(ctx, metav1.ListOptions{LabelSelector: kube.LabelCopyTo})
	if err != nil || len(jobs.Items) != 0 {
		t.Errorf("copy Jobs left after the failure: %d %v", len(jobs.Items), err)
	}
	claims, err := c.CoreV1().PersistentVolumeClaims("glenv-main--cf").List(ctx, metav1.ListOptions{LabelSelector: kube.LabelCopyTo})
	if err != nil {
		t.Fatal(err)
	}
	for _, cl := range claims.Items {
		// Its deletion may still wait for the failed pod's to finish.
		if cl.DeletionTimestamp == nil {
			t.Errorf("staging claim %s left after the failure", cl.Name)
		}
	}

	// The retry, by a restarted glenv whose copy works: the namespace made
	// by the failed deploy exists, but the claim does not, so the data is
	// still to be copied; the MR must not start on an empty volume.
	opts := w.opts
	opts.FetchImage = "busybox:1.37"
	rt, err := kube.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	var logs logBook
	req.Log = logs.add(t)
	if err := rt.Deploy(ctx, req); err != nil {
		t.Fatalf("the retry with a working copy: %v", err)
	}
	if !strings.Contains(logs.String(), "copy Job glenv-main--cf/glenv-copy-") {
		t.Errorf("the retry did not copy the parent's files:\n%s", logs.String())
	}
	claim, err := c.CoreV1().PersistentVolumeClaims("glenv-mr-6--cf").Get(ctx, "files-uploads", metav1.GetOptions{})
	if err != nil || claim.Status.Phase != corev1.ClaimBound {
		t.Fatalf("the MR's claim after the retry: %v %v; want a bound copy", claim, err)
	}
}

// waitVolumeGone watches a PV until it is deleted.
func waitVolumeGone(ctx context.Context, c kubernetes.Interface, name string) error {
	pvs := c.CoreV1().PersistentVolumes()
	pv, err := pvs.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	wi, err := pvs.Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + name, ResourceVersion: pv.ResourceVersion})
	if err != nil {
		return err
	}
	defer wi.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev, ok := <-wi.ResultChan():
			if !ok {
				return waitVolumeGone(ctx, c, name)
			}
			if ev.Type == "DELETED" {
				return nil
			}
		}
	}
}
