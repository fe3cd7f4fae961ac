package kube

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// What a new environment costs the API server (objects.go uses these).

// ServiceAccountName is the identity an environment's pod runs as: glenv's
// own, made with the namespace. The API server admits a pod only once its
// service account exists (plugin/pkg/admission/serviceaccount), and the
// "default" one is made by the controller-manager some time after the
// namespace: in a burst of new environments the ReplicaSet controller's
// pod creations were refused and retried with growing back-off, seconds
// per environment.
const ServiceAccountName = AppName

// ServiceAccountObject is the pod's service account: no token mounted, no
// permission granted (environment code has no business with the API
// server).
func ServiceAccountObject(s Spec) *corev1.ServiceAccount {
	no := false
	return &corev1.ServiceAccount{
		TypeMeta:                     metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
		ObjectMeta:                   s.stableMeta(ServiceAccountName),
		AutomountServiceAccountToken: &no,
	}
}

// serviceClusterIP is "None": an environment's Service is headless. The
// Ingress controller routes to the pod's endpoints, which it reads anyway,
// and a virtual IP per environment would cost the API server an IP
// allocation per new environment: in a burst of them the API server
// allocated about four a second, one after the other, and Service applies
// waiting behind them timed out after 60 s. Nor does a thousand preview
// environments then use up a cluster's Service range (a /20 on some
// managed clusters).
const serviceClusterIP = corev1.ClusterIPNone

// recreateService replaces a Service the API server refused to change,
// such as one an older glenv made with a virtual IP (a Service's clusterIP
// is immutable): the Ingress has no backend for the moment between.
func (r *Runtime) recreateService(ctx context.Context, s Spec, o any, body []byte, logf func(string, ...any)) (any, error) {
	ns := Namespace(s.HostLabel)
	if err := r.c.CoreV1().Services(ns).Delete(ctx, AppName, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("replace Service %s/%s: %w", ns, AppName, err)
	}
	logf("replaced Service %s/%s, which could not be changed in place (an older glenv gave it a virtual IP)", ns, AppName)
	return r.apply(ctx, s, o, body)
}
