package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/glenv/glenv/internal/gitlabtest"
	"github.com/glenv/glenv/internal/kube/kubetest"
	"github.com/glenv/glenv/internal/runtime"
	"github.com/glenv/glenv/internal/store/storetest"
)

// bin is the glenv binary built once for every end-to-end test.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "glenv-e2e-bin")
	if err != nil {
		panic(err)
	}
	bin = filepath.Join(dir, "glenv")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build glenv: %v\n%s", err, out)
		os.Exit(1)
	}
	// kubetest.Main stops the Kubernetes control plane the kube tests
	// share, if one of them started it.
	code := kubetest.Main(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

const adminToken = "glenv_e2e_admin_token_0123456789"

// glenv is one real `glenv serve` process under test.
type glenv struct {
	t       *testing.T
	URL     string
	addr    string
	dataDir string
	dbURL   string
	env     []string
	cmd     *exec.Cmd
	logs    *bytes.Buffer
	exited  chan struct{}
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startGlenv starts the binary on a fresh data dir (SQLite) or dbURL, and
// waits until /readyz answers.
func startGlenv(t *testing.T, dbURL string, extraEnv ...string) *glenv {
	t.Helper()
	g := &glenv{t: t, dataDir: t.TempDir(), dbURL: dbURL, addr: freeAddr(t)}
	g.URL = "http://" + g.addr
	// Tests deploy made-up SHAs; only those that ask for it run apps.
	g.env = append([]string{"GLENV_ADMIN_TOKEN=" + adminToken, "GLENV_LOG_LEVEL=debug", "GLENV_RUNTIME=record"}, extraEnv...)
	g.start()
	t.Cleanup(func() {
		g.stop(syscall.SIGTERM)
		g.removeCgroups()
	})
	return g
}

// removeCgroups removes the base cgroups of g's runtime, and stops the
// pasta daemons it left, once g has exited:
// a glenv that stops cleanly removed them itself, one killed with SIGKILL
// (by a test, or by stop when SIGTERM was not enough) left them, and no
// glenv starts in this data dir again to clear them.
func (g *glenv) removeCgroups() {
	g.t.Helper()
	select {
	case <-g.exited:
	default:
		return // still running (stop said so): its environments are live
	}
	// pasta daemons are no children of glenv and outlive it; nothing
	// else would stop them (they pile up over CI runs otherwise).
	runtime.StopLeftPasta(filepath.Join(g.dataDir, "runtime"))
	if err := runtime.RemoveCgroups(filepath.Join(g.dataDir, "runtime")); err != nil {
		g.t.Errorf("glenv's cgroups: %v", err)
	}
}

func (g *glenv) start() {
	g.t.Helper()
	args := []string{"serve", "--listen", g.addr, "--data-dir", g.dataDir}
	if g.dbURL != "" {
		args = append(args, "--database-url", g.dbURL)
	}
	g.cmd = exec.Command(bin, args...)
	g.cmd.Env = append(os.Environ(), g.env...)
	g.logs = &bytes.Buffer{}
	g.cmd.Stdout, g.cmd.Stderr = g.logs, g.logs
	if err := g.cmd.Start(); err != nil {
		g.t.Fatal(err)
	}
	g.exited = make(chan struct{})
	go func(c *exec.Cmd, done chan struct{}) { c.Wait(); close(done) }(g.cmd, g.exited)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(g.URL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case <-g.exited:
			g.t.Fatalf("glenv exited during start:\n%s", g.logs)
		case <-time.After(50 * time.Millisecond):
		}
	}
	g.t.Fatalf("glenv not ready after 20s:\n%s", g.logs)
}

// stop signals the server and waits for it to exit.
func (g *glenv) stop(sig syscall.Signal) {
	if g.cmd == nil || g.cmd.Process == nil {
		return
	}
	select {
	case <-g.exited:
		return
	default:
	}
	g.cmd.Process.Signal(sig)
	select {
	case <-g.exited:
	case <-time.After(30 * time.Second):
		g.cmd.Process.Kill()
		select {
		case <-g.exited:
		case <-time.After(10 * time.Second):
			g.t.Errorf("glenv (pid %d) did not exit after SIGKILL", g.cmd.Process.Pid)
		}
	}
}

func (g *glenv) restart() {
	g.stop(syscall.SIGTERM)
	g.start()
}

// run runs a glenv client command against the server.
func (g *glenv) run(stdin string, args ...string) (stdout, stderr string, code int) {
	return g.runAs(adminToken, stdin, args...)
}

func (g *glenv) runAs(token, stdin string, args ...string) (string, string, int) {
	g.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "GLENV_SERVER="+g.URL, "GLENV_API_TOKEN="+token, "GLENV_DATA_DIR="+g.dataDir)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		g.t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// mustRun runs a command that must succeed and returns its stdout.
func (g *glenv) mustRun(args ...string) string {
	g.t.Helper()
	out, errs, code := g.run("", args...)
	if code != 0 {
		g.t.Fatalf("glenv %s: exit %d\nstdout: %s\nstderr: %s\nserver log:\n%s", strings.Join(args, " "), code, out, errs, g.tail())
	}
	return out
}

// mustJSON runs a command with --format json and decodes its output.
func (g *glenv) mustJSON(v any, args ...string) {
	g.t.Helper()
	out := g.mustRun(append(args, "--format", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		g.t.Fatalf("glenv %s: output is not JSON: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func (g *glenv) tail() string {
	s := g.logs.String()
	if len(s) > 4000 {
		s = s[len(s)-4000:]
	}
	return s
}

// gitlabWorld is a GitLab double with one project, a maintainer and tokens.
type gitlabWorld struct {
	*gitlabtest.Server
	Project    gitlabtest.Project
	Maintainer gitlabtest.User
	Token      string // api scope, maintainer
}

func newGitLab(t *testing.T) *gitlabWorld {
	gl := gitlabtest.New(t)
	u := gl.AddUser(gitlabtest.User{Username: "maint"})
	p := gl.AddProject(gitlabtest.Project{PathWithNamespace: "group/app", DefaultBranch: "main", Members: map[int64]int{u.ID: 40}})
	gl.SetBranch(p.ID, "main", sha("main-1"))
	gl.SetBranch(p.ID, "feature/login", sha("login-1"))
	tok := gl.AddToken(gitlabtest.Token{UserID: u.ID, Scopes: []string{"api"}, Name: "glenv"})
	return &gitlabWorld{Server: gl, Project: p, Maintainer: u, Token: tok}
}

// sha makes a deterministic 40-hex SHA from a label.
func sha(label string) string {
	s := fmt.Sprintf("%x", label)
	for len(s) < 40 {
		s += "0"
	}
	return s[:40]
}

// backends lists the databases e2e tests run on: SQLite always, PostgreSQL when configured.
func backends(t *testing.T) map[string]func() string {
	out := map[string]func() string{"sqlite": func() string { return "" }}
	if os.Getenv(storetest.EnvVar) != "" {
		out["postgres"] = func() string { return storetest.FreshPostgres(t) }
	}
	return out
}

func readFileIfExists(path string) ([]byte, error) { return os.ReadFile(path) }

// removeHook deletes a hook as a person would in GitLab's UI.
func removeHook(t *testing.T, gl *gitlabWorld, hookID int64) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodDelete, gl.URL+"/api/v4/projects/"+fmt.Sprint(gl.Project.ID)+"/hooks/"+fmt.Sprint(hookID), nil)
	req.Header.Set("PRIVATE-TOKEN", gl.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("delete hook: %d", resp.StatusCode)
	}
}

func (g *glenv) apiGetText(path string, s *string) {
	g.t.Helper()
	resp, err := http.Get(g.URL + path)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	*s = b.String()
}

// metricValue reads one sample from Prometheus text output (-1 when absent).
func metricValue(text, series string) float64 {
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, series+" ") {
			var v float64
			fmt.Sscan(strings.TrimPrefix(line, series+" "), &v)
			return v
		}
	}
	return -1
}
