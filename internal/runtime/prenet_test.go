package runtime_test

import (
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/glenv/glenv/internal/gitlabtest"
	"github.com/glenv/glenv/internal/runtime"
	"github.com/glenv/glenv/internal/store"
)

// deployProbeAhead deploys the probe app without services.postgresql, so
// that (under root) it starts in the network namespace its deploy made
// ahead (prenet.go), and returns the deploy's log.
func (w *world) deployProbeAhead(t *testing.T, id int64, kind string) (store.Environment, string) {
	t.Helper()
	name := "ahead-" + strconv.FormatInt(id, 10)
	if kind == "mr" {
		name = "mr-" + strconv.FormatInt(id, 10)
	}
	env := w.env(id, name, kind)
	files := probeFiles(t, name, "")
	files[".glenv.yml"] = strings.Replace(files[".glenv.yml"], "services:\n  postgresql: [main]\n", "", 1)
	sha := w.gl.Commit(t, w.project.ID, gitlabtest.Commit{Branch: name, Files: files})
	var logs strings.Builder
	if err := w.rt.Deploy(t.Context(), w.request(env, sha, &logs)); err != nil {
		t.Fatalf("deploy %s: %v\n%s", name, err, logs.String())
	}
	if strings.Contains(logs.String(), "could not be made ahead") {
		t.Fatalf("the app's network was not made ahead:\n%s", logs.String())
	}
	return env, logs.String()
}

// The namespace a deploy makes ahead is as closed as the one bwrap makes:
// a merge request's app started in it reaches nothing on the host's
// loopback (glenv, another environment, another service), not even
// through pasta's gateway, lists none of the host's sockets, and has no
// capabilities; both apps still serve, and a redeploy switches to a new
// namespace.
func TestAnAppInANamespaceMadeAheadReachesNothingOnTheHost(t *testing.T) {
	t.Parallel()
	w := newWorld(t, runtime.Options{})
	requireSandbox(t, w.rt)
	if os.Geteuid() != 0 && os.Getenv("CI") == "true" {
		t.Fatal("namespaces are made ahead only when glenv is root, as in CI")
	}
	other, _ := w.deployProbeAhead(t, 91, "branch")
	attacker, _ := w.deployProbeAhead(t, 92, "mr")
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
			if got := w.probe(t, attacker, "/connect?host="+host+"&port="+port); !strings.HasPrefix(got, "failed") {
				t.Fatalf("the app connected to %s (%s): %q", tc.name, tc.addr, got)
			}
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
	t.Run("it has no capabilities", func(t *testing.T) {
		got := w.probe(t, attacker, "/sh?cmd="+url.QueryEscape("grep -E '^Cap(Prm|Eff|Bnd)' /proc/self/status"))
		for _, want := range []string{"CapBnd:\t0000000000000000", "CapEff:\t0000000000000000", "CapPrm:\t0000000000000000"} {
			if !strings.Contains(got, want) {
				t.Errorf("inside the sandbox: want %q in\n%s", want, got)
			}
		}
	})
	t.Run("both apps serve, and a redeploy serves from a namespace of its own", func(t *testing.T) {
		for _, env := range []store.Environment{other, attacker} {
			if got := w.probe(t, env, "/"); got != "probe "+env.Name {
				t.Fatalf("%s answers %q", env.Name, got)
			}
		}
		before, _, _ := w.rt.Acquire(attacker.Host)
		w.deployProbeAhead(t, 92, "mr")
		after, release, ok := w.rt.Acquire(attacker.Host)
		if !ok {
			t.Fatal("no backend after the redeploy")
		}
		release()
		if after == before {
			t.Fatalf("the redeploy serves on the old address %s", before)
		}
		if got := w.probe(t, attacker, "/"); got != "probe "+attacker.Name {
			t.Fatalf("after the redeploy %s answers %q", attacker.Name, got)
		}
	})
}

// With --environment-egress deny, an app in a namespace made ahead serves
// but reaches nothing outside, as in bwrap's own.
func TestANamespaceMadeAheadDeniesEgress(t *testing.T) {
	// Not parallel: outsideServer's namespace is named after the process,
	// and TestEgressCanBeDenied makes one too.
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("this test makes a network namespace with ip netns and needs root, as CI has")
		}
		t.Skip("needs root to make a network namespace for the outside world")
	}
	outside := outsideServer(t)
	w := newWorld(t, runtime.Options{DenyEgress: true})
	requireSandbox(t, w.rt)
	env, _ := w.deployProbeAhead(t, 93, "mr")
	host, port := hostPort(t, outside)
	if got := w.probe(t, env, "/connect?host="+host+"&port="+port); !strings.HasPrefix(got, "failed") {
		t.Fatalf("connecting to %s: %q, want failed", outside, got)
	}
	if got := w.probe(t, env, "/"); got != "probe "+env.Name {
		t.Fatalf("%s answers %q", env.Name, got)
	}
}
