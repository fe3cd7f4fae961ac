package runtime_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/glenv/glenv/internal/gitlabtest"
	"github.com/glenv/glenv/internal/runtime"
	"github.com/glenv/glenv/internal/store"
)

// startScript starts app.py; a restart (any start after the first of the
// marker) does what $RESTART says: crash exits at once, slow waits before
// listening, anything else starts normally.
const startScript = `n=$(cat "$GLENV_DATA_DIR/starts-$1" 2>/dev/null || echo 0)
echo $((n+1)) > "$GLENV_DATA_DIR/starts-$1"
if [ "$n" -gt 0 ]; then
  case "$RESTART" in
    crash) echo "start $((n+1)) of $1: crashing"; exit 3;;
    slow) sleep 2;;
  esac
fi
exec python3 app.py "$1"
`

// appPy answers / with its marker and exits with status N on /exit/N.
const appPy = `import http.server, os, sys

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith("/exit/"):
            self.send_response(200)
            self.end_headers()
            self.wfile.flush()
            os._exit(int(self.path[len("/exit/"):]))
        body = ("serving " + sys.argv[1] + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

print("app", sys.argv[1], "listening", flush=True)
http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
`

// supervisedApp is an app whose processes carry marker on their command
// line, so a test can find them.
func supervisedApp(marker, restart string) map[string]string {
	return map[string]string{
		".glenv.yml": "run: sh start.sh " + marker + "\nhealth: /\nenv:\n  RESTART: " + restart + "\n",
		"start.sh":   startScript,
		"app.py":     appPy,
	}
}

// deploySupervised deploys a supervised app as environment id and returns it.
func (w *world) deploySupervised(t *testing.T, id int64, marker, restart string) store.Environment {
	t.Helper()
	env := w.env(id, "env-"+strconv.FormatInt(id, 10), "branch")
	// A branch per environment: subtests commit in parallel.
	sha := w.gl.Commit(t, w.project.ID, gitlabtest.Commit{Branch: env.Ref, Files: supervisedApp(marker, restart)})
	var logs strings.Builder
	if err := w.rt.Deploy(t.Context(), w.request(env, sha, &logs)); err != nil {
		t.Fatalf("deploy: %v\n%s", err, logs.String())
	}
	env.State = store.StateActive // as the deploy worker records it
	w.envs.Store(env.Host, env)
	return env
}

func (w *world) appLog(id int64) string {
	b, _ := os.ReadFile(filepath.Join(w.dataDir, "runtime", "envs", strconv.FormatInt(id, 10), "app.log"))
	return string(b)
}

// exit makes the app serving host exit with code, as a crash would.
func (w *world) exit(t *testing.T, host string, code int) {
	t.Helper()
	addr, release, ok := w.rt.Acquire(host)
	if !ok {
		t.Fatal("no process serves the environment")
	}
	release()
	if resp, err := http.Get("http://" + addr + "/exit/" + strconv.Itoa(code)); err == nil {
		resp.Body.Close()
	}
}

// kill sends SIGKILL to the app's python process, as the OOM killer would.
func kill(t *testing.T, marker string) {
	t.Helper()
	for _, pid := range processesWith(t, "app.py "+marker) {
		b, _ := os.ReadFile("/proc/" + pid + "/cmdline")
		if strings.HasPrefix(string(b), "python3\x00") {
			n, _ := strconv.Atoi(pid)
			if err := syscall.Kill(n, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatalf("no python process of %s", marker)
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// noProcessesLeft waits for the kernel to reap what was stopped and fails
// when a process with marker on its command line is still there.
//
// It waits on the processes' exits (a pidfd becomes readable when its
// process ends), not on a clock: how soon glenv stops them is timed by
// TestSettledWaitsForTheFirstAnswer. The bound only ends a wait that would
// never end; a loaded CI machine took over 3 s to end a sandbox's processes.
func noProcessesLeft(t *testing.T, marker string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for pids := processesWith(t, marker); len(pids) > 0; pids = processesWith(t, marker) {
		for _, pid := range pids {
			if !exitBy(pid, deadline) {
				status, _ := os.ReadFile("/proc/" + pid + "/status")
				t.Fatalf("processes of %s are still running: %v; %s:\n%s", marker, pids, pid, status)
			}
		}
	}
}

// exitBy waits until the process pid ended or deadline passed, and says
// whether it ended (a pid already gone has).
func exitBy(pid string, deadline time.Time) bool {
	n, err := strconv.Atoi(pid)
	if err != nil {
		return true
	}
	fd, err := unix.PidfdOpen(n, 0)
	if err != nil {
		return true // ESRCH: it ended meanwhile
	}
	defer unix.Close(fd)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return false
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		ready, err := unix.Poll(fds, int(left.Milliseconds())+1)
		if err == unix.EINTR {
			continue
		}
		return err == nil && ready > 0
	}
}

func TestAnAppThatExitsIsStartedAgainAndServesOnceHealthy(t *testing.T) {
	t.Parallel()
	w := newWorld(t, runtime.Options{Restart: runtime.RestartPolicy{Delay: 50 * time.Millisecond}})
	for i, tc := range []struct {
		name    string
		restart string // what a restart does
		crash   func(t *testing.T, env store.Environment, marker string)
		want    string // in the app log
	}{
		{"an app that exits with an error is restarted", "none",
			func(t *testing.T, env store.Environment, _ string) { w.exit(t, env.Host, 7) }, "the app exited (exit status 7)"},
		{"an app that exits cleanly is restarted", "none",
			func(t *testing.T, env store.Environment, _ string) { w.exit(t, env.Host, 0) }, "the app exited (exit status 0)"},
		{"an app that is killed is restarted", "none",
			func(t *testing.T, _ store.Environment, marker string) { kill(t, marker) }, "the app exited ("},
		{"a restart slow to listen gets traffic only once healthy", "slow",
			func(t *testing.T, env store.Environment, _ string) { w.exit(t, env.Host, 1) }, "the app exited (exit status 1)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id := int64(40 + i)
			marker := "sup-" + strconv.Itoa(40+i)
			env := w.deploySupervised(t, id, marker, tc.restart)
			before, release, _ := w.rt.Acquire(env.Host)
			release()
			tc.crash(t, env, marker)
			// The app answers /exit before it exits: poll only once glenv has
			// let go of the old process, or the first GET may still reach it.
			waitFor(t, "glenv to notice the exit", 5*time.Second, func() bool {
				addr, release, ok := w.rt.Acquire(env.Host)
				if ok {
					release()
				}
				return !ok || addr != before
			})

			// Until the restart is healthy the proxy answers for it: a 502
			// at most until glenv sees the exit, then its status page.
			var codes []int
			waitFor(t, "the app to serve again", 15*time.Second, func() bool {
				code, body, err := w.get(env.Host)
				if err != nil {
					t.Fatalf("GET via proxy: %v", err)
				}
				codes = append(codes, code)
				return code == 200 && body == "serving "+marker+"\n"
			})
			sawStatusPage := false
			for _, c := range codes[:len(codes)-1] {
				switch {
				case c == http.StatusServiceUnavailable:
					sawStatusPage = true
				case c == http.StatusBadGateway && !sawStatusPage:
				default:
					t.Fatalf("while the app restarted the proxy answered %v; want 502s, then 503s, then 200", codes)
				}
			}
			if tc.restart == "slow" && !sawStatusPage {
				t.Fatalf("a restart waiting 2s before it listens was never answered for with the status page: %v", codes)
			}
			if after, release, _ := w.rt.Acquire(env.Host); after == before {
				t.Fatalf("the restart serves from the old address %s", after)
			} else {
				release()
			}
			log := w.appLog(id)
			for _, want := range []string{tc.want, "starting it again in 50ms", "started `sh start.sh " + marker + "` again", "serving again", "app " + marker + " listening"} {
				if !strings.Contains(log, want) {
					t.Errorf("the app log lacks %q:\n%s", want, log)
				}
			}
			if n := len(processesWith(t, "app.py "+marker)); n != 1 {
				t.Errorf("%d processes of the app run, want 1", n)
			}
		})
	}
}

func TestACrashLoopingAppBacksOffAndGivesUp(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	gaveUp := make(chan string, 2)
	w := newWorld(t, runtime.Options{
		Restart:  runtime.RestartPolicy{Delay: 100 * time.Millisecond, MaxDelay: 300 * time.Millisecond, StableAfter: time.Minute, Limit: 5},
		Logger:   slog.New(slog.NewJSONHandler(&logs, nil)),
		OnGiveUp: func(envID int64, reason string) { gaveUp <- fmt.Sprint(envID, ": ", reason) },
	})
	env := w.deploySupervised(t, 50, "loop-50", "crash")
	w.exit(t, env.Host, 1)
	waitFor(t, "glenv to give up", 20*time.Second, func() bool { return strings.Contains(w.appLog(50), "no longer restarts it") })

	log := w.appLog(50)
	var waits []string
	for _, m := range regexp.MustCompile(`starting it again in (\S+)`).FindAllStringSubmatch(log, -1) {
		waits = append(waits, m[1])
	}
	if got, want := strings.Join(waits, " "), "100ms 200ms 300ms 300ms"; got != want {
		t.Fatalf("waits before restarts %q, want %q:\n%s", got, want, log)
	}
	for _, want := range []string{
		"the app exited (exit status 1)",
		"start 5 of loop-50: crashing",
		"it failed 5 times in a row, each within 1m0s, so glenv no longer restarts it",
		"glenv environment:redeploy env-50 --integration app",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("the app log lacks %q:\n%s", want, log)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(w.dataDir, "runtime", "envs", "50", "data", "starts-loop-50")); strings.TrimSpace(string(b)) != "5" {
		t.Errorf("the app was started %q times, want 5 (the deploy and 4 restarts)", b)
	}
	select {
	case got := <-gaveUp:
		if !strings.HasPrefix(got, "50: the app exited") || !strings.Contains(got, "5 times in a row") {
			t.Errorf("OnGiveUp was told %q", got)
		}
	case <-time.After(10 * time.Second):
		t.Error("OnGiveUp was not called")
	}
	waitFor(t, "supervision to end after giving up", 10*time.Second, func() bool { return runtime.Supervisors(w.rt) == 0 })
	noProcessesLeft(t, "loop-50")
	if code, body, _ := w.get(env.Host); code != http.StatusServiceUnavailable || !strings.Contains(body, "not running") {
		t.Errorf("a given-up app answers %d %q, want the status page", code, body)
	}

	// The runtime's log says the same, keyed by environment and integration.
	var loggedGiveUp bool
	for line := range strings.SplitSeq(logs.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil || !strings.HasPrefix(rec["msg"].(string), "app ") {
			continue
		}
		if rec["environment"] != "env-50" || rec["integration"] != "app" {
			t.Errorf("log record without the environment's keys: %s", line)
		}
		loggedGiveUp = loggedGiveUp || rec["level"] == "ERROR"
	}
	if !loggedGiveUp {
		t.Errorf("no error logged for giving up:\n%s", logs.String())
	}
}

func TestRemovingAnAppBeingRestartedLeavesNoProcess(t *testing.T) {
	t.Parallel()
	for i, tc := range []struct {
		name    string
		delay   time.Duration
		restart string
		when    string // in the app log
	}{
		{"during the backoff", 2 * time.Second, "none", "starting it again in 2s"},
		{"during the health check of a restart", 50 * time.Millisecond, "slow", "` again on 127.0.0.1:"},
	} {
		// A marker of its own: the subtests run at once, and each looks
		// for its own processes only.
		marker := "rm" + strconv.Itoa(i) + "-60"
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, runtime.Options{Restart: runtime.RestartPolicy{Delay: tc.delay}})
			env := w.deploySupervised(t, 60, marker, tc.restart)
			w.exit(t, env.Host, 1)
			waitFor(t, tc.when, 10*time.Second, func() bool { return strings.Contains(w.appLog(60), tc.when) })
			if err := w.rt.Remove(t.Context(), env, nil); err != nil {
				t.Fatal(err)
			}
			if n := runtime.Supervisors(w.rt); n != 0 {
				t.Fatalf("%d supervisors left after Remove", n)
			}
			noProcessesLeft(t, marker)
			// Past the backoff nothing came back either.
			time.Sleep(tc.delay + 500*time.Millisecond)
			noProcessesLeft(t, marker)
			if _, err := os.Stat(filepath.Join(w.dataDir, "runtime", "envs", "60")); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("the environment's directory is back: %v", err)
			}
			if _, _, ok := w.rt.Acquire(env.Host); ok {
				t.Fatal("a removed environment has a backend")
			}
		})
	}
}

func TestARedeployDuringABackoffReplacesTheApp(t *testing.T) {
	t.Parallel()
	w := newWorld(t, runtime.Options{Restart: runtime.RestartPolicy{Delay: 3 * time.Second}})
	env := w.deploySupervised(t, 70, "old-70", "none")
	w.exit(t, env.Host, 1)
	waitFor(t, "the backoff", 10*time.Second, func() bool { return strings.Contains(w.appLog(70), "starting it again in 3s") })
	crashed := time.Now()
	w.deploySupervised(t, 70, "new-70", "none")
	if time.Since(crashed) > 3*time.Second {
		t.Skip("the redeploy took longer than the backoff")
	}
	if n := runtime.Supervisors(w.rt); n != 1 {
		t.Fatalf("%d supervisors after the redeploy, want 1", n)
	}
	time.Sleep(time.Until(crashed.Add(3500 * time.Millisecond)))
	noProcessesLeft(t, "old-70")
	if code, body, _ := w.get(env.Host); code != 200 || body != "serving new-70\n" {
		t.Fatalf("after the redeploy the proxy answers %d %q", code, body)
	}
	if log := w.appLog(70); strings.Contains(log, "start.sh old-70` again") {
		t.Fatalf("the replaced app was restarted:\n%s", log)
	}

	// The new app is supervised in turn, and Close ends that too.
	w.exit(t, env.Host, 1)
	waitFor(t, "the new app's backoff", 10*time.Second, func() bool {
		return strings.Count(w.appLog(70), "starting it again in 3s") == 2
	})
	w.rt.Close()
	if n := runtime.Supervisors(w.rt); n != 0 {
		t.Fatalf("%d supervisors after Close", n)
	}
	noProcessesLeft(t, "new-70")
}

// syncBuffer is a bytes.Buffer for a logger written from many goroutines.
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
