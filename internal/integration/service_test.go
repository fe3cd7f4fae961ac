package integration

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/glenv/glenv/internal/gitlab"
	"github.com/glenv/glenv/internal/gitlabtest"
	"github.com/glenv/glenv/internal/jobs"
	"github.com/glenv/glenv/internal/secret"
	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/store/storetest"
)

// world is a stored integration "app" whose GitLab is the double, reached
// through a front that can run a step in the middle of a call.
type world struct {
	svc     *Service
	store   *store.Store
	gl      *gitlabtest.Server
	project gitlabtest.Project
	user    gitlabtest.User
	token   string // the stored token
	front   *front
}

// front forwards to the double and, once, runs during the first call that
// matches: another request's write landing while glenv waits on GitLab.
type front struct {
	*httptest.Server
	mu     sync.Mutex
	match  func(*http.Request) bool
	during func()
}

func (f *front) interleave(match func(*http.Request) bool, during func()) {
	f.mu.Lock()
	f.match, f.during = match, during
	f.mu.Unlock()
}

func newWorld(t *testing.T, s *store.Store) *world {
	gl := gitlabtest.New(t)
	u := gl.AddUser(gitlabtest.User{Username: "maint"})
	p := gl.AddProject(gitlabtest.Project{PathWithNamespace: "group/app", DefaultBranch: "main", Members: map[int64]int{u.ID: 40}})
	gl.SetBranch(p.ID, "main", strings.Repeat("a", 40))
	tok := gl.AddToken(gitlabtest.Token{UserID: u.ID, Scopes: []string{"api"}, Name: "glenv"})
	target, _ := url.Parse(gl.URL)
	f := &front{}
	rp := httputil.NewSingleHostReverseProxy(target)
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		var run func()
		if f.match != nil && f.match(r) {
			run, f.match = f.during, nil
		}
		f.mu.Unlock()
		if run != nil {
			run() // on the handler's goroutine; it only writes the database
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(f.Close)
	box, err := secret.NewBox([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	svc := &Service{Store: s, Box: box, PublicURL: "http://glenv.test", Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		GitLab: func(baseURL, token string) (*gitlab.Client, error) {
			return gitlab.New(baseURL, token, gitlab.Options{RetryMax: -1})
		}}
	in := store.Integration{Name: "app", Type: "gitlab", BaseURL: f.URL, UserFacingURL: f.URL, GitLabProject: "group/app",
		ProjectID: p.ID, ProjectPath: "group/app", DefaultBranch: "main", TokenSealed: box.Seal(tok),
		WebhookSecretSealed: box.Seal("hook-secret"), Space: "root", Labels: []string{}, FetchBranches: true}
	if err := store.CreateIntegration(context.Background(), s.DB, &in); err != nil {
		t.Fatal(err)
	}
	return &world{svc: svc, store: s, gl: gl, project: p, user: u, token: tok, front: f}
}

func (w *world) stored(t *testing.T) (store.Integration, string) {
	t.Helper()
	in, err := store.GetIntegration(context.Background(), w.store.Reader(), "app")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := w.svc.Box.Open(in.TokenSealed)
	if err != nil {
		t.Fatal(err)
	}
	return in, tok
}

// rotate stands for `integration:update app --token NEW` committing at
// that moment.
func (w *world) rotate(t *testing.T) string {
	rotated := w.gl.AddToken(gitlabtest.Token{UserID: w.user.ID, Scopes: []string{"api"}, Name: "rotated"})
	in, err := store.GetIntegration(context.Background(), w.store.Reader(), "app")
	if err == nil {
		in.TokenSealed = w.svc.Box.Seal(rotated)
		err = store.UpdateIntegration(context.Background(), w.store.DB, &in)
	}
	if err != nil {
		t.Error(err) // not Fatal: this runs on the front's goroutine
	}
	return rotated
}

func TestATokenRotatedWhileValidateTalksToGitLabSurvives(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		var rotated string
		// No hook yet: validate installs one and records its id, after
		// reading the row and several GitLab calls.
		w.front.interleave(func(r *http.Request) bool {
			return r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/hooks")
		}, func() { rotated = w.rotate(t) })
		checks, err := w.svc.Validate(context.Background(), "app")
		if err != nil {
			t.Fatal(err)
		}
		in, tok := w.stored(t)
		if rotated == "" || tok != rotated {
			t.Fatalf("the token rotated during validate was reverted (checks %+v)", checks)
		}
		if in.HookID == 0 {
			t.Fatalf("validate did not record the hook it installed: %+v", checks)
		}
	})
}

func TestAnUpdateThatRaceAnotherIsRefusedInsteadOfRevertingIt(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		mine := w.gl.AddToken(gitlabtest.Token{UserID: w.user.ID, Scopes: []string{"api"}, Name: "mine"})
		var rotated string
		w.front.interleave(func(r *http.Request) bool { return strings.Contains(r.URL.Path, "/personal_access_tokens/self") },
			func() { rotated = w.rotate(t) })
		fetch := false
		_, err := w.svc.Update(context.Background(), "app", Input{Token: mine, FetchBranches: &fetch})
		if !errors.Is(err, store.ErrStale) {
			t.Fatalf("update racing another: err = %v, want ErrStale", err)
		}
		in, tok := w.stored(t)
		if tok != rotated || !in.FetchBranches {
			t.Fatalf("the racing update was partly written: token rotated=%v fetch_branches=%v", tok == rotated, in.FetchBranches)
		}
		// Run again, it applies.
		if _, err := w.svc.Update(context.Background(), "app", Input{Token: mine, FetchBranches: &fetch}); err != nil {
			t.Fatal(err)
		}
		if in, tok := w.stored(t); tok != mine || in.FetchBranches {
			t.Fatal("the update run again did not apply")
		}
	})
}

// recorder is a listener at a new base_url that keeps every header it got.
type recorder struct {
	*httptest.Server
	mu      sync.Mutex
	headers []http.Header
}

func newRecorder(t *testing.T) *recorder {
	rec := &recorder{}
	rec.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		rec.headers = append(rec.headers, r.Header.Clone())
		rec.mu.Unlock()
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"message":"401 Unauthorized"}`)
	}))
	t.Cleanup(rec.Close)
	return rec
}

func (rec *recorder) saw(secret string) (calls int, leaked bool) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, h := range rec.headers {
		for _, vs := range h {
			for _, v := range vs {
				leaked = leaked || strings.Contains(v, secret)
			}
		}
	}
	return len(rec.headers), leaked
}

func TestTheStoredTokenIsNeverSentToANewBaseURL(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		listener := newRecorder(t)
		for _, dry := range []bool{true, false} {
			_, err := w.svc.Update(context.Background(), "app", Input{BaseURL: listener.URL, DryRun: dry})
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != "token" {
				t.Fatalf("base_url changed without a token (dry run %v): err = %v, want a token field error", dry, err)
			}
		}
		// With a token for the new URL, only that token goes there.
		_, err := w.svc.Update(context.Background(), "app", Input{BaseURL: listener.URL, Token: "glpat-theirs"})
		if err == nil {
			t.Fatal("a URL that refuses the token was accepted")
		}
		calls, leaked := listener.saw(w.token)
		if leaked || calls != 1 {
			t.Fatalf("the listener at the new base_url got %d calls, stored token leaked: %v", calls, leaked)
		}
		if in, tok := w.stored(t); tok != w.token || in.BaseURL != w.front.URL {
			t.Fatalf("a refused update changed the integration: %s %s", in.BaseURL, tok)
		}
	})
}

func TestARepeatedAddRacingAnUpdateDoesNotRevertIt(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		q, err := jobs.NewQueue(s, jobs.Deps{Runtime: jobs.RecordRuntime{}, Logger: w.svc.Log}, jobs.QueueConfig{Logger: w.svc.Log})
		if err != nil {
			t.Fatal(err)
		}
		w.svc.Applier = q
		var rotated string
		// integration:add again reads the row, asks GitLab about the token,
		// the project, the role, branches and the hook, then writes.
		w.front.interleave(func(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, "/repository/branches") },
			func() { rotated = w.rotate(t) })
		_, err = w.svc.Add(context.Background(), Input{Name: "app", Token: w.token, BaseURL: w.front.URL, GitLabProject: "group/app", Confirm: true})
		if !errors.Is(err, store.ErrStale) {
			t.Fatalf("add racing an update: err = %v, want ErrStale", err)
		}
		if _, tok := w.stored(t); rotated == "" || tok != rotated {
			t.Fatal("the token rotated during a repeated add was reverted")
		}
	})
}

func TestADeleteThatFailsHalfwayLeavesTheEnvironmentsAttached(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		in, _ := w.stored(t)
		ctx := context.Background()
		env := store.Environment{IntegrationID: in.ID, IntegrationName: "app", ProjectID: in.ProjectID, Name: "main", Slug: "main",
			Host: "main--app", Kind: "branch", Ref: "main", State: store.StateActive, Tier: "production"}
		if err := store.SaveEnvironment(ctx, s.DB, &env); err != nil {
			t.Fatal(err)
		}
		// The second statement of the delete fails after the first one ran.
		trigger := `CREATE TRIGGER refuse_delete BEFORE DELETE ON integrations BEGIN SELECT RAISE(ABORT, 'refused'); END`
		if s.Dialect == store.Postgres {
			if _, err := s.DB.ExecContext(ctx, `CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$ LANGUAGE plpgsql`); err != nil {
				t.Fatal(err)
			}
			trigger = `CREATE TRIGGER refuse_delete BEFORE DELETE ON integrations FOR EACH ROW EXECUTE FUNCTION refuse()`
		}
		if _, err := s.DB.ExecContext(ctx, trigger); err != nil {
			t.Fatal(err)
		}
		if _, err := w.svc.Delete(ctx, "app"); err == nil {
			t.Fatal("the delete did not fail")
		}
		got, err := store.GetEnvironmentByID(ctx, s.Reader(), env.ID)
		if err != nil || got.IntegrationID != in.ID || got.Detached {
			t.Fatalf("a failed delete detached the environment: %+v %v", got, err)
		}
	})
}
