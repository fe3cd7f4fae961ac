package kube_test

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/glenv/glenv/internal/gitlabtest"
	"github.com/glenv/glenv/internal/kube"
	"github.com/glenv/glenv/internal/store"
)

// A new environment costs the API server no Service IP and no wait for the
// controller-manager's default service account; an environment an older
// glenv gave a virtual IP gets its Service replaced by a headless one.
func TestAnEnvironmentIsHeadlessAndRunsAsItsOwnServiceAccount(t *testing.T) {
	w := newKubeWorld(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	c := w.cluster.Client
	sha := w.gl.Commit(t, w.project.ID, gitlabtest.Commit{Branch: "older", Files: map[string]string{".glenv.yml": glenvYML, "requirements.txt": ""}})
	env := store.Environment{ID: 31, Name: "mr-31", Slug: "mr-31", Kind: "mr", MRIID: 31, IntegrationName: "app", Host: "mr-31--app"}
	ns := kube.Namespace(env.Host)
	// What an older glenv left: a Service with a virtual IP.
	if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	old := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: kube.AppName, Namespace: ns}, Spec: corev1.ServiceSpec{
		Selector: map[string]string{"glenv.io/component": kube.AppName},
		Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}}}
	if old, err := c.CoreV1().Services(ns).Create(ctx, old, metav1.CreateOptions{}); err != nil || old.Spec.ClusterIP == "" || old.Spec.ClusterIP == corev1.ClusterIPNone {
		t.Fatalf("the older Service: %v %v", old, err)
	}
	if err := w.rt.Deploy(ctx, w.request(env, sha)); err != nil {
		t.Fatalf("deploy over an older Service: %v", err)
	}
	svc, err := c.CoreV1().Services(ns).Get(ctx, kube.AppName, metav1.GetOptions{})
	if err != nil || svc.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Fatalf("Service clusterIP %q (%v), want headless (None)", svc.Spec.ClusterIP, err)
	}
	pods, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil || len(pods.Items) != 1 {
		t.Fatalf("pods %v %v", pods, err)
	}
	if sa := pods.Items[0].Spec.ServiceAccountName; sa != kube.ServiceAccountName {
		t.Fatalf("the pod runs as %q, want glenv's %q", sa, kube.ServiceAccountName)
	}
	acct, err := c.CoreV1().ServiceAccounts(ns).Get(ctx, kube.ServiceAccountName, metav1.GetOptions{})
	if err != nil || acct.AutomountServiceAccountToken == nil || *acct.AutomountServiceAccountToken {
		t.Fatalf("service account %+v %v, want one that mounts no token", acct, err)
	}
}
