package kube

import (
	"context"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// A wait for a claim's deletion whose watch is too old to resume, while the
// claim is already gone: a watch started again from now would never say
// so, and the deploy would wait until its deadline. It reads the claim
// first and is done.
func TestAWaitForADeletionWhoseWatchExpiredSeesTheObjectAlreadyGone(t *testing.T) {
	c := fake.NewClientset()
	watches := 0
	c.PrependWatchReactor("persistentvolumeclaims", func(k8stesting.Action) (bool, watch.Interface, error) {
		watches++
		if watches == 1 {
			return true, nil, apierrors.NewResourceExpired("too old resource version")
		}
		return true, watch.NewFake(), nil // a watch from now: silent, as for an object already gone
	})
	r, err := New(Options{Client: c, Source: &Source{Dir: t.TempDir()}, TreeURL: func(string, string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := r.waitFor(ctx, claimWatch(r, "glenv-mr-1--app", "glenv-staging-uploads", "41"), nil); err != nil {
		t.Fatalf("waiting for a claim already deleted: %v", err)
	}
}
