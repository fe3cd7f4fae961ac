package runtime_test

import (
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/glenv/glenv/internal/gitlabtest"
	"github.com/glenv/glenv/internal/runtime"
	"github.com/glenv/glenv/internal/store"
)

// stagedLine starts what a deploy logs when its app's sandbox was set up
// ahead: while the commit was fetched (stage.go), or before the push
// (prestage.go).
const stagedLine = "the app's sandbox was set up "

// prestagedLine is what a deploy logs when it used the sandbox staged
// before its push.
const prestagedLine = "the app's sandbox was set up before the push"

// pushProbe commits the probe app (no build steps, no database: a push a
// redeploy can stage) with .glenv.yml's extra lines and files, deploys it
// to env, and returns the commit and the deploy's log.
func (w *world) pushProbe(t *testing.T, env store.Environment, extra string, files map[string]string) (string, string) {
	t.Helper()
	fs := probeFiles(t, env.Name, "")
	yml := strings.Replace(fs[".glenv.yml"], "services:\n  postgresql: [main]\n", "", 1)
	yml = yml[strings.Index(yml, "run:"):] // no build steps
	// The descriptors the app's command starts with, for the test to see.
	yml = strings.Replace(yml, "run: exec", "run: ls /proc/$$/fd > $GLENV_DATA_DIR/fds; exec", 1)
	fs[".glenv.yml"] = yml + extra
	for k, v := range files {
		fs[k] = v
	}
	sha := w.gl.Commit(t, w.project.ID, gitlabtest.Commit{Branch: env.Name, Files: fs})
	var logs strings.Builder
	if err := w.rt.Deploy(t.Context(), w.request(env, sha, &logs)); err != nil {
		t.Fatalf("deploy %s: %v\n%s", env.Name, err, logs.String())
	}
	return sha, logs.String()
}

// A push to an environment whose app runs sets the new app's sandbox up
// while the commit is fetched, and the app it then runs is the one a
// sandbox started after the build would run: the new commit in /app, the
// new GLENV_SHA, and every wall of the sandbox, attacked from inside.
// Whatever a push changes that the staged sandbox did not guess
// (.glenv.yml's command or variables, a build step) makes the deploy
// start the app as before, and the app sees the change.
func TestARedeploySetsTheAppsSandboxUpWhileItFetches(t *testing.T) {
	t.Parallel()
	w := newWorld(t, runtime.Options{})
	requireStaging(t, w.rt)
	env := w.env(95, "mr-95", "mr")
	if _, log := w.pushProbe(t, env, "", map[string]string{"version.txt": "one"}); strings.Contains(log, stagedLine) {
		t.Fatalf("the first deploy had no app to stage a sandbox from, yet logged it staged one:\n%s", log)
	}

	sha, log := w.pushProbe(t, env, "", map[string]string{"version.txt": "two"})
	if !strings.Contains(log, stagedLine) {
		t.Fatalf("a push changing only the code did not stage the app's sandbox:\n%s", log)
	}
	w.assertStagedSandboxHolds(t, env, sha, "two", 95)

	for _, tc := range []struct {
		name, extra, check, want string
	}{
		{"a new variable in .glenv.yml starts the app as before, with it", "env:\n  GREETING: hello\n", "echo $GREETING", "exit 0\nhello"},
		{"a build step starts the app as before, from the build", "build: echo built > built.txt\n", "cat /app/built.txt", "exit 0\nbuilt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, log := w.pushProbe(t, env, tc.extra, map[string]string{"version.txt": tc.name})
			if strings.Contains(log, stagedLine) {
				t.Fatalf("the staged sandbox was used although the push changed what it runs:\n%s", log)
			}
			if got := w.probe(t, env, "/sh?cmd="+url.QueryEscape(tc.check)); !strings.Contains(got, tc.want) {
				t.Fatalf("%s: want %q in %q", tc.check, tc.want, got)
			}
			if got := w.probe(t, env, "/sh?cmd="+url.QueryEscape("cat /app/version.txt")); !strings.Contains(got, tc.name) {
				t.Fatalf("the app serves %q, not the pushed commit", got)
			}
		})
	}
	t.Run("nothing staged is left behind once the environment is paused", func(t *testing.T) {
		if err := w.rt.Pause(t.Context(), env.ID); err != nil {
			t.Fatal(err)
		}
		// A sandbox staged before the pause, in a spare being filled, is
		// discarded where the spare is filled: wait for that, bounded.
		var left []string
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			left, _ = filepath.Glob(filepath.Join(w.dataDir, "runtime", "tmp", "app-*"))
			if len(left) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("staged /app directories left: %v", left)
			}
		}
	})
}

// assertStagedSandboxHolds attacks the app a staged sandbox started, env's
// number n (its uid is 200000+n) at commit sha whose version.txt says
// version: it serves that commit, and is as confined as any app.
func (w *world) assertStagedSandboxHolds(t *testing.T, env store.Environment, sha, version string, n int) {
	t.Helper()
	glenvURL, _ := url.Parse(w.proxy.URL)
	host, port := hostPort(t, glenvURL.Host)
	for _, tc := range []struct{ name, path, want string }{
		{"the app serves the pushed commit", "/sh?cmd=" + url.QueryEscape("cat /app/version.txt"), "exit 0\n" + version},
		{"the app sees the pushed commit's GLENV_SHA, set at the gate", "/sh?cmd=" + url.QueryEscape("echo $GLENV_SHA"), "exit 0\n" + sha},
		{"the app runs as the environment's uid, not root", "/sh?cmd=" + url.QueryEscape("id -u"), "exit 0\n" + strconv.Itoa(200000+n)},
		// The gate's pipes were 3 and 4 (sh keeps its own at 10 and up).
		{"the app's command starts with no descriptor of the gate", "/sh?cmd=" + url.QueryEscape("grep -cx '[34]' $GLENV_DATA_DIR/fds || true"), "exit 0\n0\n"},
		{"the app has no capabilities", "/sh?cmd=" + url.QueryEscape("grep -E '^CapBnd' /proc/self/status"), "CapBnd:\t0000000000000000"},
		{"/app is read-only", "/sh?cmd=" + url.QueryEscape("touch /app/x"), "Read-only file system"},
		{"glenv's data dir is hidden", "/sh?cmd=" + url.QueryEscape("ls "+filepath.Join(w.dataDir, "runtime")), "No such file or directory"},
		{"glenv's listener is out of reach", "/connect?host=" + host + "&port=" + port, "failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := w.probe(t, env, tc.path); !strings.Contains(got, tc.want) {
				t.Fatalf("%s: want %q in %q", tc.path, tc.want, got)
			}
		})
	}
}

// requireStaging is requireSandbox where the test needs sandboxes staged
// ahead, which glenv does only as root (it makes the app's namespace
// ahead).
func requireStaging(t *testing.T, rt *runtime.Runtime) {
	t.Helper()
	requireSandbox(t, rt)
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("a sandbox is staged only where glenv makes the app's namespace ahead, as root, as in CI")
		}
		t.Skip("a sandbox is staged only where glenv makes the app's namespace ahead, as root")
	}
}

// waitPrestaged waits (bounded) until the runtime staged the next
// deploy's sandbox of env, as it does once a deploy settled.
func waitPrestaged(t *testing.T, rt *runtime.Runtime, env store.Environment) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !runtime.Prestaged(rt, env.ID); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no sandbox was staged for the next push within 30s of a deploy")
		}
	}
}

// Once a deploy settled, the next push's sandbox is set up before the push
// (prestage.go), from the app that runs: the push then only fetches, and
// the app it runs is the one a sandbox started after the build would run
// (the pushed commit, its GLENV_SHA, every wall of the sandbox, attacked
// from inside). Pausing the environment leaves nothing of it running.
func TestASandboxStagedBeforeThePushRunsThePushedCommit(t *testing.T) {
	t.Parallel()
	w := newWorld(t, runtime.Options{})
	requireStaging(t, w.rt)
	env := w.env(96, "mr-96", "mr")
	w.pushProbe(t, env, "", map[string]string{"version.txt": "one"})
	// The first request through the proxy settles the deploy.
	if got := w.probe(t, env, "/sh?cmd="+url.QueryEscape("cat /app/version.txt")); !strings.Contains(got, "one") {
		t.Fatalf("the first deploy serves %q", got)
	}
	waitPrestaged(t, w.rt, env)
	sha, log := w.pushProbe(t, env, "", map[string]string{"version.txt": "two"})
	if !strings.Contains(log, prestagedLine) {
		t.Fatalf("the push did not use the sandbox staged before it:\n%s", log)
	}
	w.assertStagedSandboxHolds(t, env, sha, "two", 96)
	t.Run("a pause discards the sandbox staged for the next push", func(t *testing.T) {
		waitPrestaged(t, w.rt, env)
		if err := w.rt.Pause(t.Context(), env.ID); err != nil {
			t.Fatal(err)
		}
		if runtime.Prestaged(w.rt, env.ID) {
			t.Fatal("the paused environment's next sandbox is still staged")
		}
		if left, _ := filepath.Glob(filepath.Join(w.dataDir, "runtime", "tmp", "app-*")); len(left) > 0 {
			t.Fatalf("staged /app directories left: %v", left)
		}
	})
}
