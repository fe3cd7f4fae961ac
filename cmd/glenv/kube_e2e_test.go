package main_test

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/glenv/glenv/internal/kube"
	"github.com/glenv/glenv/internal/kube/kubetest"
)

// kubeRuntime: each environment is a namespace on the test control plane
// (kwok's fake node makes pods Ready; the test provisioner binds claims
// and records their clone source).
type kubeRuntime struct {
	c kubernetes.Interface
	// copies: the storage class's provisioner cannot clone, so auto
	// copies main's volume with a Job instead of a CSI clone.
	copies bool
}

func (k *kubeRuntime) class() string {
	if k.copies {
		return kubetest.StorageClassCopy
	}
	return kubetest.StorageClassClone
}

const kubeYML = "image: python:3.13-slim\nrun: python3 -m http.server $PORT\nhealth: /\nservices:\n  files: [uploads]\n"

func (k *kubeRuntime) env(t *testing.T) []string {
	cluster := kubetest.Shared(t)
	k.c = cluster.Client
	// Runs of the contract share the control plane and the names of
	// their namespaces: start without an earlier run's.
	t.Cleanup(func() {
		_ = k.c.CoreV1().Namespaces().Delete(context.Background(), kube.Namespace("main--app"), metav1.DeleteOptions{})
	})
	if err := namespaceGone(t.Context(), k.c, kube.Namespace("main--app")); err != nil {
		t.Fatalf("an earlier run's namespace: %v", err)
	}
	return []string{"GLENV_RUNTIME=kubernetes", "GLENV_KUBECONFIG=" + cluster.Kubeconfig, "GLENV_KUBERNETES_INGRESS_CLASS=nginx",
		"GLENV_KUBERNETES_STORAGE_CLASS=" + k.class(), "GLENV_KUBERNETES_VOLUME_CLONE=auto"}
}

func (k *kubeRuntime) files(marker string) map[string]string {
	return map[string]string{".glenv.yml": kubeYML, "index.html": marker + "\n"}
}

// seed: the fake node mounts nothing, so the parent's data is checked by
// the claim's clone source, or the copy Job, instead of a file.
func (k *kubeRuntime) seed(*testing.T, *glenv, envJSON) {}

func (k *kubeRuntime) opened(t *testing.T, g *glenv, mr envJSON, sha, marker string) {
	t.Helper()
	ctx := t.Context()
	ns := kube.Namespace("mr-1--app")
	nsObj, err := k.c.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("namespace %s: %v\n%s", ns, err, g.tail())
	}
	if nsObj.Labels[kube.LabelIntegration] != "app" || nsObj.Labels[kube.LabelMR] != "1" || nsObj.Labels[kube.LabelSHA] != sha {
		t.Errorf("namespace labels %v", nsObj.Labels)
	}
	k.rolledOut(t, ns, sha)
	if _, err := k.c.CoreV1().Services(ns).Get(ctx, kube.AppName, metav1.GetOptions{}); err != nil {
		t.Errorf("Service: %v", err)
	}
	ing, err := k.c.NetworkingV1().Ingresses(ns).Get(ctx, kube.AppName, metav1.GetOptions{})
	if err != nil || ing.Spec.Rules[0].Host != "mr-1--app.localhost" || *ing.Spec.IngressClassName != "nginx" {
		t.Errorf("Ingress %+v: %v", ing, err)
	}

	// services.files: a claim cloned from main's, bound by the
	// provisioner to a volume made from that source.
	claim, err := k.c.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "files-uploads", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("claim files-uploads: %v", err)
	}
	size := claim.Spec.Resources.Requests[corev1.ResourceStorage]
	if claim.Labels[kube.LabelEnvironment] != "mr-1" || claim.Labels[kube.LabelIntegration] != "app" || claim.Labels[kube.LabelMR] != "1" {
		t.Errorf("claim labels %v", claim.Labels)
	}
	if size.String() != "1Gi" || claim.Spec.StorageClassName == nil || *claim.Spec.StorageClassName != k.class() {
		t.Errorf("claim size %s class %v, want 1Gi in %s", size.String(), claim.Spec.StorageClassName, k.class())
	}
	parentNS := kube.Namespace("main--app")
	if k.copies {
		k.copied(t, g, mr, sha, claim, parentNS)
		return
	}
	ref := claim.Spec.DataSourceRef
	if ref == nil || ref.Kind != "PersistentVolumeClaim" || ref.Name != "files-uploads" || ref.Namespace == nil || *ref.Namespace != parentNS {
		t.Fatalf("claim dataSourceRef %+v, want main's %s/files-uploads", ref, parentNS)
	}
	if claim.Status.Phase != corev1.ClaimBound {
		t.Fatalf("claim files-uploads is %s, want Bound", claim.Status.Phase)
	}
	pv, err := k.c.CoreV1().PersistentVolumes().Get(ctx, claim.Spec.VolumeName, metav1.GetOptions{})
	if err != nil || pv.Annotations[kubetest.AnnotationClonedFrom] != parentNS+"/files-uploads" {
		t.Errorf("volume %s of the claim: %v, cloned from %q; want %s/files-uploads", claim.Spec.VolumeName, err, pv.Annotations[kubetest.AnnotationClonedFrom], parentNS)
	}

	// The checkout container's URL opens the exact tree, from glenv;
	// tampered with, it opens nothing.
	sec, err := k.c.CoreV1().Secrets(ns).Get(ctx, kube.SecretName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	treeURL := string(sec.Data[kube.TreeURLKey])
	if files := tarFiles(t, treeURL); files["index.html"] != marker+"\n" || files[".glenv.yml"] != kubeYML {
		t.Fatalf("tree at %s holds %v", treeURL, files)
	}
	if resp, err := http.Get(strings.Replace(treeURL, sha, strings.Repeat("0", 40), 1)); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("a tree URL re-pointed at another SHA: %v %v, want 404", resp, err)
	}

	// environment:logs reads the serving pod's log through the API
	// server. kwok's node has no kubelet to answer, so the answer is the
	// API server's refusal, naming the pod glenv asked.
	if _, stderr, code := g.run("", "environment:logs", "mr-1", "-i", "app"); code == 0 || !strings.Contains(stderr, "pod "+ns+"/app-") {
		t.Errorf("environment:logs on kwok: exit %d, stderr %q; want the pod's log asked for", code, stderr)
	}
}

// copied asserts the MR's claim holds a volume of its own that a copy Job
// filled from main's: bound ahead to it, no clone source, the deploy's log
// saying so.
func (k *kubeRuntime) copied(t *testing.T, g *glenv, mr envJSON, sha string, claim *corev1.PersistentVolumeClaim, parentNS string) {
	t.Helper()
	main, err := k.c.CoreV1().PersistentVolumeClaims(parentNS).Get(t.Context(), "files-uploads", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if claim.Spec.DataSourceRef != nil || claim.Status.Phase != corev1.ClaimBound || claim.Spec.VolumeName == "" || claim.Spec.VolumeName == main.Spec.VolumeName {
		t.Fatalf("claim files-uploads: source %v, %s to %q (main's is %q); want no clone source, bound to a volume of its own",
			claim.Spec.DataSourceRef, claim.Status.Phase, claim.Spec.VolumeName, main.Spec.VolumeName)
	}
	a, ok := g.deployActivity(mr.ID, sha)
	if log := g.activityLog(a.ID); !ok || !strings.Contains(log, "copy Job "+parentNS+"/glenv-copy-") || !strings.Contains(log, "no CSI driver") {
		t.Errorf("the deploy's log does not say main's volume was copied, and why:\n%s", log)
	}
}

// rolledOut asserts the Deployment has rolled out sha.
func (k *kubeRuntime) rolledOut(t *testing.T, ns, sha string) {
	t.Helper()
	d, err := k.c.AppsV1().Deployments(ns).Get(t.Context(), kube.AppName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if done, _ := kube.Rollout(d); !done || d.Spec.Template.Annotations[kube.AnnotationSHA] != sha || d.Spec.Template.Spec.Containers[0].Image != "python:3.13-slim" {
		t.Fatalf("Deployment not rolled out at %s with the image: %v %+v", sha[:8], d.Spec.Template.Annotations, d.Status)
	}
}

func (k *kubeRuntime) pushed(t *testing.T, g *glenv, mr envJSON, old, sha, marker string) {
	t.Helper()
	ns := kube.Namespace("mr-1--app")
	k.rolledOut(t, ns, sha)
	// The claim is made once: a push keeps the environment's data.
	claim, err := k.c.CoreV1().PersistentVolumeClaims(ns).Get(t.Context(), "files-uploads", metav1.GetOptions{})
	if err != nil || claim.Status.Phase != corev1.ClaimBound {
		t.Errorf("claim files-uploads after the push: %v %v", claim, err)
	}
}

func (k *kubeRuntime) gone(t *testing.T, g *glenv, mr, main envJSON) {
	t.Helper()
	ctx := t.Context()
	ns := kube.Namespace("mr-1--app")
	if _, err := k.c.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("namespace %s still there after the MR closed: %v", ns, err)
	}
	if _, err := k.c.CoreV1().Namespaces().Get(ctx, kube.Namespace("main--app"), metav1.GetOptions{}); err != nil {
		t.Fatalf("main's namespace went too: %v", err)
	}
}

func tarFiles(t *testing.T, url string) map[string]string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	files := map[string]string{}
	tr := tar.NewReader(resp.Body)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		files[h.Name] = string(b)
	}
}

// namespaceGone deletes a namespace, if there, and watches until it is gone.
func namespaceGone(ctx context.Context, c kubernetes.Interface, name string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	ns, err := c.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := c.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	w, err := c.CoreV1().Namespaces().Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + name, ResourceVersion: ns.ResourceVersion})
	if err != nil {
		return err
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("namespace %s not gone within 2m", name)
		case ev, ok := <-w.ResultChan():
			if !ok {
				return namespaceGone(ctx, c, name)
			}
			if ev.Type == watch.Deleted {
				return nil
			}
		}
	}
}
