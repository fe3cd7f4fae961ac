package runtime

import (
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
)

// The listen watch of an app's namespace sees a socket listening there,
// IPv4 or IPv6, and not one on the same port of the host's loopback, nor
// a closed one.
func TestTheListenWatchSeesListenersInTheAppsNamespaceOnly(t *testing.T) {
	ns := testNetNS(t)
	if _, err := onThreadIn(ns, func() (struct{}, error) { return struct{}{}, upLoopback() }); err != nil {
		t.Fatal(err)
	}
	listen := func(addr string) net.Listener {
		t.Helper()
		l, err := onThreadIn(ns, func() (net.Listener, error) { return net.Listen("tcp", addr) })
		if err != nil {
			t.Fatalf("listen on %s inside the namespace: %v", addr, err)
		}
		return l
	}
	// A deploy's watch of an app in a namespace glenv made asks sock_diag,
	// not /proc (whose every read walks all of the kernel's connections).
	w := watchListen(&proc{cmd: &launch{j: job{net: &netNS{ns: ns}}}})
	if w.diag == nil {
		t.Fatal("the watch of an app in glenv's namespace has no sock_diag socket")
	}
	defer w.close()
	// Its socket, listed in the namespace's /proc/net/netlink, does not
	// carry glenv's pid as its port id.
	table, err := onThreadIn(ns, func() ([]byte, error) { return os.ReadFile("/proc/thread-self/net/netlink") })
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(table), "\n")[1:] {
		if f := strings.Fields(line); len(f) > 2 && f[2] == strconv.Itoa(os.Getpid()) {
			t.Fatalf("the sock_diag socket shows glenv's pid to the app's namespace: %q", line)
		}
	}
	port := func(l net.Listener) int { return l.Addr().(*net.TCPAddr).Port }

	v4 := listen("127.0.0.1:0")
	v6 := listen("[::1]:0")
	if l, known := w.listens(port(v4)); !l || !known {
		t.Fatalf("IPv4 listener inside: listens = %v, %v", l, known)
	}
	if l, known := w.listens(port(v6)); !l || !known {
		t.Fatalf("IPv6 listener inside: listens = %v, %v", l, known)
	}
	// The host's loopback listens on a port the namespace does not.
	host, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	if l, known := w.listens(port(host)); l || !known {
		t.Fatalf("port %d listens on the host only: listens = %v, %v", port(host), l, known)
	}
	// A connection to it is not a listener.
	c, err := onThreadIn(ns, func() (net.Conn, error) { return net.Dial("tcp", v4.Addr().String()) })
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if l, _ := w.listens(c.LocalAddr().(*net.TCPAddr).Port); l {
		t.Fatal("a connected socket's port counted as listening")
	}
	p4 := port(v4)
	v4.Close()
	v6.Close()
	if l, known := w.listens(p4); l || !known {
		t.Fatalf("closed listener %d: listens = %v, %v", p4, l, known)
	}
	w.close()
	if _, known := w.listens(p4); known {
		t.Fatal("a closed watch claims to know")
	}
}

// BenchmarkListenWatch is the CPU of one look whether an app listens yet:
// the sock_diag dump of its namespace against /proc's socket tables.
func BenchmarkListenWatch(b *testing.B) {
	ns := testNetNS(b)
	diag, err := newListenDiag(ns)
	if err != nil {
		b.Fatal(err)
	}
	defer diag.close()
	b.Run("sock_diag", func(b *testing.B) {
		for b.Loop() {
			if _, err := diag.listens(8080); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("proc", func(b *testing.B) {
		pid := os.Getpid()
		for b.Loop() {
			listensOn(pid, 8080)
		}
	})
}
