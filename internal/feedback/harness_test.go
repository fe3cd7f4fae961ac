package feedback_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/glenv/glenv/internal/feedback"
	"github.com/glenv/glenv/internal/gitlab"
	"github.com/glenv/glenv/internal/gitlabtest"
	"github.com/glenv/glenv/internal/slug"
	"github.com/glenv/glenv/internal/store"
)

// world is one glenv integration on a real store, talking to the GitLab
// double. Tests move environments and deploy activities through the states
// internal/jobs moves them through, then sync and read the call log.
type world struct {
	t      testing.TB
	ctx    context.Context
	st     *store.Store
	gl     *gitlabtest.Server
	pid    int64
	bot    gitlabtest.User
	in     store.Integration
	deps   feedback.Deps
	syncer *feedback.Syncer
	logs   *syncBuffer
}

const publicURL = "http://glenv.test"

func newWorld(t testing.TB, st *store.Store, tune ...func(*feedback.Deps)) *world {
	t.Helper()
	gl := gitlabtest.New(t)
	bot := gl.AddUser(gitlabtest.User{Username: "glenv-bot"})
	p := gl.AddProject(gitlabtest.Project{PathWithNamespace: "group/app", Members: map[int64]int{bot.ID: 40}})
	gl.SetBranch(p.ID, "main", sha("main-1"))
	tok := gl.AddToken(gitlabtest.Token{UserID: bot.ID, Scopes: []string{"api"}, Name: "glenv"})
	in := store.Integration{Name: "app", Type: "gitlab", BaseURL: gl.URL, UserFacingURL: "https://gitlab.example.com",
		GitLabProject: "group/app", ProjectID: p.ID, ProjectPath: "group/app", DefaultBranch: "main",
		TokenSealed: tok, WebhookSecretSealed: "unused", Space: "root", BuildMergeRequests: true}
	ctx := context.Background()
	if err := store.CreateIntegration(ctx, st.DB, &in); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	deps := feedback.Deps{
		Store:     st,
		Token:     func(in store.Integration) (string, error) { return in.TokenSealed, nil }, // "sealed" = plain in tests
		EnvURL:    func(e store.Environment) string { return "http://" + e.Host + ".localhost:8080/" },
		PublicURL: publicURL,
		Logger:    slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		GitLab:    gitlab.Options{DialTimeout: time.Second, Timeout: 2 * time.Second, RetryMax: -1},
		Timing: feedback.Timing{Debounce: -1, RetryMin: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond,
			SyncTimeout: 10 * time.Second},
	}
	for _, f := range tune {
		f(&deps)
	}
	w := &world{t: t, ctx: ctx, st: st, gl: gl, pid: p.ID, bot: bot, in: in, deps: deps, logs: logs}
	w.syncer = feedback.NewSyncer(deps)
	return w
}

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// sha makes a deterministic 40-hex SHA from a label.
func sha(label string) string {
	s := fmt.Sprintf("%x", label)
	for len(s) < 40 {
		s += "0"
	}
	return s[:40]
}

// deploy is one deploy activity under test.
type deploy struct {
	w   *world
	env *store.Environment
	ID  int64
	SHA string
}

// openMR creates merge request iid from branch at commit and its
// environment mr-<iid>, building its first deploy (queued).
func (w *world) openMR(iid int64, branch, commit string) (*store.Environment, *deploy) {
	w.t.Helper()
	w.gl.SetBranch(w.pid, branch, commit)
	w.gl.SetMergeRequest(w.pid, gitlabtest.MergeRequest{IID: iid, Title: "Change", SourceBranch: branch, TargetBranch: "main", SHA: commit})
	name := fmt.Sprintf("mr-%d", iid)
	env := &store.Environment{IntegrationID: w.in.ID, IntegrationName: w.in.Name, ProjectID: w.pid, Name: name,
		Slug: slug.Environment(name), Kind: "mr", Ref: branch, Parent: "main", Tier: "development", MRIID: iid,
		State: store.StateBuilding}
	env.Host = slug.Host(env.Slug, w.in.Name)
	return env, w.queue(env, commit)
}

// branchEnv creates an active-to-be branch environment.
func (w *world) branchEnv(branch, commit string) (*store.Environment, *deploy) {
	w.t.Helper()
	w.gl.SetBranch(w.pid, branch, commit)
	env := &store.Environment{IntegrationID: w.in.ID, IntegrationName: w.in.Name, ProjectID: w.pid, Name: branch,
		Slug: slug.Environment(branch), Kind: "branch", Ref: branch, Parent: "main", Tier: "staging", State: store.StateBuilding}
	env.Host = slug.Host(env.Slug, w.in.Name)
	return env, w.queue(env, commit)
}

// push moves the environment's branch to commit and queues its deploy,
// superseding a deploy still queued or running (as jobs does).
func (w *world) push(env *store.Environment, commit string, older ...*deploy) *deploy {
	w.t.Helper()
	w.gl.SetBranch(w.pid, env.Ref, commit)
	for _, o := range older {
		o.finish(store.ActivityCancelled, "superseded by "+commit[:8])
	}
	env.State = store.StateBuilding
	return w.queue(env, commit)
}

func (w *world) queue(env *store.Environment, commit string) *deploy {
	w.t.Helper()
	env.HeadSHA = commit
	w.save(env)
	act := store.Activity{IntegrationName: w.in.Name, EnvironmentID: env.ID, EnvironmentName: env.Name,
		Kind: store.ActivityDeploy, State: store.ActivityPending, SHA: commit, Description: "push"}
	if err := store.InsertActivity(w.ctx, w.st.DB, &act); err != nil {
		w.t.Fatal(err)
	}
	return &deploy{w: w, env: env, ID: act.ID, SHA: commit}
}

func (w *world) save(env *store.Environment) {
	w.t.Helper()
	if err := store.SaveEnvironment(w.ctx, w.st.DB, env); err != nil {
		w.t.Fatal(err)
	}
}

// start is the deploy worker picking the deploy up.
func (d *deploy) start() *deploy {
	d.w.t.Helper()
	d.env.State = store.StateDeploying
	d.w.save(d.env)
	d.set(store.ActivityRunning, "")
	return d
}

// succeed and fail end the deploy as the deploy worker does.
func (d *deploy) succeed() *deploy {
	d.w.t.Helper()
	d.env.State, d.env.DeployedSHA = store.StateActive, d.SHA
	d.w.save(d.env)
	d.set(store.ActivityComplete, "deployed "+d.SHA[:8])
	return d
}

func (d *deploy) fail(reason string) *deploy {
	d.w.t.Helper()
	d.env.State = store.StateFailed
	d.w.save(d.env)
	d.set(store.ActivityFailed, reason)
	return d
}

func (d *deploy) finish(state, result string) { d.set(state, result) }

func (d *deploy) set(state, result string) {
	d.w.t.Helper()
	if err := store.SetActivityState(d.w.ctx, d.w.st.DB, d.ID, state, result); err != nil {
		d.w.t.Fatal(err)
	}
}

// close is a merge request closed: the environment stops, then is deleted.
func (w *world) close(env *store.Environment) {
	w.t.Helper()
	env.State = store.StateStopping
	w.save(env)
	env.State, env.DeletedAt = store.StateDeleted, store.Now()
	w.save(env)
}

// sync runs one sync of env and fails the test on error.
func (w *world) sync(env *store.Environment) {
	w.t.Helper()
	if err := w.syncer.Sync(w.ctx, env.ID); err != nil {
		w.t.Fatalf("sync %s: %v", env.Name, err)
	}
}

// calls returns the call log since the last call, compactly:
// "POST statuses/<sha8> running", "PUT notes/3", …; and empties it.
func (w *world) calls() []string {
	w.t.Helper()
	var out []string
	prefix := fmt.Sprintf("/api/v4/projects/%d/", w.pid)
	for _, c := range w.gl.Calls() {
		path := strings.TrimPrefix(c.Path, prefix)
		path, _ = url.PathUnescape(path)
		parts := strings.Split(path, "/")
		switch {
		case len(parts) == 2 && parts[0] == "statuses":
			path = "statuses/" + parts[1][:8]
		case len(parts) >= 3 && parts[0] == "merge_requests" && parts[2] == "notes":
			path = "notes"
			if len(parts) == 4 {
				path += "/" + parts[3]
			}
		}
		line := c.Method + " " + path
		var body map[string]any
		_ = json.Unmarshal(c.Body, &body)
		for _, k := range []string{"state", "status"} {
			if v, ok := body[k].(string); ok {
				line += " " + v
			}
		}
		switch {
		case c.Status == 0:
			line += " → cut off"
		case c.Status >= 300:
			line += fmt.Sprintf(" → %d", c.Status)
		}
		out = append(out, line)
	}
	w.gl.ResetCalls()
	return out
}

func (w *world) expectCalls(step string, want ...string) {
	w.t.Helper()
	got := w.calls()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		w.t.Errorf("%s: GitLab calls\n got: %q\nwant: %q", step, got, want)
	}
}

// statuses returns the glenv status states GitLab has for a SHA, oldest first.
func (w *world) statuses(commit string) []string {
	var out []string
	for _, s := range w.gl.Statuses(w.pid, commit) {
		out = append(out, s.Status)
	}
	return out
}

// notes returns the merge request's notes.
func (w *world) notes(iid int64) []gitlabtest.Note { return w.gl.Notes(w.pid, iid) }

func (w *world) exec(query string, args ...any) {
	w.t.Helper()
	if _, err := w.st.DB.ExecContext(w.ctx, query, args...); err != nil {
		w.t.Fatal(err)
	}
}

// queue runs River with feedback's workers on the world's store; notify
// queues a sync the way internal/jobs does.
type queue struct {
	w      *world
	client *river.Client[*sql.Tx]
}

func (w *world) startQueue(workers int) *queue {
	w.t.Helper()
	ws := river.NewWorkers()
	feedback.Register(w.deps)(ws)
	c, err := river.NewClient(w.st.RiverDriver(), &river.Config{
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: workers}},
		Workers:           ws,
		FetchCooldown:     5 * time.Millisecond,
		FetchPollInterval: 10 * time.Millisecond,
		PollOnly:          true,
		Logger:            slog.New(slog.NewTextHandler(w.logs, &slog.HandlerOptions{Level: slog.LevelWarn})),
		MaxAttempts:       1000,
	})
	if err != nil {
		w.t.Fatal(err)
	}
	if err := c.Start(w.ctx); err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = c.Stop(ctx)
	})
	return &queue{w: w, client: c}
}

func (q *queue) notify(env *store.Environment) {
	q.w.t.Helper()
	err := q.w.st.Tx(q.w.ctx, func(tx *sql.Tx) error { return feedback.Notify(q.w.ctx, tx, q.client, env.ID) })
	if err != nil {
		q.w.t.Fatal(err)
	}
}

// idle waits until no feedback job waits or runs, or fails after timeout.
func (q *queue) idle(timeout time.Duration) {
	q.w.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		var n int
		err := q.w.st.Reader().QueryRowContext(q.w.ctx, `SELECT COUNT(*) FROM river_job WHERE kind = $1 AND state IN ($2, $3, $4, $5, $6)`,
			feedback.SyncArgs{}.Kind(), string(rivertype.JobStateAvailable), string(rivertype.JobStateRunning),
			string(rivertype.JobStateScheduled), string(rivertype.JobStateRetryable), string(rivertype.JobStatePending)).Scan(&n)
		if err != nil {
			q.w.t.Fatal(err)
		}
		if n == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	q.w.t.Fatalf("feedback jobs still waiting after %s\n%s", timeout, q.w.logs)
}

// syncUntilDone syncs until the sync is not told to wait (another sync held
// the environment).
func (w *world) syncUntilDone(s *feedback.Syncer, env *store.Environment) error {
	for i := 0; i < 500; i++ {
		err := s.Sync(w.ctx, env.ID)
		if err == nil || !strings.Contains(err.Error(), "waiting until") {
			return err
		}
		time.Sleep(2 * time.Millisecond)
	}
	return errors.New("never got the lease")
}

// postNote comments on a merge request as a person (not glenv's token).
func postNote(t testing.TB, w *world, iid int64, body string) {
	t.Helper()
	u := w.gl.AddUser(gitlabtest.User{Username: "alice"})
	w.gl.SetMember(w.pid, u.ID, 30)
	tok := w.gl.AddToken(gitlabtest.Token{UserID: u.ID, Scopes: []string{"api"}})
	c, err := gitlab.New(w.gl.URL, tok, gitlab.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateMergeRequestNote(w.ctx, w.pid, iid, body); err != nil {
		t.Fatal(err)
	}
}
