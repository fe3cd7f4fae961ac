package runtime_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/glenv/glenv/internal/gitlabtest"
	"github.com/glenv/glenv/internal/runtime"
	"github.com/glenv/glenv/internal/store"
)

// requireSandbox skips where the sandbox cannot run, except under CI,
// where a test that cannot set up its sandbox fails.
func requireSandbox(t *testing.T, rt *runtime.Runtime) {
	t.Helper()
	if rt.Sandboxed() {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("the sandbox (bubblewrap + pasta) is not usable here; CI must be able to run it")
	}
	t.Skip("the sandbox (bubblewrap + pasta) is not usable here")
}

// fakeDatabases hands out a database URL pointing at a listener the test
// runs on the host's loopback: what the app must be able to reach.
type fakeDatabases struct{ addr string }

func (f fakeDatabases) Ensure(_ context.Context, db string, _ int) (string, error) {
	return "postgres://app:secret@" + f.addr + "/" + db + "?sslmode=disable", nil
}
func (f fakeDatabases) Clone(ctx context.Context, db, _ string, limit int) (string, error) {
	return f.Ensure(ctx, db, limit)
}
func (fakeDatabases) Drop(context.Context, string) error { return nil }
func (fakeDatabases) Databases(context.Context, string) ([]string, error) {
	return nil, nil
}

// listen opens a TCP listener on the host's loopback that accepts and
// closes connections, and reports how many it accepted.
func listen(t *testing.T) (addr string, accepted func() int) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	n := make(chan int, 1)
	n <- 0
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			n <- <-n + 1
			c.Close()
		}
	}()
	return l.Addr().String(), func() int { v := <-n; n <- v; return v }
}

func probeFiles(t *testing.T, marker, limits string) map[string]string {
	t.Helper()
	app, err := os.ReadFile(filepath.Join("testdata", "probe", "app.py"))
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		".glenv.yml": "build: touch $HOME/x /tmp/x /run/x && echo build-home-ok\nrun: exec python3 app.py " + marker +
			"\nhealth: /\nservices:\n  postgresql: [main]\n" + limits,
		"app.py": string(app),
	}
}

// probe asks the probe app serving env, through glenv's proxy, to try path.
func (w *world) probe(t *testing.T, env store.Environment, path string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, w.proxy.URL+path, nil)
	req.Host = env.Host + ".localhost"
	client := &http.Client{Timeout: 90 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s via the proxy: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func (w *world) deployProbe(t *testing.T, id int64, kind, limits string) store.Environment {
	t.Helper()
	name := "probe-" + strconv.FormatInt(id, 10)
	if kind == "mr" {
		name = "mr-" + strconv.FormatInt(id, 10)
	}
	env := w.env(id, name, kind)
	sha := w.gl.Commit(t, w.project.ID, gitlabtest.Commit{Branch: name, Files: probeFiles(t, name, limits)})
	var logs strings.Builder
	if err := w.rt.Deploy(t.Context(), w.request(env, sha, &logs)); err != nil {
		t.Fatalf("deploy %s: %v\n%s", name, err, logs.String())
	}
	if !strings.Contains(logs.String(), "build-home-ok") {
		t.Fatalf("the build could not write $HOME, /tmp and /run:\n%s", logs.String())
	}
	return env
}

func hostPort(t *testing.T, addr string) (string, string) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return h, p
}

func TestAnEnvironmentReachesItsDatabaseAndNothingElseOnTheHost(t *testing.T) {
	t.Parallel()
	dbAddr, dbAccepted := listen(t)
	w := newWorld(t, runtime.Options{Databases: fakeDatabases{addr: dbAddr}})
	requireSandbox(t, w.rt)
	other := w.deployProbe(t, 81, "branch", "")
	attacker := w.deployProbe(t, 82, "mr", "")
	otherAddr, release, ok := w.rt.Acquire(other.Host)
	if !ok {
		t.Fatal("the other environment has no backend")
	}
	release()
	glenvURL, _ := url.Parse(w.proxy.URL)
	serviceAddr, serviceAccepted := listen(t)

	for _, tc := range []struct{ name, addr string }{
		{"glenv's own listener", glenvURL.Host},
		{"another environment's app port", otherAddr},
		{"another service on the host's loopback", serviceAddr},
	} {
		t.Run("connecting to "+tc.name+" fails", func(t *testing.T) {
			host, port := hostPort(t, tc.addr)
			got := w.probe(t, attacker, "/connect?host="+host+"&port="+port)
			if !strings.HasPrefix(got, "failed") {
				t.Fatalf("the app connected to %s (%s): %q", tc.name, tc.addr, got)
			}
			// Nor through the gateway pasta would otherwise map to the host.
			if gw := w.probe(t, attacker, "/sh?cmd="+url.QueryEscape("ip route | awk '/default/ {print $3}'")); strings.Contains(gw, ".") {
				gwIP := strings.TrimSpace(strings.SplitN(gw, "\n", 2)[1])
				if got := w.probe(t, attacker, "/connect?host="+gwIP+"&port="+port); !strings.HasPrefix(got, "failed") {
					t.Fatalf("the app reached %s through the gateway %s: %q", tc.name, gwIP, got)
				}
			}
		})
	}
	if n := serviceAccepted(); n != 0 {
		t.Fatalf("the loopback service accepted %d connections from the environment", n)
	}
	t.Run("the host's listening sockets are not even listed", func(t *testing.T) {
		got := w.probe(t, attacker, "/listening")
		for _, addr := range []string{glenvURL.Host, otherAddr, serviceAddr} {
			if _, port := hostPort(t, addr); strings.Contains(" "+got+" ", " "+port+" ") {
				t.Fatalf("/proc/net/tcp inside lists port %s of the host: %q", port, got)
			}
		}
	})
	t.Run("its own database is reachable", func(t *testing.T) {
		host, port := hostPort(t, dbAddr)
		if got := w.probe(t, attacker, "/connect?host="+host+"&port="+port); got != "connected" {
			t.Fatalf("the app could not reach its database at %s: %q", dbAddr, got)
		}
		// pasta connects to the host's listener on its own side, and the
		// accept is counted by another goroutine: wait for it (bounded).
		for deadline := time.Now().Add(10 * time.Second); dbAccepted() == 0; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the database listener saw no connection")
			}
		}
	})
	t.Run("both apps still serve through glenv's proxy", func(t *testing.T) {
		for _, env := range []store.Environment{other, attacker} {
			if got := w.probe(t, env, "/"); got != "probe "+env.Name {
				t.Fatalf("%s answers %q", env.Name, got)
			}
		}
	})
}

func TestAnEnvironmentHasNoCapabilitiesAndWritableHomeTmpAndRun(t *testing.T) {
	t.Parallel()
	dbAddr, _ := listen(t)
	w := newWorld(t, runtime.Options{Databases: fakeDatabases{addr: dbAddr}})
	requireSandbox(t, w.rt)
	env := w.deployProbe(t, 83, "mr", "")
	got := w.probe(t, env, "/sh?cmd="+url.QueryEscape("grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb)' /proc/self/status; grep NoNewPrivs /proc/self/status; touch $HOME/x /tmp/x /run/x && echo touched; id -u"))
	for _, want := range []string{"CapBnd:\t0000000000000000", "CapEff:\t0000000000000000", "CapPrm:\t0000000000000000", "NoNewPrivs:\t1", "touched"} {
		if !strings.Contains(got, want) {
			t.Errorf("inside the sandbox: want %q in\n%s", want, got)
		}
	}
	if os.Geteuid() == 0 && strings.HasSuffix(strings.TrimSpace(got), "\n0") {
		t.Errorf("the app runs as root:\n%s", got)
	}
}

func TestEgressCanBeDenied(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("this test makes a network namespace with ip netns and needs root, as CI has")
		}
		t.Skip("needs root to make a network namespace for the outside world")
	}
	outside := outsideServer(t)
	for _, tc := range []struct {
		name string
		deny bool
		want string
	}{
		{"by default an environment reaches the outside world", false, "connected"},
		{"with --environment-egress deny it does not", true, "failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dbAddr, _ := listen(t)
			w := newWorld(t, runtime.Options{Databases: fakeDatabases{addr: dbAddr}, DenyEgress: tc.deny})
			requireSandbox(t, w.rt)
			env := w.deployProbe(t, 84, "mr", "")
			host, port := hostPort(t, outside)
			if got := w.probe(t, env, "/connect?host="+host+"&port="+port); !strings.HasPrefix(got, tc.want) {
				t.Fatalf("connecting to %s: %q, want %s", outside, got, tc.want)
			}
			// Its database stays reachable either way.
			h, p := hostPort(t, dbAddr)
			if got := w.probe(t, env, "/connect?host="+h+"&port="+p); got != "connected" {
				t.Fatalf("database: %q", got)
			}
		})
	}
}

// outsideServer stands for the outside world: a TCP listener in a network
// namespace the test makes, reached from the host over a veth pair (the
// only non-loopback address a test here may talk to).
func outsideServer(t *testing.T) string {
	t.Helper()
	ns := fmt.Sprintf("glenvt%d", os.Getpid()%100000)
	host, peer := ns+"h", ns+"p"
	octet := 16 + os.Getpid()%200
	hostIP, nsIP := fmt.Sprintf("10.213.%d.1", octet), fmt.Sprintf("10.213.%d.2", octet)
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	run("netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	run("link", "add", host, "type", "veth", "peer", "name", peer)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", host).Run() })
	run("link", "set", peer, "netns", ns)
	run("addr", "add", hostIP+"/30", "dev", host)
	run("link", "set", host, "up")
	run("netns", "exec", ns, "ip", "addr", "add", nsIP+"/30", "dev", peer)
	run("netns", "exec", ns, "ip", "link", "set", peer, "up")
	run("netns", "exec", ns, "ip", "link", "set", "lo", "up")
	srv := exec.Command("ip", "netns", "exec", ns, "python3", "-c",
		"import socket,sys\ns=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('"+nsIP+"', 8099)); s.listen(16); print('ready', flush=True)\nwhile True:\n  c,_=s.accept(); c.close()")
	out, _ := srv.StdoutPipe()
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait() })
	ready := make(chan error, 1)
	go func() {
		b := make([]byte, 6)
		_, err := io.ReadFull(out, b)
		ready <- err
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatalf("the outside server did not start: %v", err)
		}
	case <-time.After(60 * time.Second):
		// A deadline, not a wait: the server says "ready" as soon as it
		// listens; a machine under load can take long to start Python.
		t.Fatal("the outside server did not start within 60s")
	}
	return nsIP + ":8099"
}

func TestNothingAnAppStartedOutlivesItsEnvironment(t *testing.T) {
	t.Parallel()
	dbAddr, _ := listen(t)
	w := newWorld(t, runtime.Options{Databases: fakeDatabases{addr: dbAddr}})
	requireSandbox(t, w.rt)
	env := w.deployProbe(t, 85, "mr", "")
	// A child in a session of its own has left the app's process group.
	w.probe(t, env, "/sh?cmd="+url.QueryEscape("setsid sh -c 'exec sleep 3085' </dev/null >/dev/null 2>&1 & echo started"))
	waitFor(t, "the escaped child to run", 5*time.Second, func() bool { return len(processesWith(t, "sleep 3085")) > 0 })
	if err := w.rt.Remove(t.Context(), env, nil); err != nil {
		t.Fatal(err)
	}
	noProcessesLeft(t, "sleep 3085")
	noProcessesLeft(t, "app.py mr-85")
}
