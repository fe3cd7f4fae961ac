package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// A front connection's life: wait for a request (net/http's idle and
// read-header timeouts), parse its head, forward it when the lean path
// would, otherwise hand the connection to net/http; answer; again.

const (
	stateNew int32 = iota
	stateActive
	stateIdle
)

// frontReadBuffer bounds the heads the front reads itself; a larger one
// (net/http takes up to MaxHeaderBytes) is net/http's.
const frontReadBuffer = 8 << 10

// watchAfter is how long an app may take before the front watches the
// client for going away (net/http watches from the start, at the cost of
// a goroutine and two deadline changes per request). A client that left
// has its app request cancelled this much later at most: what matters is
// that a long poll or a slow page does not run on for nobody, and a
// second is nothing to those.
//
// It is a second, not a few milliseconds, because of what a short timer
// costs even when it never fires (issue 15). Each request arms it, and
// the Go runtime then wakes the thread in the network poller to shorten
// its sleep to the new deadline (wakeNetPoller), and that thread, and
// sysmon, wake again when the stopped timer's time comes. At 5 ms this
// was ~0.5 context switches a request at bench/proxy's 2,000 req/s: 68,000
// in 8 s against 58,000 at a second and 56,000 for the TCP forwarder,
// and 10-20 % more CPU.
const watchAfter = time.Second

var (
	frontReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, frontReadBuffer) }}
	frontWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4<<10) }}
)

type frontConn struct {
	f          *Front
	nc         net.Conn
	br         *bufio.Reader
	bw         *bufio.Writer
	werr       error // the first failed write to the client
	werrFn     func() bool
	host       string // the Host of the last request forwarded
	fw         *frontWriter
	h          head
	out        []byte // the request head as the app gets it
	body       lengthBody
	cb         clientBody
	clientIP   string
	names      []byte // writeAnswer's canonical names, and where each ends
	nameEnd    []int
	order      []int
	acceptedAt time.Time
	deadline   bool // a read deadline is set
	state      atomic.Int32
	since      atomic.Int64 // unix seconds of the change to stateNew (closeIdle reads it for no other state)

	// Watching the client while its app answers.
	wmu                            sync.Mutex
	wcond                          sync.Cond
	timer                          *time.Timer
	armed, running, aborting, gone bool
	up                             *upConn
}

func (f *Front) newConn(nc net.Conn) *frontConn {
	fc := &frontConn{f: f, nc: nc, acceptedAt: time.Now()}
	fc.br = frontReaders.Get().(*bufio.Reader)
	fc.br.Reset(nc)
	fc.bw = frontWriters.Get().(*bufio.Writer)
	fc.bw.Reset(errWriter{fc})
	fc.fw = newFrontWriter(fc.bw)
	fc.werrFn = fc.writeFailed // once: a method value allocates
	fc.wcond.L = &fc.wmu
	if ip, _, err := net.SplitHostPort(nc.RemoteAddr().String()); err == nil {
		fc.clientIP = ip
	}
	fc.setState(stateNew)
	return fc
}

// errWriter notes the first failed write to the client (net/http's
// checkConnErrorWriter): such a connection is not used again.
type errWriter struct{ fc *frontConn }

func (w errWriter) Write(p []byte) (int, error) {
	n, err := w.fc.nc.Write(p)
	if err != nil && w.fc.werr == nil {
		w.fc.werr = err
	}
	return n, err
}

func (fc *frontConn) writeFailed() bool { return fc.werr != nil }

func (fc *frontConn) setState(s int32) {
	if s == stateNew {
		fc.since.Store(time.Now().Unix())
	}
	fc.state.Store(s)
}

func (fc *frontConn) setReadDeadline(t time.Time) {
	fc.nc.SetReadDeadline(t)
	fc.deadline = !t.IsZero()
}

func (fc *frontConn) serve() {
	defer fc.f.forget(fc)
	srv := fc.f.srv
	for first := true; ; first = false {
		if !first {
			fc.setState(stateIdle)
			if fc.f.closing.Load() {
				fc.close()
				return
			}
			if fc.br.Buffered() < 4 {
				// http.Server.idleTimeout: IdleTimeout, else ReadTimeout.
				d, idle := srv.IdleTimeout, time.Time{}
				if d == 0 {
					d = srv.ReadTimeout
				}
				if d > 0 {
					idle = time.Now().Add(d)
				}
				fc.setReadDeadline(idle)
			}
			// As net/http: the head's timeout starts with its first bytes.
			if _, err := fc.br.Peek(4); err != nil {
				fc.close()
				return
			}
			fc.setState(stateActive)
		}
		v := fc.h.parse(fc.buffered())
		var headBy time.Time
		if v == headIncomplete {
			start := time.Now()
			if first {
				start = fc.acceptedAt
			}
			if d := srv.ReadHeaderTimeout; d > 0 {
				headBy = start.Add(d)
			}
			fc.setReadDeadline(headBy)
		}
		for v == headIncomplete {
			if fc.br.Buffered() == fc.br.Size() {
				v = headDoubt // larger than the front reads
				break
			}
			if _, err := fc.br.Peek(fc.br.Buffered() + 1); err != nil {
				if fc.br.Buffered() == 0 {
					fc.close() // no request begun: net/http says nothing either
					return
				}
				v = headDoubt // net/http answers the partial head as it does
				break
			}
			v = fc.h.parse(fc.buffered())
		}
		if v == headOK && (fc.h.n > fc.f.maxHead || fc.f.passAll) {
			v = headDoubt
		}
		if v == headDoubt {
			fc.handOff(headBy)
			return
		}
		if string(fc.h.host) != fc.host {
			fc.host = string(fc.h.host) // a connection's requests mostly name one host: one copy
		}
		label, addr, release, ok := fc.f.proxy.frontTarget(&fc.h, fc.host)
		if !ok {
			fc.handOff(headBy)
			return
		}
		if fc.deadline {
			fc.setReadDeadline(time.Time{}) // bodies have no deadline
		}
		if first {
			fc.setState(stateActive) // no longer closed by Shutdown as a new, idle connection
		}
		if !fc.forward(label, addr, release) {
			fc.close()
			return
		}
	}
}

func (fc *frontConn) buffered() []byte {
	b, _ := fc.br.Peek(fc.br.Buffered())
	return b
}

// handOff gives the connection, from the request being read on, to
// net/http.
func (fc *frontConn) handOff(headBy time.Time) {
	pending := append([]byte(nil), fc.buffered()...)
	fc.bw.Flush()
	fc.release()
	fc.f.handOff(fc.nc, pending, headBy)
}

func (fc *frontConn) close() {
	fc.bw.Flush()
	fc.nc.Close()
	fc.release()
}

func (fc *frontConn) release() {
	if fc.timer != nil {
		fc.timer.Stop()
	}
	fc.br.Reset(nil)
	frontReaders.Put(fc.br)
	fc.bw.Reset(nil)
	frontWriters.Put(fc.bw)
	fc.br, fc.bw = nil, nil
}

// frontTarget is ServeHTTP's decision for a request the front parsed,
// when it ends on the lean path: an environment's host, not relayed by a
// replica (the parser doubts those), let through by the gate untouched,
// served by a process here. Anything else is net/http's.
func (p *Proxy) frontTarget(h *head, host string) (label, addr string, release func(), ok bool) {
	if p.opts.DisableLeanPath {
		return "", "", nil, false
	}
	label, ok = p.Label(host)
	if !ok {
		return "", "", nil, false
	}
	if p.opts.Gate != nil && (p.opts.GateOpen == nil || !p.opts.GateOpen(context.Background(), label)) {
		return "", "", nil, false
	}
	addr, release, ok = p.opts.Backends.Acquire(label)
	return label, addr, release, ok
}

// forward is serve and serveLean for a parsed head; it reports whether
// the connection carries on.
func (fc *frontConn) forward(label, addr string, release func()) (reuse bool) {
	defer release()
	p, h := fc.f.proxy, &fc.h
	p.waking.done(label)
	if p.opts.Visits != nil && h.countsAsVisit() {
		p.opts.Visits.Seen(label)
	}
	if p.onFront != nil {
		p.onFront()
	}
	fc.out = p.appendHead(fc.out[:0], h, fc.clientIP)
	method, n, idempotent := h.method, h.contentLength, h.idempotent
	var body *clientBody
	var fb *lengthBody
	if n > 0 {
		fc.body = lengthBody{br: fc.br, left: n}
		fc.cb.ReadCloser, fc.cb.err = &fc.body, nil
		body, fb = &fc.cb, &fc.body
	}
	fc.fw.reset(h, fb, !fc.f.closing.Load(), fc.werrFn)
	fc.br.Discard(h.n) // h's bytes are not used from here on
	defer func() {
		if err := recover(); err != nil {
			// As net/http: the connection ends without an answer. No
			// watcher may go on reading it, and the app's connection goes.
			fc.wmu.Lock()
			up := fc.up
			fc.wmu.Unlock()
			if up != nil {
				up.tcp.Close()
			}
			fc.unwatch()
			if err != http.ErrAbortHandler {
				buf := make([]byte, 64<<10)
				buf = buf[:runtime.Stack(buf, false)]
				p.opts.Logger.Warn(fmt.Sprintf("http: panic serving %v: %v\n%s", fc.nc.RemoteAddr(), err, buf))
			}
			reuse = false
		}
	}()
	req := methodRequest(method)
	take := p.up.get
	if body == nil {
		take = p.up.take // send looks at it
	}
	c, err := take(context.Background(), addr)
	for err == nil {
		if err = fc.exchange(c, label, body, n, req); err != errDeadIdle {
			break
		}
		c, err = take(context.Background(), addr)
	}
	if err != nil && c != nil && c.reused && c.lim.read == 0 && !fc.gone && n == 0 && replayableMethod(method, idempotent) {
		// The app closed the connection as the request went out on it.
		if c, err = dial(context.Background(), addr); err == nil {
			err = fc.exchange(c, label, body, n, req)
		}
	}
	switch {
	case err == errCutShort:
		return false // as net/http after ErrAbortHandler: what was sent, then the end
	case err != nil && fc.gone:
		return false // the client left: nobody to answer (net/http would answer an empty 200)
	case err != nil:
		if err == io.ErrUnexpectedEOF && c != nil && c.lim.read == 0 {
			err = io.EOF // the app hung up without a word, as http.Transport says
		}
		p.proxyError(fc.fw, label, err, body)
	}
	return fc.fw.finish()
}

var (
	errCutShort = errors.New("the app's answer was cut short")
	errDeadIdle = errors.New("the idle connection was closed by the app") // never returned by forward: the next one is tried
)

// exchange is the lean path's exchange on a front connection: the client
// going away is noticed by watchClient instead of a context.
func (fc *frontConn) exchange(c *upConn, label string, body *clientBody, n int64, req *http.Request) error {
	p := fc.f.proxy
	c.lim.read = 0
	if body == nil {
		fc.watch(c)
		dead, err := c.send(fc.out)
		if dead || err != nil {
			fc.unwatch()
			c.tcp.Close()
			if dead {
				return errDeadIdle
			}
			return err
		}
	} else {
		c.bw.Write(fc.out)
		if _, err := io.CopyN(c.bw, body, n); err != nil {
			c.tcp.Close()
			return err
		}
		if err := c.bw.Flush(); err != nil {
			c.tcp.Close()
			return err
		}
		c.quickAck()
		fc.watch(c)
	}
	if body == nil && req.Method != http.MethodHead && !p.noLeanAnswers {
		if ok, keep := fc.answerDirect(c); ok {
			fc.flushIfWatched()
			if gone := fc.unwatch(); !gone && keep {
				p.up.put(c)
			} else {
				c.tcp.Close()
			}
			return nil
		}
	}
	resp, err := p.answer(fc.fw, c, req)
	if err != nil {
		fc.unwatch()
		c.tcp.Close()
		return err
	}
	whole := p.copyResponse(fc.fw, label, resp)
	gone := fc.unwatch()
	if !gone && whole && !resp.Close {
		p.up.put(c)
		return nil
	}
	c.tcp.Close()
	if !whole {
		return errCutShort
	}
	return nil
}

// replayableMethod is replayable for a request without a body.
func replayableMethod(method string, idempotent bool) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return idempotent
}

// methodRequests are what http.ReadResponse is given to read an answer:
// only the method matters (HEAD answers have no body).
var methodRequests = func() map[string]*http.Request {
	m := map[string]*http.Request{}
	for _, method := range frontMethods {
		m[method] = &http.Request{Method: method}
	}
	return m
}()

func methodRequest(method string) *http.Request { return methodRequests[method] }

// appendHead is writeHead for a parsed head: the same lines, in the
// client's order, names in canonical form.
func (p *Proxy) appendHead(out []byte, h *head, clientIP string) []byte {
	out = append(out, h.method...)
	out = append(out, ' ')
	out = append(out, h.target...)
	out = append(out, " HTTP/1.1\r\nHost: "...)
	out = append(out, h.host...)
	out = append(out, "\r\n"...)
	for _, f := range h.fields {
		if underscored(f.name) {
			continue // as forwarded: no app gets these
		}
		start := len(out)
		out = canonicalKey(out, f.name)
		if dropped[string(out[start:])] {
			out = out[:start]
			continue
		}
		out = append(out, ": "...)
		out = append(out, f.value...)
		out = append(out, "\r\n"...)
	}
	if clientIP != "" {
		out = append(out, "X-Forwarded-For: "...)
		out = append(out, clientIP...)
		out = append(out, "\r\nX-Real-Ip: "...)
		out = append(out, clientIP...)
		out = append(out, "\r\n"...)
	}
	out = append(out, "X-Forwarded-Host: "...)
	out = append(out, h.host...)
	out = append(out, "\r\nX-Forwarded-Proto: "...)
	out = append(out, p.scheme...)
	out = append(out, "\r\n"...)
	if h.contentLength > 0 || h.method == http.MethodPost || h.method == http.MethodPut || h.method == http.MethodPatch {
		out = append(out, "Content-Length: "...)
		out = strconv.AppendInt(out, h.contentLength, 10)
		out = append(out, "\r\n"...)
	}
	return append(out, "\r\n"...)
}

// watch starts the timer after which the client is watched while c's app
// answers. A client that already sent its next request is not watched
// (it waits for its answers).
func (fc *frontConn) watch(c *upConn) {
	fc.wmu.Lock()
	fc.up, fc.gone = c, false
	fc.armed = fc.br.Buffered() == 0
	fc.wmu.Unlock()
	if !fc.armed {
		return
	}
	if fc.timer == nil {
		fc.timer = time.AfterFunc(watchAfter, fc.watchClient)
	} else {
		fc.timer.Reset(watchAfter)
	}
}

// watchClient waits, on the timer's goroutine, for the client to send
// something or go away; going away interrupts the app's request, as
// net/http's background read cancels a request's context.
func (fc *frontConn) watchClient() {
	fc.wmu.Lock()
	if !fc.armed || fc.running {
		// Not watching now, or a late run of the timer already is: one
		// reader of the connection at a time.
		fc.wmu.Unlock()
		return
	}
	fc.running = true
	fc.wmu.Unlock()
	if fc.f.proxy.onWatch != nil {
		fc.f.proxy.onWatch()
	}
	_, err := fc.br.Peek(1)
	fc.wmu.Lock()
	fc.running = false
	if err != nil && !fc.aborting {
		fc.gone = true
		if fc.up != nil {
			fc.up.tcp.SetDeadline(aLongTimeAgo)
		}
	}
	fc.wcond.Broadcast()
	fc.wmu.Unlock()
}

// flushIfWatched sends the client its whole answer at once when a
// watcher is reading the client: unwatch waits for that goroutine to get
// a CPU and stop, which on a busy machine is the slowest part of a slow
// request, and the client need not wait for it too.
func (fc *frontConn) flushIfWatched() {
	fc.wmu.Lock()
	running := fc.running
	fc.wmu.Unlock()
	if running {
		fc.bw.Flush()
	}
}

// unwatch stops watching and reports whether the client went away.
func (fc *frontConn) unwatch() bool {
	if fc.timer != nil {
		fc.timer.Stop()
	}
	fc.wmu.Lock()
	defer fc.wmu.Unlock()
	fc.armed = false
	if fc.running {
		fc.aborting = true
		fc.nc.SetReadDeadline(aLongTimeAgo)
		for fc.running {
			fc.wcond.Wait()
		}
		fc.aborting = false
		fc.nc.SetReadDeadline(time.Time{})
	}
	fc.up = nil
	return fc.gone
}

// lengthBody is a body of known length read from a connection: a
// request's from the client, erring as net/http's does when the client
// stops short, and an answer's of Content-Length bytes from the app
// (transfer.go's body over an io.LimitReader). Ending early is
// io.ErrUnexpectedEOF, and the first error is the answer from then on.
type lengthBody struct {
	br   *bufio.Reader
	left int64
	err  error
}

func (b *lengthBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.br.Read(p)
	b.left -= int64(n)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		b.err = err
	}
	return n, err
}

func (b *lengthBody) Close() error { return nil }
