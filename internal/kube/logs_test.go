package kube_test

import (
	"errors"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/glenv/glenv/internal/kube"
)

func TestLogPod(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	pod := func(name string, age time.Duration, isReady, deleting bool) corev1.Pod {
		p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(t0.Add(-age))}}
		st := corev1.ConditionFalse
		if isReady {
			st = corev1.ConditionTrue
		}
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: st}}
		if deleting {
			now := metav1.NewTime(t0)
			p.DeletionTimestamp = &now
		}
		return p
	}
	for _, tc := range []struct {
		name string
		pods []corev1.Pod
		want string
	}{
		{"during a rollout the ready pod serving is shown, not the new one starting",
			[]corev1.Pod{pod("new", time.Second, false, false), pod("old", time.Hour, true, false)}, "old"},
		{"of two ready pods the newer is shown",
			[]corev1.Pod{pod("old", time.Hour, true, false), pod("new", time.Second, true, false)}, "new"},
		{"a pod being deleted is not shown",
			[]corev1.Pod{pod("going", time.Second, true, true), pod("staying", time.Hour, false, false)}, "staying"},
		{"with none ready the newest is shown (its crash is what to read)",
			[]corev1.Pod{pod("a", time.Hour, false, false), pod("b", time.Minute, false, false)}, "b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, err := kube.LogPod(tc.pods); err != nil || got != tc.want {
				t.Fatalf("LogPod = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	t.Run("no pod at all says where to look instead", func(t *testing.T) {
		if _, err := kube.LogPod(nil); !errors.Is(err, kube.ErrNoPod) {
			t.Fatalf("LogPod(nil) = %v, want ErrNoPod", err)
		}
	})
}

func TestLogOptions(t *testing.T) {
	t.Run("follow streams the app container with no byte limit", func(t *testing.T) {
		o := kube.LogOptions(true)
		if !o.Follow || o.Container != kube.AppName || o.LimitBytes != nil {
			t.Fatalf("%+v", o)
		}
	})
	t.Run("a read without follow is capped", func(t *testing.T) {
		o := kube.LogOptions(false)
		if o.Follow || o.Container != kube.AppName || o.LimitBytes == nil || *o.LimitBytes != kube.LogLimit {
			t.Fatalf("%+v", o)
		}
	})
}

func TestCloneDropped(t *testing.T) {
	parentNS := "glenv-main--app"
	asked := &corev1.PersistentVolumeClaim{Spec: corev1.PersistentVolumeClaimSpec{
		DataSourceRef: &corev1.TypedObjectReference{Kind: "PersistentVolumeClaim", Name: "files-uploads", Namespace: &parentNS}}}
	plain := &corev1.PersistentVolumeClaim{}
	for _, tc := range []struct {
		name          string
		asked, stored *corev1.PersistentVolumeClaim
		want          bool
	}{
		{"an API server without CrossNamespaceVolumeDataSource stores the clone without its source", asked, plain, true},
		{"an API server with it keeps the source", asked, asked, false},
		{"a claim that asked for no clone lost nothing", plain, plain, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := kube.CloneDropped(tc.asked, tc.stored); got != tc.want {
				t.Fatalf("CloneDropped = %v, want %v", got, tc.want)
			}
		})
	}
}
