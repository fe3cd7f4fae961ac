package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/glenv/glenv/internal/auth"
	"github.com/glenv/glenv/internal/config"
	"github.com/glenv/glenv/internal/gitlabtest"
	"github.com/glenv/glenv/internal/server"
)

const adminToken = "glenv_web_test_admin_token_0123456789"

// world is a real glenv server (in this process, on a real SQLite or
// PostgreSQL database) connected to the GitLab double: glenv registered as
// its OAuth application, one project with a maintainer, a developer, a
// reporter and an outsider, and an integration "app" for it.
type world struct {
	t   testing.TB
	URL string
	gl  *gitlabtest.Server
	pid int64

	maint, dev, reader, outsider gitlabtest.User
	glToken                      string
	logs                         *lockedWriter
}

type worldOptions struct {
	runtime string // process (default) or record
	dbURL   string
}

func freeAddr(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func newWorld(t testing.TB, o worldOptions) *world {
	t.Helper()
	if o.runtime == "" {
		o.runtime = "process"
	}
	w := &world{t: t, gl: gitlabtest.New(t), logs: &lockedWriter{}}
	w.maint = w.gl.AddUser(gitlabtest.User{Username: "maint"})
	w.dev = w.gl.AddUser(gitlabtest.User{Username: "dev"})
	w.reader = w.gl.AddUser(gitlabtest.User{Username: "reader"})
	w.outsider = w.gl.AddUser(gitlabtest.User{Username: "outsider"})
	p := w.gl.AddProject(gitlabtest.Project{PathWithNamespace: "group/app", DefaultBranch: "main",
		Members: map[int64]int{w.maint.ID: 40, w.dev.ID: 30, w.reader.ID: 20}})
	w.pid = p.ID
	app, err := filepath.Abs("testdata/app")
	if err != nil {
		t.Fatal(err)
	}
	w.gl.Commit(t, p.ID, gitlabtest.Commit{Branch: "main", Dir: app})
	w.gl.Commit(t, p.ID, gitlabtest.Commit{Branch: "feature/login", Dir: app, Files: map[string]string{"login.html": "login\n"}})
	w.glToken = w.gl.AddToken(gitlabtest.Token{UserID: w.maint.ID, Scopes: []string{"api"}, Name: "glenv"})

	addr := freeAddr(t)
	w.URL = "http://" + addr
	env := map[string]string{"GLENV_LISTEN": addr, "GLENV_DATA_DIR": t.TempDir(), "GLENV_ADMIN_TOKEN": adminToken,
		"GLENV_RUNTIME": o.runtime, "GLENV_DATABASE_URL": o.dbURL, "GLENV_LOG_LEVEL": "info",
		// The maintainer is a glenv admin: adding integrations needs one.
		"GLENV_ADMINS": auth.HostOf(w.gl.URL) + "/maint"}
	var cfg config.Config
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	cfg.Bind(fs, func(k string) string { return env[k] })
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.NewTextHandler(w.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	srv, err := server.New(ctx, cfg, log)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("glenv stopped with %v", err)
			}
		case <-time.After(40 * time.Second):
			t.Errorf("glenv did not stop within 40s")
		}
	})

	// glenv is GitLab's OAuth application; people sign in with it.
	oauth := w.gl.AddOAuthApp(gitlabtest.OAuthApp{RedirectURI: w.URL + "/auth/callback", Scopes: auth.Scopes})
	w.api(http.MethodPost, "/api/v1/gitlab-hosts", map[string]any{"url": w.gl.URL, "client_id": oauth.ClientID, "client_secret": oauth.Secret}, nil)
	w.api(http.MethodPost, "/api/v1/integrations", map[string]any{"type": "gitlab", "token": w.glToken, "base_url": w.gl.URL,
		"gitlab_project": "group/app", "name": "app"}, nil)
	return w
}

// lockedWriter lets the server's goroutines log into one buffer.
type lockedWriter struct {
	mu sync.Mutex
	w  bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.String()
}

// api calls /api/v1 as glenv's admin; out (if not nil) gets the JSON answer.
func (w *world) api(method, path string, in, out any) int {
	w.t.Helper()
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, w.URL+path, body)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		w.t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			w.t.Fatalf("%s %s: %v\n%s", method, path, err, raw)
		}
	}
	return resp.StatusCode
}

type envJSON struct {
	ID          int64  `json:"id"`
	Name        string `json:"name"`
	State       string `json:"state"`
	DeployedSHA string `json:"deployed_sha"`
	HeadSHA     string `json:"head_sha"`
}

// env reads an environment of integration app through /api/v1.
func (w *world) env(name string) (envJSON, bool) { return w.envOf("app", name) }

func (w *world) envOf(integration, name string) (envJSON, bool) {
	w.t.Helper()
	var envs []envJSON
	w.api(http.MethodGet, "/api/v1/environments?integration="+url.QueryEscape(integration)+"&name="+url.QueryEscape(name), nil, &envs)
	if len(envs) == 0 {
		return envJSON{}, false
	}
	return envs[0], true
}

// waitEnv waits until the environment satisfies ok, reading it through
// the API as it changes (deadline 90 s: a deploy builds and starts an app).
func (w *world) waitEnv(name string, ok func(envJSON) bool) envJSON {
	w.t.Helper()
	return w.waitEnvOf("app", name, ok)
}

func (w *world) waitEnvOf(integration, name string, ok func(envJSON) bool) envJSON {
	w.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		e, found := w.envOf(integration, name)
		if found && ok(e) {
			return e
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("environment %s: still %+v after 90s; server log:\n%s", name, e, w.tail())
		}
		time.Sleep(50 * time.Millisecond) // polls the API for a state the server is moving to
	}
}

func (w *world) tail() string {
	s := w.logs.String()
	if len(s) > 6000 {
		s = s[len(s)-6000:]
	}
	return s
}

// outputDir is where tests leave screenshots for people to look at.
func outputDir(t testing.TB) string {
	dir := os.Getenv("GLENV_TEST_OUTPUT")
	if dir == "" {
		dir = filepath.Join("..", "..", "test-output")
	}
	dir = filepath.Join(dir, "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(dir)
	return abs
}

func shotName(t testing.TB, name string) string {
	return filepath.Join(outputDir(t), fmt.Sprintf("%s.png", strings.NewReplacer("/", "-", " ", "-").Replace(name)))
}
