package envapi_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	gitlab "gitlab.com/gitlab-org/api/client-go/v2"

	"github.com/glenv/glenv/internal/envapi"
	"github.com/glenv/glenv/internal/gitlabtest"
	"github.com/glenv/glenv/internal/jobs"
	"github.com/glenv/glenv/internal/slug"
	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/store/storetest"
)

// The GitLab projects every target serves: the one under test and another
// one, whose environment ids must stay invisible from the first.
const (
	appID     = 42
	appPath   = "group/app"
	otherID   = 43
	otherPath = "group/other"
)

// target is one implementation of GitLab's Environments API: glenv or the
// GitLab double. Tests drive both through client-go and compare answers.
type target struct {
	name  string
	url   string // base URL for gitlab.WithBaseURL
	token string
	rec   *recorder
	c     *gitlab.Client
	ids   map[string]int64 // environment name → id, learnt from answers
}

// recorder keeps the last answer seen by a client, whatever client-go made
// of it (it drops 404 bodies), so tests can compare bodies and headers.
type recorder struct {
	mu     sync.Mutex
	status int
	header http.Header
	body   []byte
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	r.mu.Lock()
	r.status, r.header, r.body = resp.StatusCode, resp.Header.Clone(), b
	r.mu.Unlock()
	return resp, nil
}

func (r *recorder) last() (int, http.Header, []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status, r.header, r.body
}

// newClient builds a client-go client for tg that reports to tg's recorder.
func newClient(tg *target, mk func(token string, opts ...gitlab.ClientOptionFunc) (*gitlab.Client, error), token string) *gitlab.Client {
	c, err := mk(token, gitlab.WithBaseURL(tg.url), gitlab.WithoutRetries(),
		gitlab.WithHTTPClient(&http.Client{Transport: tg.rec}))
	if err != nil {
		panic(err) // only a malformed base URL fails here
	}
	return c
}

func finish(tg *target) *target {
	tg.rec = &recorder{}
	tg.ids = map[string]int64{}
	tg.c = newClient(tg, gitlab.NewClient, tg.token)
	return tg
}

// glenvServer is glenv's handler on a real store with the two projects
// connected by integrations "app" and "other".
type glenvServer struct {
	store *store.Store
	queue *jobs.Queue
	app   store.Integration
	url   string
	token string
}

func envURL(e store.Environment) string { return "http://" + e.Host + ".glenv.test/" }

func startGlenv(t testing.TB, s *store.Store, rt jobs.Runtime) *glenvServer {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	q, err := jobs.NewQueue(s, jobs.Deps{Runtime: rt, Logger: log}, jobs.QueueConfig{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	g := &glenvServer{store: s, queue: q}
	for _, p := range []struct {
		name, path string
		id         int64
	}{{"app", appPath, appID}, {"other", otherPath, otherID}} {
		in := store.Integration{Name: p.name, Type: "gitlab", BaseURL: "https://gitlab.example.com",
			UserFacingURL: "https://gitlab.example.com", GitLabProject: p.path, ProjectID: p.id, ProjectPath: p.path,
			DefaultBranch: "main", TokenSealed: "sealed", WebhookSecretSealed: "sealed", Space: "root"}
		if err := store.CreateIntegration(ctx, s.DB, &in); err != nil {
			t.Fatal(err)
		}
		if p.name == "app" {
			g.app = in
		}
	}
	g.token = store.NewTokenValue()
	if _, err := store.CreateAPIToken(ctx, s.DB, "contract", store.RoleAdmin, g.token); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(envapi.New(s, q, log, envURL))
	t.Cleanup(srv.Close)
	g.url = srv.URL
	return g
}

func glenvTarget(t *testing.T, b storetest.Backend) *target {
	g := startGlenv(t, storetest.Open(t, b), jobs.RecordRuntime{})
	return finish(&target{name: "glenv", url: g.url, token: g.token})
}

func doubleTarget(t *testing.T) *target {
	d := gitlabtest.New(t)
	u := d.AddUser(gitlabtest.User{Username: "maintainer"})
	for _, p := range []gitlabtest.Project{{ID: appID, PathWithNamespace: appPath}, {ID: otherID, PathWithNamespace: otherPath}} {
		p.Members = map[int64]int{u.ID: 40}
		d.AddProject(p)
	}
	tok := d.AddToken(gitlabtest.Token{UserID: u.ID, Scopes: []string{"api"}})
	return finish(&target{name: "double", url: d.URL, token: tok})
}

// raw sends a request client-go has no typed call for (or one its types
// cannot express) through the same client.
func (tg *target) raw(method, path string, query url.Values, body any) error {
	u := *tg.c.BaseURL()
	u.Path += path
	u.RawQuery = query.Encode()
	req, err := tg.c.NewRequestToURL(method, &u, body, nil)
	if err != nil {
		return err
	}
	_, err = tg.c.Do(req, nil)
	return err
}

func (tg *target) id(name string) int64 {
	if id, ok := tg.ids[name]; ok {
		return id
	}
	return -1
}

// learn remembers the ids of environments an answer shows.
func (tg *target) learn(v any) {
	switch v := v.(type) {
	case []any:
		for _, e := range v {
			tg.learn(e)
		}
	case map[string]any:
		name, _ := v["name"].(string)
		id, ok := v["id"].(float64)
		if name != "" && ok {
			tg.ids[name] = int64(id)
		}
	}
}

var apiTimeRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)

// normalize removes what legitimately differs between targets: ids,
// timestamps, and the project facts only GitLab knows.
func normalize(v any) any {
	switch v := v.(type) {
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = normalize(e)
		}
		return out
	case map[string]any:
		out := map[string]any{}
		for k, e := range v {
			switch {
			case k == "id" || k == "iid":
				out[k] = "<id>"
			case k == "project":
				if p, ok := e.(map[string]any); ok {
					out[k] = map[string]any{"id": p["id"], "path_with_namespace": p["path_with_namespace"]}
				} else {
					out[k] = e
				}
			default:
				out[k] = normalize(e)
			}
		}
		return out
	case string:
		if apiTimeRE.MatchString(v) {
			return "<time>"
		}
	}
	return v
}

func decode(t *testing.T, b []byte) any {
	t.Helper()
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("answer is not JSON: %v\n%s", err, b)
	}
	return v
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// pageHeaders are GitLab's pagination headers, Link without the base URL.
func pageHeaders(h http.Header, base string) map[string]string {
	out := map[string]string{}
	for _, k := range []string{"X-Page", "X-Per-Page", "X-Next-Page", "X-Prev-Page", "X-Total", "X-Total-Pages", "Link"} {
		if vs, ok := h[k]; ok {
			out[k] = strings.ReplaceAll(strings.Join(vs, ","), base, "")
		}
	}
	return out
}

// seedBranchEnvs writes n inactive branch environments in one transaction,
// as the lifecycle would for a project with n branches.
func seedBranchEnvs(tb testing.TB, g *glenvServer, n int) {
	tb.Helper()
	ctx := context.Background()
	err := g.store.Tx(ctx, func(tx *sql.Tx) error {
		for i := range n {
			name := fmt.Sprintf("feature/bench-%05d", i)
			e := store.Environment{IntegrationID: g.app.ID, IntegrationName: g.app.Name, ProjectID: g.app.ProjectID,
				Name: name, Slug: slug.Environment(name), Kind: "branch", Ref: name, State: store.StateInactive, Tier: "staging"}
			e.Host = slug.Host(e.Slug, g.app.Name)
			if err := store.SaveEnvironment(ctx, tx, &e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
}
