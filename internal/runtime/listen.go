package runtime

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
)

// A starting app is probed over HTTP only once it listens: until then
// glenv watches its network namespace's listening sockets, which costs
// nothing of the app's or pasta's time (each HTTP probe of an app not yet
// listening woke pasta to connect in the namespace and be refused), and
// shows the socket within a millisecond of listen(2) instead of at the
// next of the probes 5 ms apart. It asks the kernel through sock_diag
// (listendiag.go: 41 µs a look, under load); /proc's socket table, which
// costs 1 ms of CPU a file here, only where glenv cannot make that socket.

// listenWatch is how glenv sees whether a starting app listens yet: a
// sock_diag socket in its namespace (listendiag.go), or where glenv could
// not make one, /proc's socket table of a process in it; neither when
// glenv knows no process there.
type listenWatch struct {
	diag *listenDiag
	pid  int
}

// watchListen is the watch of p's namespace.
func watchListen(p *proc) *listenWatch {
	w := &listenWatch{pid: listenPid(p)}
	if ns := probeNS(p); ns != nil {
		w.diag, _ = newListenDiag(ns)
		ns.Close()
	}
	return w
}

// listens reports whether a TCP socket listens on port; known is false
// when the watch cannot say (closed, or nothing to look at).
func (w *listenWatch) listens(port int) (listening, known bool) {
	if w.diag != nil {
		ok, err := w.diag.listens(port)
		if err == nil {
			return ok, true
		}
		// No sock_diag for TCP in this kernel: /proc says it, dearer.
		w.diag.close()
		w.diag = nil
	}
	return listensOn(w.pid, port)
}

// close ends the watch; listens then knows nothing.
func (w *listenWatch) close() {
	w.diag.close()
	w.diag, w.pid = nil, 0
}

// listenPid is a process in p's network namespace whose socket table
// /proc shows, or 0 when glenv knows none (bwrap made the namespace).
func listenPid(p *proc) int {
	if p == nil || p.cmd == nil || p.cmd.cmd == nil || p.cmd.cmd.Process == nil || p.cmd.j.net == nil {
		return 0
	}
	// Started in the namespace made ahead: the sandbox's first process
	// (and every process of it) is in it.
	return p.cmd.cmd.Process.Pid
}

// listensOn reports whether a TCP socket listens on port in the network
// namespace of process pid; known is false when /proc could not say (the
// process is gone): the caller then probes over HTTP.
func listensOn(pid, port int) (listening, known bool) {
	if pid <= 0 {
		return false, false
	}
	proc := "/proc/" + strconv.Itoa(pid) + "/net/"
	for _, f := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(proc + f)
		if err != nil {
			return false, false
		}
		if listensIn(b, port) {
			return true, true
		}
	}
	return false, true
}

// listensIn reports whether a /proc/net/tcp or tcp6 table holds a socket
// in state LISTEN (0A) on port, at any local address.
func listensIn(table []byte, port int) bool {
	want := []byte(fmt.Sprintf(":%04X", port))
	for _, line := range bytes.Split(table, []byte("\n")) {
		// "  sl  local_address rem_address   st ...": fields 1 and 3.
		f := bytes.Fields(line)
		if len(f) < 4 || !bytes.Equal(f[3], []byte("0A")) {
			continue
		}
		if bytes.HasSuffix(f[1], want) {
			return true
		}
	}
	return false
}
