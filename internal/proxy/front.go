package proxy

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Front serves glenv's listener ahead of net/http (issue 15). It accepts
// connections itself and reads each request head with a strict parser
// (head.go); a request for an environment that the lean path would
// forward anyway is forwarded from here, on the connection's own
// goroutine, and answered with the bytes net/http would write
// (frontwriter.go). The first request that is anything else (glenv's own
// hosts, upgrades, chunked or large bodies, Expect, HTTP/1.0 or 2, private
// or paused environments, a byte the parser doubts) hands the whole
// connection, with the bytes already read, to the http.Server through an
// in-memory listener, where it stays. net/http thus still reads, answers
// or refuses everything unusual; the front only saves its per-request
// costs on the common case.
type Front struct {
	proxy *Proxy
	srv   *http.Server
	mem   *memListener

	mu       sync.Mutex
	conns    map[*frontConn]struct{}
	listener net.Listener
	closing  atomic.Bool
	served   chan struct{} // closed when srv.Serve(mem) returned

	maxHead int  // net/http's MaxHeaderBytes: longer heads are its to judge
	passAll bool // srv has timeouts the front does not keep: it takes nothing
}

// NewFront puts a front before srv, whose Handler must be p (directly or
// wrapped): srv serves the connections the front hands over, and its
// ReadHeaderTimeout, IdleTimeout and MaxHeaderBytes hold on both. With a
// ReadTimeout or WriteTimeout (glenv sets neither: environments stream)
// the front forwards nothing and hands every connection over.
func NewFront(p *Proxy, srv *http.Server) *Front {
	f := &Front{proxy: p, srv: srv, mem: newMemListener(), conns: map[*frontConn]struct{}{}, served: make(chan struct{})}
	f.maxHead = srv.MaxHeaderBytes
	if f.maxHead <= 0 {
		f.maxHead = http.DefaultMaxHeaderBytes
	}
	f.passAll = srv.ReadTimeout > 0 || srv.WriteTimeout > 0
	return f
}

// Serve accepts connections on l until Shutdown; it returns
// http.ErrServerClosed then.
func (f *Front) Serve(l net.Listener) error {
	f.mem.addr = l.Addr()
	f.mu.Lock()
	if f.closing.Load() {
		f.mu.Unlock()
		return http.ErrServerClosed
	}
	f.listener = l
	f.mu.Unlock()
	go func() {
		defer close(f.served)
		f.srv.Serve(f.mem)
	}()
	var delay time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if f.closing.Load() {
				return http.ErrServerClosed
			}
			if ne, ok := err.(net.Error); ok && ne.Temporary() {
				// As http.Server.Serve: back off and go on.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			f.mem.Close()
			return err
		}
		delay = 0
		fc := f.newConn(nc)
		f.mu.Lock()
		if f.closing.Load() {
			f.mu.Unlock()
			nc.Close()
			continue
		}
		f.conns[fc] = struct{}{}
		f.mu.Unlock()
		go fc.serve()
	}
}

// Shutdown stops accepting, closes idle connections as they become idle,
// lets the others finish their request (answered Connection: close), and
// shuts the http.Server down, as http.Server.Shutdown does.
func (f *Front) Shutdown(ctx context.Context) error {
	f.closing.Store(true)
	f.mu.Lock()
	if f.listener != nil {
		f.listener.Close()
	}
	f.mu.Unlock()
	herr := make(chan error, 1)
	go func() { herr <- f.srv.Shutdown(ctx) }()
	t := time.NewTimer(time.Millisecond)
	defer t.Stop()
	for wait := time.Millisecond; ; wait = min(2*wait, 500*time.Millisecond) {
		if f.closeIdle() {
			break
		}
		select {
		case <-ctx.Done():
			f.srv.Close()
			<-herr
			return ctx.Err()
		case <-t.C:
			t.Reset(wait)
		}
	}
	return <-herr
}

// closeIdle closes the connections waiting for a request and reports
// whether none is left.
func (f *Front) closeIdle() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now().Unix()
	for fc := range f.conns {
		st := fc.state.Load()
		if st == stateIdle || st == stateNew && fc.since.Load() < now-5 {
			fc.nc.Close()
		}
	}
	return len(f.conns) == 0
}

func (f *Front) forget(fc *frontConn) {
	f.mu.Lock()
	delete(f.conns, fc)
	f.mu.Unlock()
}

// handOff gives nc to the http.Server with the bytes the front read from it
// and not used; until net/http has read a request head, its read
// deadlines are no later than headBy, the front's, so a slow client gains
// no time by the change of hands.
func (f *Front) handOff(nc net.Conn, pending []byte, headBy time.Time) {
	hc := &handedConn{Conn: nc, pending: pending, headBy: headBy}
	if !f.mem.give(hc) {
		nc.Close() // shutting down
	}
}

// handedConn is a connection net/http serves after the front: it first
// replays what the front had read.
type handedConn struct {
	net.Conn
	pending []byte
	mu      sync.Mutex
	headBy  time.Time
}

func (c *handedConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// SetReadDeadline: net/http sets the head's deadline, then, once the head
// is read, none (zero); the front's deadline bounds the first.
func (c *handedConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	if !c.headBy.IsZero() {
		if t.IsZero() {
			c.headBy = time.Time{}
		} else if c.headBy.Before(t) {
			t = c.headBy
		}
	}
	c.mu.Unlock()
	return c.Conn.SetReadDeadline(t)
}

func (c *handedConn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.Conn.SetWriteDeadline(t)
}

// CloseWrite lets net/http half-close before closing, as on a TCP
// connection (it avoids resets losing the last answer).
func (c *handedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// ReadFrom keeps sendfile and splice for net/http's copies to the client.
func (c *handedConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

// memListener is the http.Server's listener: the connections the front
// hands over.
type memListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
	addr  net.Addr
}

func newMemListener() *memListener {
	return &memListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *memListener) give(c net.Conn) bool {
	select {
	case l.conns <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *memListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *memListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *memListener) Addr() net.Addr {
	if l.addr == nil {
		return &net.TCPAddr{}
	}
	return l.addr
}
