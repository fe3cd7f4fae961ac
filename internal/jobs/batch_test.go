package jobs

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/store/storetest"
)

// pushJSON is a push as GitLab sends it, reduced to what glenv reads.
func pushJSON(branch, before, after, defaultBranch string) string {
	return fmt.Sprintf(`{"object_kind":"push","event_name":"push","ref":"refs/heads/%s","before":"%s","after":"%s",`+
		`"checkout_sha":"%s","project_id":7,"project":{"id":7,"default_branch":"%s"},"commits":[],"total_commits_count":0}`,
		branch, before, after, after, defaultBranch)
}

// A batch reads the environments its deliveries concern up front and
// writes new environments and sync activities at its end; whatever it does
// must come out exactly as the same deliveries processed one by one: the
// same rows, ids, activities in the same order, the same jobs and results.
// The deliveries touch an environment created earlier in the batch, delete
// one, start a deploy between queued writes, and move the default branch.
func TestABatchAppliesItsDeliveriesExactlyAsOneByOne(t *testing.T) {
	zero := strings.Repeat("0", 40)
	bodies := []string{
		pushJSON("a", zero, shaA, "main"),
		pushJSON("b", zero, shaA, "main"),
		pushJSON("a", shaA, shaB, "main"),    // the environment created two deliveries ago
		pushJSON("main", zero, shaA, "main"), // the default branch's: deployed, a job and its activity
		pushJSON("c", zero, shaA, "main"),
		pushJSON("b", shaA, zero, "main"),  // deleted (prune-branches), created in this batch
		pushJSON("d", zero, shaB, "trunk"), // the default branch moved: parents rewritten
		pushJSON("a", shaB, shaA, "trunk"), // back to an earlier commit
	}
	for _, backend := range storetest.Backends() {
		t.Run(backend.Name, func(t *testing.T) {
			batched := runDeliveries(t, storetest.Open(t, backend), bodies, true)
			single := runDeliveries(t, storetest.Open(t, backend), bodies, false)
			if batched != single {
				t.Fatalf("one batch:\n%s\none by one:\n%s", batched, single)
			}
		})
	}
}

// runDeliveries stores bodies as push deliveries, processes them in one job
// (together) or one job each, and describes everything they left.
func runDeliveries(t *testing.T, s *store.Store, bodies []string, together bool) string {
	t.Helper()
	ctx := context.Background()
	w := newWorld(t, s)
	var ds []*store.Delivery
	for i, body := range bodies {
		ds = append(ds, &store.Delivery{IntegrationID: w.in.ID, IntegrationName: "app", Event: "Push Hook",
			IdempotencyKey: fmt.Sprint("k", i), Headers: "{}", Body: body, Status: store.DeliveryAccepted})
	}
	if _, err := store.InsertDeliveries(ctx, s.DB, ds); err != nil {
		t.Fatal(err)
	}
	worker := &deliveryWorker{q: w.q, deps: w.q.deps}
	var ids []int64
	for _, d := range ds {
		ids = append(ids, d.ID)
		if !together {
			if err := worker.Work(ctx, jobFor(ProcessDeliveryArgs{DeliveryIDs: []int64{d.ID}})); err != nil {
				t.Fatal(err)
			}
		}
	}
	if together {
		if err := worker.Work(ctx, jobFor(ProcessDeliveryArgs{DeliveryIDs: ids})); err != nil {
			t.Fatal(err)
		}
	}
	var b strings.Builder
	dump := func(query string, n int) {
		rows, err := s.Reader().QueryContext(ctx, query)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			vals := make([]any, n)
			ptrs := make([]any, n)
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for _, v := range vals {
				if raw, ok := v.([]byte); ok {
					v = string(raw)
				}
				fmt.Fprintf(&b, "%v|", v)
			}
			b.WriteByte('\n')
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	dump(`SELECT id, name, kind, state, ref, parent, head_sha, deployed_sha, tier, seen_shas, deleted_at <> 0, pending_activity_id
		FROM environments ORDER BY id`, 12)
	dump(`SELECT id, environment_id, environment_name, delivery_id, kind, state, sha, description FROM activities ORDER BY id`, 8)
	dump(`SELECT id, status, result FROM deliveries ORDER BY id`, 3)
	dump(`SELECT id, kind, `+argsText(s)+` FROM river_job ORDER BY id`, 3)
	return b.String()
}
