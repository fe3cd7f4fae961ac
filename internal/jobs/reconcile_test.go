package jobs

import (
	"context"
	"testing"

	"github.com/glenv/glenv/internal/lifecycle"
	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/store/storetest"
)

// fakeRemote is GitLab as reconcile reads it; listed records which listings
// were read.
type fakeRemote struct {
	defaultBranch string
	branches      map[string]string
	tags          map[string]string
	mrs           []lifecycle.MergeRequest
	listed        []string
}

func (r *fakeRemote) ListBranches(context.Context, int64) (map[string]string, error) {
	r.listed = append(r.listed, "branches")
	return r.branches, nil
}

func (r *fakeRemote) ListTags(context.Context, int64) (map[string]string, error) {
	r.listed = append(r.listed, "tags")
	return r.tags, nil
}

func (r *fakeRemote) ListOpenMergeRequests(context.Context, int64) ([]lifecycle.MergeRequest, error) {
	r.listed = append(r.listed, "merge requests")
	return r.mrs, nil
}

func (r *fakeRemote) DefaultBranch(context.Context, int64) (string, error) {
	return r.defaultBranch, nil
}

func reconcileWorld(t *testing.T, s *store.Store, remote *fakeRemote, options func(*store.Integration)) *world {
	t.Helper()
	w := newWorld(t, s)
	options(&w.in)
	if err := store.UpdateIntegration(context.Background(), s.DB, &w.in); err != nil {
		t.Fatal(err)
	}
	q, err := NewQueue(s, Deps{Runtime: w.rt, RemoteFor: func(store.Integration) (Remote, error) { return remote, nil }}, QueueConfig{})
	if err != nil {
		t.Fatal(err)
	}
	w.q = q
	return w
}

// Reconcile used to read "not listed" as "none exist" and deleted every
// merge request and tag environment when their option was off, while
// webhooks kept deploying them.
func TestReconcileKeepsWhatWebhooksKeepWhenOptionsAreOff(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		remote := &fakeRemote{defaultBranch: "main", branches: map[string]string{"main": shaB},
			tags: map[string]string{"v1": shaA},
			mrs: []lifecycle.MergeRequest{{IID: 5, State: "opened", SourceBranch: "feature", TargetBranch: "main",
				SourceProjectID: 7, TargetProjectID: 7, HeadSHA: shaB}}}
		w := reconcileWorld(t, s, remote, func(in *store.Integration) { in.BuildMergeRequests, in.BuildTags = false, "" })
		w.env("main", "branch", store.StateActive, 0)
		mr := w.env("mr-5", "mr", store.StateActive, 0)
		tag := w.env("tag-v1", "tag", store.StateActive, 0)
		if _, err := s.DB.ExecContext(ctx, `UPDATE environments SET mr_iid = 5, head_sha = $1 WHERE id = $2`, shaB, mr.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.DB.ExecContext(ctx, `UPDATE environments SET ref = 'v1', head_sha = $1 WHERE id = $2`, shaA, tag.ID); err != nil {
			t.Fatal(err)
		}
		applied, err := w.q.ReconcileNow(ctx, "app")
		if err != nil {
			t.Fatal(err)
		}
		if len(applied.Changed) != 0 {
			t.Fatalf("reconcile changed %v; with the options off the existing environments must be kept", applied.Changed)
		}
		wantState(t, w.get(mr.ID), store.StateActive)
		wantState(t, w.get(tag.ID), store.StateActive)

		// The listings the environments need were read, so a close still deletes.
		remote.mrs, remote.listed = nil, nil
		if _, err := w.q.ReconcileNow(ctx, "app"); err != nil {
			t.Fatal(err)
		}
		wantState(t, w.get(mr.ID), store.StateStopping)
		wantState(t, w.get(tag.ID), store.StateActive)
		if len(remote.listed) != 3 {
			t.Fatalf("listings read: %v, want branches, tags and merge requests", remote.listed)
		}
	})
}

// A renamed default branch (master → main) is picked up by reconcile with a
// targeted update: what changed meanwhile in the integration survives, and
// the environments below the old default move below the new one.
func TestReconcileFollowsARenamedDefaultBranch(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		remote := &fakeRemote{defaultBranch: "trunk", branches: map[string]string{"main": shaB, "trunk": shaA, "feature": shaB}}
		w := reconcileWorld(t, s, remote, func(*store.Integration) {})
		main := w.env("main", "branch", store.StateActive, 0)
		feature := w.env("feature", "branch", store.StateInactive, 0)
		// Changed by someone else after reconcile's snapshot of the integration.
		if _, err := s.DB.ExecContext(ctx, `UPDATE integrations SET token_enc = 'rotated' WHERE id = $1`, w.in.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := w.q.ReconcileNow(ctx, "app"); err != nil {
			t.Fatal(err)
		}
		in, err := store.GetIntegration(ctx, s.Reader(), "app")
		if err != nil {
			t.Fatal(err)
		}
		if in.DefaultBranch != "trunk" || in.TokenSealed != "rotated" {
			t.Fatalf("integration: default %q token %q; want trunk and the rotated token kept", in.DefaultBranch, in.TokenSealed)
		}
		trunk, err := store.GetEnvironment(ctx, s.Reader(), "app", "trunk")
		if err != nil || trunk.State != store.StateBuilding || trunk.Tier != "production" {
			t.Fatalf("trunk: %+v %v; want created active as the default branch", trunk, err)
		}
		if got := w.get(feature.ID); got.Parent != "trunk" {
			t.Fatalf("feature's parent is %q, want trunk", got.Parent)
		}
		if got := w.get(main.ID); got.Parent != "trunk" || got.Tier != "staging" {
			t.Fatalf("old default: parent %q tier %q", got.Parent, got.Tier)
		}
	})
}

// Push and merge request payloads carry project.default_branch: a renamed
// default branch is followed with the next delivery, before deciding on it.
func TestADeliveryFollowsARenamedDefaultBranch(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		w := newWorld(t, s)
		feature := w.env("feature", "branch", store.StateInactive, 0)
		body := `{"object_kind":"push","project_id":7,"project":{"id":7,"default_branch":"trunk"},` +
			`"ref":"refs/heads/trunk","before":"0000000000000000000000000000000000000000","after":"` + shaA + `"}`
		other := `{"object_kind":"push","project_id":8,"project":{"id":8,"default_branch":"elsewhere"},` +
			`"ref":"refs/heads/x","before":"0000000000000000000000000000000000000000","after":"` + shaA + `"}`
		ds := []*store.Delivery{
			{IntegrationID: w.in.ID, IntegrationName: "app", Event: "Push Hook", IdempotencyKey: "k1", Headers: "{}", Body: body, Status: store.DeliveryAccepted},
			{IntegrationID: w.in.ID, IntegrationName: "app", Event: "Push Hook", IdempotencyKey: "k2", Headers: "{}", Body: other, Status: store.DeliveryAccepted},
		}
		if _, err := store.InsertDeliveries(ctx, s.DB, ds); err != nil {
			t.Fatal(err)
		}
		err := (&deliveryWorker{q: w.q, deps: w.q.deps}).Work(ctx, jobFor(ProcessDeliveryArgs{DeliveryIDs: []int64{ds[0].ID, ds[1].ID}}))
		if err != nil {
			t.Fatal(err)
		}
		in, _ := store.GetIntegration(ctx, s.Reader(), "app")
		if in.DefaultBranch != "trunk" {
			t.Fatalf("default branch %q, want trunk (and another project's event must not change it)", in.DefaultBranch)
		}
		trunk, err := store.GetEnvironment(ctx, s.Reader(), "app", "trunk")
		if err != nil || trunk.State != store.StateBuilding || trunk.Parent != "" || trunk.Tier != "production" {
			t.Fatalf("trunk: %+v %v; want the default branch's environment, active", trunk, err)
		}
		if got := w.get(feature.ID); got.Parent != "trunk" {
			t.Fatalf("feature's parent %q, want trunk", got.Parent)
		}
	})
}
