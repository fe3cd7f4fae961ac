package runtime

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// proc is one running app: a process group listening on 127.0.0.1:port.
type proc struct {
	cmd     *launch
	port    int
	sha     string
	build   string // build key
	dataGen int
	done    chan struct{} // closed when the process has exited
	err     error         // exit status, valid after done
	out     *output
}

// output copies a process's output to its log file and, while a deploy
// watches it, to the activity log; it keeps the last lines for errors.
type output struct {
	file  *os.File
	live  atomic.Pointer[func(string)]
	mu    sync.Mutex
	tail  []string
	wg    sync.WaitGroup
	limit int64
}

func newOutput(path string) (*output, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	return &output{file: f, limit: 10 << 20}, nil
}

// attach streams r line by line.
func (o *output) attach(r io.Reader, redact func(string) string) {
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := redact(sc.Text()) + "\n"
			o.mu.Lock()
			o.tail = append(o.tail, line)
			if len(o.tail) > 20 {
				o.tail = o.tail[1:]
			}
			if fi, err := o.file.Stat(); err == nil && fi.Size() > o.limit {
				// Keep the log bounded: start over rather than fill the disk.
				_ = o.file.Truncate(0)
			}
			_, _ = o.file.WriteString(line)
			o.mu.Unlock()
			if live := o.live.Load(); live != nil {
				(*live)(line)
			}
		}
	}()
}

func (o *output) setLive(f func(string)) {
	if f == nil {
		o.live.Store(nil)
		return
	}
	o.live.Store(&f)
}

func (o *output) lastLines() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return strings.Join(o.tail, "")
}

func (o *output) close() {
	o.wg.Wait()
	_ = o.file.Close()
}

// start runs cmd with its output going to out.
func start(cmd *launch, out *output, redact func(string) string) (*proc, error) {
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.out = pw
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return nil, err
	}
	pw.Close()
	out.attach(pr, redact)
	p := &proc{cmd: cmd, done: make(chan struct{}), out: out}
	go func() {
		p.err = cmd.Wait()
		out.wg.Wait()
		pr.Close()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process is gone.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop ends the process group: SIGTERM, then SIGKILL after grace.
func (p *proc) stop(grace time.Duration) {
	if p == nil {
		return
	}
	pgid := p.cmd.pid()
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
	}
	// Whatever is left of the group (children that ignored SIGTERM) goes too.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	<-p.done
	p.out.close()
}

// runToEnd runs a build step or hook to completion, killing its group when
// ctx ends.
func runToEnd(ctx context.Context, cmd *launch, log func(string), redact func(string) string) error {
	pr, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	cmd.out = pw
	if err := cmd.start(ctx); err != nil {
		pr.Close()
		pw.Close()
		return err
	}
	pw.Close()
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			log(redact(sc.Text()) + "\n")
		}
	}()
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err = <-waited:
	case <-ctx.Done():
		_ = syscall.Kill(-cmd.pid(), syscall.SIGKILL)
		<-waited
		err = context.Cause(ctx)
	}
	pr.Close()
	<-copied
	return err
}

// waitHealthy polls http://127.0.0.1:port<path> until it answers 2xx:
// inside the app's namespace where glenv made it (probe.go).
func waitHealthy(ctx context.Context, p *proc, path string, timeout time.Duration) error {
	transport, done := probeTransport(p)
	defer done()
	client := &http.Client{Timeout: 2 * time.Second, Transport: transport}
	url := "http://127.0.0.1:" + strconv.Itoa(p.port) + path
	started := time.Now()
	deadline := started.Add(timeout)
	last := "no answer yet"
	w := watchListen(p)
	defer w.close()
	for {
		wait := probeDelay(time.Since(started))
		if listening, known := w.listens(p.port); known && !listening {
			// Not listening yet (listen.go): look again soon, no probe.
			last, wait = "not listening yet", listenDelay(time.Since(started))
		} else {
			w.close() // from now on, HTTP probes only
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			resp, err := client.Do(req)
			if err == nil {
				_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
				resp.Body.Close()
				if resp.StatusCode >= 200 && resp.StatusCode < 300 {
					return nil
				}
				last = "answered " + resp.Status
			} else if !errors.Is(err, context.Canceled) {
				last = "not listening yet"
			}
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-p.done:
			return fmt.Errorf("the app exited (%v) before %s answered 2xx; its last output:\n%s", p.err, path, p.out.lastLines())
		case <-time.After(wait):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("health check: GET %s did not answer 2xx within %s (%s); make `run` listen on 127.0.0.1:$PORT and `health` a path that answers 200", path, timeout, last)
		}
	}
}

// listenDelay is the wait before glenv looks again whether an app that
// has been starting for so long listens: every millisecond at first (a
// sock_diag dump, 41 µs of glenv's time: listendiag.go), then as probeDelay.
func listenDelay(since time.Duration) time.Duration {
	if since < 2*time.Second {
		return time.Millisecond
	}
	return probeDelay(since)
}

// probeDelay is the wait before the next health probe of an app that has
// been starting for so long. Most apps come up within a second or two, and
// every millisecond between their start and the probe that sees it is
// added to the deploy (a doubling schedule from 20 ms cost ≈ 45 ms on
// average): so every 5 ms at first. An app that takes longer is a slow
// one, probed less and less often (at most every 250 ms) so a long start
// does not cost a core.
func probeDelay(since time.Duration) time.Duration {
	const fast, fastFor, slowest = 5 * time.Millisecond, 2 * time.Second, 250 * time.Millisecond
	if since < fastFor {
		return fast
	}
	// Past the fast period: a tenth of the time waited so far, so the
	// probes stay within 10 % of the app's start, up to slowest.
	return min(max(since/10, fast), slowest)
}

// ports hands out free ports on 127.0.0.1 and remembers the ones in use,
// so two deploys starting at once never get the same one.
type ports struct {
	mu    sync.Mutex
	inUse map[int]bool
}

func (ps *ports) take() (int, error) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("allocate a port on 127.0.0.1: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !ps.inUse[port] {
			ps.inUse[port] = true
			return port, nil
		}
	}
	return 0, errors.New("allocate a port on 127.0.0.1: every port offered is in use")
}

func (ps *ports) free(port int) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	delete(ps.inUse, port)
}
