package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/glenv/glenv/internal/proxy"
	"github.com/glenv/glenv/internal/store"
)

// Each path under test runs in a process of its own (this program started
// again with -role), as an environment's app and glenv do, so the CPU each
// spends is its own: the parent asks for it over the child's stdin and the
// child answers with getrusage, all threads included.

// child is a running role process.
type child struct {
	mu   sync.Mutex // one question at a time: alongside asks the app while a path runs
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Reader
	addr string
}

func startChild(role, addr, upstream, profile string) *child {
	self, err := os.Executable()
	must(err)
	cmd := exec.Command(self, "-role", role, "-listen", addr, "-upstream", upstream, "-cpuprofile", profile)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	must(err)
	out, err := cmd.StdoutPipe()
	must(err)
	must(cmd.Start())
	c := &child{cmd: cmd, in: in, out: bufio.NewReader(out), addr: addr}
	waitUp(addr)
	return c
}

// usage is what a child went through so far: the counters that say where
// a bad round's time went (issue 15: GC, new app connections, or waiting
// for a CPU on a shared machine).
type usage struct {
	cpu     time.Duration // user + system, all threads
	runq    time.Duration // runnable but waiting for a CPU, all threads (schedstat)
	gcs     int64         // GC cycles
	gcPause time.Duration // their stop-the-world pauses
	conns   int64         // connections accepted (the app: the paths' dials)
	csw     int64         // context switches, voluntary and not, all threads: each a thread put to sleep or woken
}

func (u usage) add(v usage) usage {
	return usage{u.cpu + v.cpu, u.runq + v.runq, u.gcs + v.gcs, u.gcPause + v.gcPause, u.conns + v.conns, u.csw + v.csw}
}

func (u usage) sub(v usage) usage {
	return usage{u.cpu - v.cpu, u.runq - v.runq, u.gcs - v.gcs, u.gcPause - v.gcPause, u.conns - v.conns, u.csw - v.csw}
}

// usage asks the child for its counters.
func (c *child) usage() usage {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, err := io.WriteString(c.in, "usage\n")
	must(err)
	line, err := c.out.ReadString('\n')
	must(err)
	var cpu, runq, gcs, pause, conns, csw int64
	_, err = fmt.Sscan(strings.TrimSpace(line), &cpu, &runq, &gcs, &pause, &conns, &csw)
	must(err)
	return usage{time.Duration(cpu) * time.Microsecond, time.Duration(runq), gcs, time.Duration(pause), conns, csw}
}

// cpu is the CPU time the child has used so far.
func (c *child) cpu() time.Duration { return c.usage().cpu }

func (c *child) stop() {
	c.in.Close() // the child exits when its stdin closes
	c.cmd.Wait()
}

// runRole is the child's side: serve the role on listen, answer CPU
// questions on stdin, exit when stdin closes.
func runRole(role, listen, upstream, profile string) {
	if profile != "" {
		f, err := os.Create(profile)
		must(err)
		must(pprof.StartCPUProfile(f))
		defer pprof.StopCPUProfile()
	}
	l, err := net.Listen("tcp", listen)
	must(err)
	switch role {
	case "app":
		body := []byte("hello, glenv\n")
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			w.Write(body)
		}), ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				accepted.Add(1)
			}
		}}
		go srv.Serve(l)
	case "forwarder":
		go forward(l, upstream)
	case "proxy", "proxy-netfront", "proxy-reverseproxy":
		p := proxy.New(proxy.Options{EnvDomain: "localhost", Backends: fixed{addr: upstream},
			DisableLeanPath: role == "proxy-reverseproxy",
			Lookup: func(context.Context, string) (store.Environment, error) {
				return store.Environment{}, store.ErrNotFound
			}})
		// As internal/server configures glenv's listener: the Front ahead
		// of net/http; proxy-netfront is the lean path behind net/http
		// alone, as before the Front.
		srv := &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
		if role == "proxy" {
			go proxy.NewFront(p, srv).Serve(l)
		} else {
			go srv.Serve(l)
		}
	default:
		must(fmt.Errorf("unknown role %q", role))
	}
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		var ru syscall.Rusage
		must(syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		fmt.Println(ru.Utime.Nano()/1e3+ru.Stime.Nano()/1e3, runqWait(), ms.NumGC, ms.PauseTotalNs, accepted.Load(), ru.Nvcsw+ru.Nivcsw)
	}
}

// accepted counts the app's connections.
var accepted atomic.Int64

// runqWait is the time this process's threads spent runnable, waiting for
// a CPU, in nanoseconds: the second field of each thread's schedstat.
func runqWait() int64 {
	paths, _ := filepath.Glob("/proc/self/task/*/schedstat")
	var sum int64
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // the thread ended
		}
		var run, wait int64
		if _, err := fmt.Sscan(string(b), &run, &wait); err == nil {
			sum += wait
		}
	}
	return sum
}

// forward is the best any proxy could do without reading HTTP: each client
// connection gets one upstream connection and bytes are copied both ways
// (io.Copy between TCP connections splices on Linux).
func forward(l net.Listener, upstream string) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			u, err := net.Dial("tcp", upstream)
			if err != nil {
				return
			}
			defer u.Close()
			done := make(chan struct{})
			go func() {
				io.Copy(u, c)
				u.(*net.TCPConn).CloseWrite()
				close(done)
			}()
			io.Copy(c, u)
			c.(*net.TCPConn).CloseWrite()
			<-done
		}()
	}
}

// fixed is a Backends with the runtime's cost: a lookup and a counter.
type fixed struct{ addr string }

var inflight atomic.Int64

func (f fixed) Acquire(host string) (string, func(), bool) {
	inflight.Add(1)
	return f.addr, func() { inflight.Add(-1) }, true
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	defer l.Close()
	return l.Addr().String()
}

func waitUp(addr string) {
	for range 1500 { // 30 s: a loaded machine starts python slowly
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	must(fmt.Errorf("nothing listens on %s after 30s", addr))
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/proxy:", err)
		os.Exit(1)
	}
}
