package runtime_test

import (
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/glenv/glenv/internal/runtime"
	"github.com/glenv/glenv/internal/store"
)

func TestAnEnvironmentOverItsLimitsIsContainedAndTheOthersKeepServing(t *testing.T) {
	t.Parallel()
	dbAddr, _ := listen(t)
	var mu sync.Mutex
	stopped := map[int64]string{}
	w := newWorld(t, runtime.Options{
		Databases:      fakeDatabases{addr: dbAddr},
		DiskCheckEvery: 100 * time.Millisecond,
		Restart:        runtime.RestartPolicy{Delay: 50 * time.Millisecond},
		OnGiveUp: func(envID int64, reason string) {
			mu.Lock()
			defer mu.Unlock()
			stopped[envID] = reason
		},
	})
	requireSandbox(t, w.rt)
	if !runtime.HasCgroups(w.rt) {
		if os.Getenv("CI") == "true" {
			t.Fatal("glenv cannot make cgroups here; CI runs as root and must")
		}
		t.Skip("glenv cannot make cgroups here")
	}
	victim := w.deployProbe(t, 91, "branch", "")
	hog := w.deployProbe(t, 92, "mr", "limits:\n  memory: 64M\n  processes: 24\n  cpu: 0.5\n  disk: 8M\n")
	othersServe := func(t *testing.T) {
		t.Helper()
		if got := w.probe(t, victim, "/"); got != "probe "+victim.Name {
			t.Fatalf("the other environment answers %q", got)
		}
	}

	t.Run("processes over the limit are refused", func(t *testing.T) {
		fork := `python3 -c "
import os, time
n = 0
try:
    for i in range(100):
        if os.fork() == 0:
            time.sleep(3); os._exit(0)
        n += 1
except OSError as e:
    print('refused after', n, e)
"`
		got := w.probe(t, hog, "/sh?cmd="+url.QueryEscape(fork))
		m := regexp.MustCompile(`refused after (\d+)`).FindStringSubmatch(got)
		if m == nil {
			t.Fatalf("100 forks under a limit of 24 processes all succeeded:\n%s", got)
		}
		if n, _ := strconv.Atoi(m[1]); n >= 24 {
			t.Fatalf("%d forks succeeded under a limit of 24 processes", n)
		}
		othersServe(t)
	})

	t.Run("memory over the limit kills only that environment's process", func(t *testing.T) {
		// A child asks for 256M under a 64M limit: the kernel kills it.
		got := w.probe(t, hog, "/sh?cmd="+url.QueryEscape(`python3 -c "b = bytearray(256 << 20); b[::4096] = b'1' * len(b[::4096]); print('allocated')"; echo status $?`))
		if strings.Contains(got, "allocated") || !strings.Contains(got, "status 137") {
			t.Fatalf("256M under a 64M limit: %q, want the child killed (status 137)", got)
		}
		othersServe(t)
		// The app itself growing over the limit is killed, said so, and
		// started again.
		before, release, _ := w.rt.Acquire(hog.Host)
		release()
		resp := w.probeNoFail(hog, "/alloc?mb=256")
		if resp == "allocated" {
			t.Fatal("the app grew by 256M under a 64M limit")
		}
		waitFor(t, "the killed app to be said so and started again", 30*time.Second, func() bool {
			addr, release, ok := w.rt.Acquire(hog.Host)
			if ok {
				release()
			}
			return ok && addr != before && strings.Contains(w.appLog(92), "went over the memory limit 64M")
		})
		othersServe(t)
	})

	t.Run("disk over the limit stops the environment with a reason", func(t *testing.T) {
		got := w.probe(t, hog, "/sh?cmd="+url.QueryEscape(`dd if=/dev/zero of=$GLENV_DATA_DIR/big bs=1M count=32 2>&1; sleep 5; echo still running`))
		if strings.Contains(got, "still running") {
			t.Fatalf("32M written under a disk limit of 8M and the environment kept running:\n%s", got)
		}
		waitFor(t, "the environment to be stopped", 10*time.Second, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return stopped[92] != ""
		})
		mu.Lock()
		reason := stopped[92]
		mu.Unlock()
		if !strings.Contains(reason, "over its limit of 8M (limits.disk in .glenv.yml)") {
			t.Fatalf("stopped with %q", reason)
		}
		if log := w.appLog(92); !strings.Contains(log, "over its limit of 8M") || !strings.Contains(log, "stays stopped until its next deploy") {
			t.Fatalf("the app log does not say why:\n%s", log)
		}
		if _, _, ok := w.rt.Acquire(hog.Host); ok {
			t.Fatal("the stopped environment still has a backend")
		}
		if _, ok := stopped[91]; ok {
			t.Fatal("the other environment was stopped too")
		}
		othersServe(t)
	})
}

// probeNoFail is probe for a request the app may die answering.
func (w *world) probeNoFail(env store.Environment, path string) string {
	code, body, err := w.getPath(env.Host, path)
	if err != nil {
		return err.Error()
	}
	return strconv.Itoa(code) + " " + body
}
