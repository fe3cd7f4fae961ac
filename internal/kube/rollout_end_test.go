package kube

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	glruntime "github.com/glenv/glenv/internal/runtime"
)

func TestRolloutEnd(t *testing.T) {
	named := map[string]string{AnnotationEnvironmentID: "4", AnnotationActivity: "9", AnnotationSHA: "abc"}
	available := appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 1, UpdatedReplicas: 1, AvailableReplicas: 1,
		Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue}}}
	stuck := appsv1.DeploymentStatus{ObservedGeneration: 2, Conditions: []appsv1.DeploymentCondition{
		{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse, Reason: "ProgressDeadlineExceeded", Message: "slow"}}}
	cases := []struct {
		name        string
		annotations map[string]string
		generation  int64
		status      appsv1.DeploymentStatus
		want        glruntime.RolloutEnd
		ended       bool
	}{
		{"a rolled-out Deployment reports its environment, activity and SHA", named, 2, available,
			glruntime.RolloutEnd{EnvironmentID: 4, ActivityID: 9, SHA: "abc"}, true},
		{"a Deployment past its progress deadline reports the failure", named, 2, stuck,
			glruntime.RolloutEnd{EnvironmentID: 4, ActivityID: 9, SHA: "abc", Failure: "x"}, true},
		{"a spec the controller has not seen has not ended", named, 3, available, glruntime.RolloutEnd{}, false},
		{"a Deployment that names no deploy reports nothing", map[string]string{AnnotationSHA: "abc"}, 2, available, glruntime.RolloutEnd{}, false},
		{"a malformed activity reports nothing", map[string]string{AnnotationEnvironmentID: "4", AnnotationActivity: "x"}, 2, available, glruntime.RolloutEnd{}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Annotations: c.annotations, Generation: c.generation}, Status: c.status}
			got, ended := rolloutEnd(d)
			if ended != c.ended {
				t.Fatalf("ended %v, want %v (%+v)", ended, c.ended, got)
			}
			if c.want.Failure != "" {
				if got.Failure == "" {
					t.Fatalf("no failure in %+v", got)
				}
				got.Failure = c.want.Failure
			}
			if got != c.want {
				t.Errorf("got %+v, want %+v", got, c.want)
			}
		})
	}
}
