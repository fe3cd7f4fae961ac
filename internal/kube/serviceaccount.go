package kube

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

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
