package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"github.com/glenv/glenv/internal/lifecycle"
	"github.com/glenv/glenv/internal/slug"
	"github.com/glenv/glenv/internal/store"
)

const (
	shaA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	shaB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

// fakeRuntime records what the workers ask of a runtime. Deploy blocks on
// hold (when set) until it is closed or the deploy's context ends, and
// reports each call on started, so tests wait on events, not time.
type fakeRuntime struct {
	mu      sync.Mutex
	calls   []string // "reset 3", "deploy 3 <sha>", "remove 3"
	fail    error
	hold    chan struct{}
	started chan int64
}

func (r *fakeRuntime) record(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, s)
}

func (r *fakeRuntime) Calls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.calls...)
}

func (r *fakeRuntime) Deploy(ctx context.Context, req DeployRequest) error {
	r.record("deploy " + req.Env.Name + " " + req.SHA[:8])
	if r.started != nil {
		r.started <- req.Env.ID
	}
	if r.hold != nil {
		select {
		case <-r.hold:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return r.fail
}

func (r *fakeRuntime) Remove(ctx context.Context, env store.Environment, log func(string)) error {
	r.record("remove " + env.Name)
	return nil
}

func (r *fakeRuntime) ResetData(ctx context.Context, envID int64) error {
	r.record("reset")
	return nil
}

// world is one integration "app" (default branch main) on a store, with
// the environments service built but River not started: tests run the
// workers' Work themselves, one job at a time.
type world struct {
	t  testing.TB
	s  *store.Store
	q  *Environments
	rt *fakeRuntime
	in store.Integration
}

func newWorld(t testing.TB, s *store.Store) *world {
	t.Helper()
	ctx := context.Background()
	in := store.Integration{Name: "app", Type: "gitlab", BaseURL: "http://gitlab.invalid", UserFacingURL: "http://gitlab.invalid",
		GitLabProject: "group/app", ProjectID: 7, ProjectPath: "group/app", DefaultBranch: "main", TokenSealed: "sealed-token",
		WebhookSecretSealed: "sealed-secret", Space: "root", FetchBranches: true, PruneBranches: true, BuildMergeRequests: true,
		MergeRequestsCloneParentData: true, BuildTags: "v*"}
	if err := store.CreateIntegration(ctx, s.DB, &in); err != nil {
		t.Fatal(err)
	}
	rt := &fakeRuntime{}
	q, err := NewQueue(s, Deps{Runtime: rt}, QueueConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return &world{t: t, s: s, q: q, rt: rt, in: in}
}

// env stores an environment of the integration in state, waiting for
// activity pending (0: none).
func (w *world) env(name, kind, state string, pending int64) store.Environment {
	w.t.Helper()
	e := store.Environment{IntegrationID: w.in.ID, IntegrationName: "app", ProjectID: 7, Name: name, Slug: slug.Environment(name),
		Host: slug.Host(slug.Environment(name), "app"), Kind: kind, Ref: name, HeadSHA: shaB, DeployedSHA: shaA, State: state,
		Tier: lifecycle.Tier(lifecycle.EnvKind(kind), name, "main"), PendingActivityID: pending}
	if name != "main" {
		e.Parent = "main"
	}
	if state == store.StateInactive {
		e.DeployedSHA = ""
	}
	if err := store.SaveEnvironment(context.Background(), w.s.DB, &e); err != nil {
		w.t.Fatal(err)
	}
	return e
}

// activity stores a pending activity of kind for e, as a transition would.
func (w *world) activity(e store.Environment, kind string) int64 {
	w.t.Helper()
	a := store.Activity{IntegrationName: "app", EnvironmentID: e.ID, EnvironmentName: e.Name, Kind: kind, State: store.ActivityPending}
	if err := store.InsertActivity(context.Background(), w.s.DB, &a); err != nil {
		w.t.Fatal(err)
	}
	return a.ID
}

func (w *world) get(id int64) store.Environment {
	w.t.Helper()
	e, err := store.GetEnvironmentOrTombstone(context.Background(), w.s.Reader(), id)
	if err != nil {
		w.t.Fatal(err)
	}
	return e
}

func (w *world) act(id int64) store.Activity {
	w.t.Helper()
	a, err := store.GetActivity(context.Background(), w.s.Reader(), id)
	if err != nil {
		w.t.Fatal(err)
	}
	return a
}

// jobs returns the args of the jobs of kind waiting to run.
func jobsOf[T river.JobArgs](w *world) []T {
	w.t.Helper()
	var zero T
	rows, err := w.s.Reader().QueryContext(context.Background(),
		`SELECT `+argsText(w.s)+` FROM river_job WHERE kind = $1 AND state IN ('available', 'scheduled', 'retryable') ORDER BY id`, zero.Kind())
	if err != nil {
		w.t.Fatal(err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		var raw []byte
		var v T
		if err := rows.Scan(&raw); err != nil {
			w.t.Fatal(err)
		}
		if err := json.Unmarshal(raw, &v); err != nil {
			w.t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

// discardJobs marks every job done, as if River had run and forgotten them.
func (w *world) discardJobs() {
	w.t.Helper()
	if _, err := w.s.DB.ExecContext(context.Background(), `DELETE FROM river_job`); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) deploy(ctx context.Context, a DeployArgs) error {
	return (&deployWorker{q: w.q, deps: w.q.deps}).Work(ctx, &river.Job[DeployArgs]{Args: a})
}

func (w *world) remove(ctx context.Context, a DeleteArgs) error {
	return (&deleteWorker{q: w.q, deps: w.q.deps}).Work(ctx, &river.Job[DeleteArgs]{Args: a})
}

func wantState(t *testing.T, e store.Environment, state string) {
	t.Helper()
	if e.State != state {
		t.Fatalf("environment %s is %s, want %s", e.Name, e.State, state)
	}
}

func wantRefused(t *testing.T, err error, part string) {
	t.Helper()
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), part) {
		t.Fatalf("err = %v, want refused with %q", err, part)
	}
}

// within fails the test when ch yields nothing in time.
func within[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}

func jobFor[T river.JobArgs](a T) *river.Job[T] { return &river.Job[T]{Args: a} }
