package runtime

import (
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// testNetNS makes a network namespace, closed at cleanup. Without one the
// test fails under CI (which runs as root and must be able to) and is
// skipped elsewhere.
func testNetNS(t testing.TB) *os.File {
	t.Helper()
	ns, err := newNetNS()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("make a network namespace: %v; CI runs as root and must be able to", err)
		}
		t.Skipf("no network namespace here (needs root): %v", err)
	}
	t.Cleanup(func() { ns.Close() })
	return ns
}

// A health probe of an app in a namespace glenv made reaches the app on
// that namespace's own loopback, not whatever listens on the same port of
// the host's, and leaves glenv's threads in the host's namespace.
func TestTheHealthProbeConnectsInsideTheAppsNamespace(t *testing.T) {
	ns := testNetNS(t)
	inside, err := onThreadIn(ns, func() (net.Listener, error) {
		if err := upLoopback(); err != nil {
			return nil, err
		}
		return net.Listen("tcp", "127.0.0.1:0")
	})
	if err != nil {
		t.Fatalf("listen inside the namespace: %v", err)
	}
	defer inside.Close()
	port := inside.Addr().(*net.TCPAddr).Port
	// The host's loopback has a listener on the same port, answering
	// otherwise: a probe through the host would get it.
	outside, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Skipf("port %d is taken on the host's loopback: %v", port, err)
	}
	defer outside.Close()
	go http.Serve(inside, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "inside") }))
	go http.Serve(outside, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "host") }))

	get := func(tr http.RoundTripper) string {
		t.Helper()
		resp, err := (&http.Client{Transport: tr}).Get("http://127.0.0.1:" + strconv.Itoa(port) + "/")
		if err != nil {
			t.Fatalf("probe: %v", err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	p := &proc{cmd: &launch{j: job{net: &netNS{ns: ns}}}, port: port}
	tr, done := probeTransport(p)
	for range 3 {
		if got := get(tr); got != "inside" {
			t.Fatalf("the probe of an app in its namespace reached %q", got)
		}
	}
	done()
	if got := get(&http.Transport{DisableKeepAlives: true}); got != "host" {
		t.Fatalf("after the probes, glenv's own connections reach %q, not the host's loopback", got)
	}
	t.Run("an app in bwrap's own namespace is probed through the host's port", func(t *testing.T) {
		tr, done := probeTransport(&proc{cmd: &launch{}, port: port})
		defer done()
		if got := get(tr); got != "host" {
			t.Fatalf("got %q", got)
		}
	})
}

// upLoopback brings up lo in the calling thread's network namespace (a new
// namespace's is down; pasta brings it up for an app's).
func upLoopback() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	ifr.SetUint16(unix.IFF_UP | unix.IFF_LOOPBACK | unix.IFF_RUNNING)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}
