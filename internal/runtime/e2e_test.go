package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/glenv/glenv/internal/gitlabtest"
	"github.com/glenv/glenv/internal/proxy"
	"github.com/glenv/glenv/internal/runtime"
	"github.com/glenv/glenv/internal/store"
)

// world is a GitLab double with a project and its repository, a runtime
// and the proxy in front of it, as glenv serve wires them.
type world struct {
	gl      *gitlabtest.Server
	project gitlabtest.Project
	token   string
	gitURL  string
	dataDir string // stands for glenv's --data-dir
	rt      *runtime.Runtime
	proxy   *httptest.Server
	envs    sync.Map // host label → store.Environment
}

func newWorld(t *testing.T, opts runtime.Options) *world {
	t.Helper()
	w := &world{gl: gitlabtest.New(t)}
	t.Cleanup(w.gl.RemoveRepos)
	dev := w.gl.AddUser(gitlabtest.User{Username: "glenv-bot"})
	w.project = w.gl.AddProject(gitlabtest.Project{PathWithNamespace: "group/app", Members: map[int64]int{dev.ID: 40}})
	w.token = w.gl.AddToken(gitlabtest.Token{UserID: dev.ID, Scopes: []string{"api"}})
	hs := httptest.NewServer(w.gl.GitHandler())
	t.Cleanup(hs.Close)
	w.gitURL = hs.URL
	w.dataDir = t.TempDir()
	if err := os.WriteFile(filepath.Join(w.dataDir, "secret.key"), []byte("top secret key"), 0o600); err != nil {
		t.Fatal(err)
	}
	opts.Dir = filepath.Join(w.dataDir, "runtime")
	opts.Hide = []string{w.dataDir, filepath.Join(w.dataDir, "secret.key")}
	if opts.HealthTimeout == 0 {
		opts.HealthTimeout = 20 * time.Second
	}
	opts.StopGrace = 2 * time.Second
	rt, err := runtime.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.Close)
	w.rt = rt
	p := proxy.New(proxy.Options{EnvDomain: "localhost", Backends: rt,
		Lookup: func(ctx context.Context, host string) (store.Environment, error) {
			if e, ok := w.envs.Load(host); ok {
				return e.(store.Environment), nil
			}
			return store.Environment{}, store.ErrNotFound
		}})
	w.proxy = httptest.NewServer(p)
	t.Cleanup(w.proxy.Close)
	return w
}

func (w *world) env(id int64, name, kind string) store.Environment {
	e := store.Environment{ID: id, Name: name, Kind: kind, IntegrationName: "app", Host: name + "--app",
		Ref: name, State: store.StateDeploying}
	w.envs.Store(e.Host, e)
	return e
}

func (w *world) request(env store.Environment, sha string, logs *strings.Builder) runtime.DeployRequest {
	var mu sync.Mutex
	return runtime.DeployRequest{
		Integration: store.Integration{Name: "app", BaseURL: w.gitURL, ProjectPath: "group/app", ProjectID: w.project.ID},
		Token:       w.token, Env: env, SHA: sha,
		Log: func(s string) {
			mu.Lock()
			defer mu.Unlock()
			logs.WriteString(s)
		},
	}
}

// get fetches / of an environment through the proxy, by Host.
func (w *world) get(host string) (int, string, error) { return w.getPath(host, "/") }

func (w *world) getPath(host, path string) (int, string, error) {
	req, _ := http.NewRequest(http.MethodGet, w.proxy.URL+path, nil)
	req.Host = host + ".localhost"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func examplesDir(t *testing.T, name string) string {
	dir, err := filepath.Abs(filepath.Join("..", "..", "examples", name))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestAMergeRequestServesItsCommitAndANewCommitReplacesItWithoutAFailedRequest(t *testing.T) {
	t.Parallel()
	w := newWorld(t, runtime.Options{})
	sha1 := w.gl.Commit(t, w.project.ID, gitlabtest.Commit{Branch: "feature", Dir: examplesDir(t, "static")})
	env := w.env(7, "mr-7", "mr")
	var logs strings.Builder
	if err := w.rt.Deploy(t.Context(), w.request(env, sha1, &logs)); err != nil {
		t.Fatalf("deploy: %v\n%s", err, logs.String())
	}
	if strings.Contains(logs.String(), w.token) {
		t.Fatal("the token appears in the deploy log")
	}
	code, body, err := w.get(env.Host)
	if err != nil || code != 200 || !strings.Contains(body, "version 1") {
		t.Fatalf("GET via proxy: %d %v %q\nlog:\n%s", code, err, body, logs.String())
	}

	// Requests keep flowing while a new commit is deployed; none may fail.
	sha2 := w.gl.Commit(t, w.project.ID, gitlabtest.Commit{Branch: "feature",
		Files: map[string]string{"index.html": "<p id=version>version 2</p>\n"}})
	var ok, failed atomic.Int64
	var firstFailure atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				time.Sleep(2 * time.Millisecond) // steady traffic, not a CPU hog
				code, body, err := w.get(env.Host)
				if err != nil || code != 200 || !strings.Contains(body, "version") {
					failed.Add(1)
					firstFailure.CompareAndSwap(nil, fmt.Sprintf("%d %v %.200q", code, err, body))
					continue
				}
				ok.Add(1)
			}
		}()
	}
	servedAtLeast := func(n int64) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ok.Load() < n; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("only %d requests served in 30s; first failure: %v", ok.Load(), firstFailure.Load())
			}
		}
	}
	servedAtLeast(20) // traffic flows before the redeploy starts
	logs.Reset()
	if err := w.rt.Deploy(t.Context(), w.request(env, sha2, &logs)); err != nil {
		t.Fatalf("redeploy: %v\n%s", err, logs.String())
	}
	// Traffic goes on across the switch and the old process's stop.
	servedAtLeast(ok.Load() + 50)
	close(stop)
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d of %d requests failed during the redeploy; first: %v", failed.Load(), failed.Load()+ok.Load(), firstFailure.Load())
	}
	if _, body, _ := w.get(env.Host); !strings.Contains(body, "version 2") {
		t.Fatalf("after the redeploy the proxy serves %q", body)
	}
	t.Logf("%d requests during the redeploy, none failed", ok.Load())

	// Removing the environment leaves no process, port or directory.
	addr, release, _ := w.rt.Acquire(env.Host)
	release()
	var rlog strings.Builder
	if err := w.rt.Remove(t.Context(), env, func(s string) { rlog.WriteString(s) }); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := w.rt.Acquire(env.Host); ok {
		t.Fatal("the proxy still has a backend after Remove")
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatalf("something still listens on %s after Remove", addr)
	}
	if _, err := os.Stat(filepath.Join(w.dataDir, "runtime", "envs", "7")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the environment's directory is still there: %v", err)
	}
	builds, _ := os.ReadDir(filepath.Join(w.dataDir, "runtime", "builds"))
	if len(builds) != 0 {
		t.Fatalf("builds left behind: %v", builds)
	}
	w.envs.Delete(env.Host)
	if code, _, _ := w.get(env.Host); code != http.StatusNotFound {
		t.Fatalf("a removed environment answers %d, want 404", code)
	}
}
