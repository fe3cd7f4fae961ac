package kube

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// Rollout decides a Deployment's rollout from its status alone: done once
// the controller has seen the latest spec, every replica runs it and is
// available; failed once the Progressing condition says
// ProgressDeadlineExceeded. The rules are kubectl's `rollout status`
// (staging/src/k8s.io/kubectl/pkg/polymorphichelpers/rollout_status.go),
// plus the Available condition the issue names.
func Rollout(d *appsv1.Deployment) (done bool, failure string) {
	if d.Generation > d.Status.ObservedGeneration {
		return false, "" // the controller has not seen this spec yet
	}
	available := false
	for _, c := range d.Status.Conditions {
		switch {
		case c.Type == appsv1.DeploymentProgressing && c.Reason == "ProgressDeadlineExceeded":
			return false, fmt.Sprintf("the Deployment %s/%s made no progress within its deadline (ProgressDeadlineExceeded: %s); see `glenv environment:logs` and the pods' events", d.Namespace, d.Name, c.Message)
		case c.Type == appsv1.DeploymentAvailable && c.Status == corev1.ConditionTrue:
			available = true
		}
	}
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	switch {
	case d.Status.UpdatedReplicas < want:
		return false, "" // new replicas still being created
	case d.Status.Replicas > d.Status.UpdatedReplicas:
		return false, "" // old replicas still terminating
	case d.Status.AvailableReplicas < d.Status.UpdatedReplicas:
		return false, "" // new replicas not available yet
	}
	return available, ""
}
