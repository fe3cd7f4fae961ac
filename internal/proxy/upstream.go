package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The lean path's connections to environment apps: one pool of idle
// keep-alive connections per app address, used by one request at a time on
// the request's own goroutine (http.Transport runs two goroutines per
// connection and hands every request and response between them; that
// hand-off is most of what the lean path saves).

const (
	// The bounds http.Transport has in New, so that both paths hold as
	// many idle connections for as long.
	maxIdle        = 1024
	maxIdlePerHost = 256
	idleTimeout    = 60 * time.Second
	// maxResponseHeader is http.Transport's default MaxResponseHeaderBytes:
	// an app that sends more header than this gets a 502, not our memory.
	maxResponseHeader = 10 << 20
)

var dialer = &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}

// upConn is a connection to an app with its buffers.
type upConn struct {
	addr   string
	tcp    *net.TCPConn
	lim    limitedConn
	br     *bufio.Reader
	bw     *bufio.Writer
	reused bool
	splits bool // an answer's body came after its header: the app may hold it for an ACK
	idleAt time.Time

	raw     syscall.RawConn
	peekFn  func(fd uintptr) bool
	peekBuf [1]byte
	peeked  bool

	// send's state (upsend.go).
	sendFn       func(fd uintptr) bool
	req          []byte
	sent         int
	sendErr      error
	dead, waited bool

	// The lean answer parser's state and the answer it read last
	// (answerread.go); one answer at a time is read on a connection.
	ans     answerHead
	header  http.Header
	resp    http.Response
	sized   lengthBody
	chunked chunkedBody
}

// limitedConn bounds how much is read while a response header is expected.
type limitedConn struct {
	c    net.Conn
	left int64
	read int64 // bytes read since the request was written
	// err is the first read error, returned again: when the lean answer
	// parser met it, http.ReadResponse reads again and must meet the same
	// one (a reset connection would otherwise read as a plain EOF). A
	// connection that failed a read is never used again.
	err error
}

var errHeaderTooLarge = errors.New("the app's response header is larger than 10 MB")

func (l *limitedConn) Read(p []byte) (int, error) {
	if l.left <= 0 {
		return 0, errHeaderTooLarge
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	if l.err != nil {
		return 0, l.err
	}
	n, err := l.c.Read(p)
	l.left -= int64(n)
	l.read += int64(n)
	l.err = err
	return n, err
}

// upstreams is the pool. An idle connection is closed after idleTimeout by
// a timer that runs only while some connection is idle, so the pool holds
// at most maxIdle connections, none older than a minute, and the addresses
// of apps that stopped leave with their connections.
type upstreams struct {
	mu    sync.Mutex
	idle  map[string][]*upConn // newest last
	n     int
	sweep *time.Timer
}

// get returns an idle connection to addr that is still open and quiet, or
// a new one.
func (u *upstreams) get(ctx context.Context, addr string) (*upConn, error) {
	for {
		c := u.pop(addr)
		if c == nil {
			break
		}
		if c.alive() {
			c.reused = true
			return c, nil
		}
		c.tcp.Close()
	}
	return dial(ctx, addr)
}

// take is get for send, which looks at an idle connection itself as it
// writes on it.
func (u *upstreams) take(ctx context.Context, addr string) (*upConn, error) {
	if c := u.pop(addr); c != nil {
		c.reused = true
		return c, nil
	}
	return dial(ctx, addr)
}

// pop takes the newest idle connection to addr, or nil.
func (u *upstreams) pop(addr string) *upConn {
	u.mu.Lock()
	defer u.mu.Unlock()
	list := u.idle[addr]
	if len(list) == 0 {
		return nil
	}
	c := list[len(list)-1]
	list[len(list)-1] = nil
	u.idle[addr] = list[:len(list)-1]
	u.n--
	return c
}

// dialNoDelay dials an app for either path.
func dialNoDelay(ctx context.Context, network, addr string) (net.Conn, error) {
	nc, err := dialer.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	// Go's default, said out loud: a request goes out as soon as it is
	// written, never held back by Nagle's algorithm for an ACK.
	nc.(*net.TCPConn).SetNoDelay(true)
	return nc, nil
}

func dial(ctx context.Context, addr string) (*upConn, error) {
	nc, err := dialNoDelay(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	tcp := nc.(*net.TCPConn)
	c := &upConn{addr: addr, tcp: tcp}
	c.lim.c = tcp
	c.br = bufio.NewReaderSize(&c.lim, 4<<10)
	c.bw = bufio.NewWriterSize(tcp, 4<<10)
	return c, nil
}

// alive peeks at an idle connection without blocking: an app that closed
// it (its keep-alive timeout, a restart) shows as EOF or an error. One
// that sent bytes nobody asked for (a second answer to one request) is
// not trusted with the next request, whose client would get them as its
// answer: http.Transport closes such connections too ("Unsolicited
// response received on idle HTTP channel").
func (c *upConn) alive() bool {
	if c.br.Buffered() > 0 || !c.initRaw() {
		return false
	}
	c.peeked = false
	err := c.raw.Read(c.peekFn)
	return err == nil && c.peeked
}

// initRaw makes c's RawConn and the method values its callers pass it,
// once: SyscallConn and a method value allocate.
func (c *upConn) initRaw() bool {
	if c.raw == nil {
		rc, err := c.tcp.SyscallConn()
		if err != nil {
			return false
		}
		c.raw, c.peekFn, c.sendFn = rc, c.peek, c.sendStep
	}
	return true
}

// peek is alive's look at the socket: recvfrom(2) called directly, as
// unix.Recvfrom allocates the sender's address for every call (a TCP
// peer has none to give). Nothing to read yet is the only healthy answer:
// 0 bytes is EOF, more than 0 is bytes nobody asked for.
func (c *upConn) peek(fd uintptr) bool {
	_, _, errno := unix.Syscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&c.peekBuf[0])), 1,
		unix.MSG_PEEK|unix.MSG_DONTWAIT, 0, 0)
	c.peeked = errno == unix.EAGAIN || errno == unix.EWOULDBLOCK
	return true // never wait
}

// quickAck asks the kernel to acknowledge the answer's first segment at
// once rather than up to 40 ms later. An app that writes its header and
// body in two sends with Nagle's algorithm on (Python's http.server
// speaking HTTP/1.1, unless disable_nagle_algorithm is set) holds the body
// back until that acknowledgement comes, and on a reused connection Linux
// delays it: 44 ms per request. The flag does not stick (the kernel
// leaves quick-ack mode again by itself), so it is set before every answer.
// It helps only where glenv is the app's peer: in a network namespace the
// app talks to pasta, whose acknowledgements glenv does not choose.
// Only a new connection, or one on which an answer's body came after its
// header, needs it: an app that sends an answer in one write is never held
// back, and the system call is a tenth of what the front spends on a small
// request.
func (c *upConn) quickAck() {
	if c.reused && !c.splits {
		return
	}
	if rc, err := c.tcp.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_QUICKACK, 1) })
	}
}

// put keeps c for the next request to its app, or closes it when the pool
// is full.
func (u *upstreams) put(c *upConn) {
	if c.br.Buffered() > 0 {
		c.tcp.Close() // more than the answer came: see alive
		return
	}
	c.idleAt = time.Now()
	u.mu.Lock()
	if u.n >= maxIdle || len(u.idle[c.addr]) >= maxIdlePerHost {
		u.mu.Unlock()
		c.tcp.Close()
		return
	}
	if u.idle == nil {
		u.idle = map[string][]*upConn{}
	}
	u.idle[c.addr] = append(u.idle[c.addr], c)
	u.n++
	if u.sweep == nil {
		u.sweep = time.AfterFunc(idleTimeout, u.closeIdle)
	}
	u.mu.Unlock()
}

// closeIdle closes the connections idle for idleTimeout and runs again
// while any stay idle.
func (u *upstreams) closeIdle() {
	cutoff := time.Now().Add(-idleTimeout)
	var old []*upConn
	u.mu.Lock()
	oldest := time.Time{}
	for addr, list := range u.idle {
		i := 0
		for i < len(list) && !list[i].idleAt.After(cutoff) {
			old = append(old, list[i])
			i++
		}
		if i == len(list) {
			delete(u.idle, addr)
			continue
		}
		kept := append(list[:0], list[i:]...)
		clear(list[len(kept):])
		u.idle[addr] = kept
		if oldest.IsZero() || kept[0].idleAt.Before(oldest) {
			oldest = kept[0].idleAt
		}
	}
	u.n -= len(old)
	u.sweep = nil
	if !oldest.IsZero() {
		u.sweep = time.AfterFunc(max(oldest.Add(idleTimeout).Sub(time.Now()), time.Second), u.closeIdle)
	}
	u.mu.Unlock()
	for _, c := range old {
		c.tcp.Close()
	}
}

// expectHeader arms the response-header bound; expectBody lifts it.
func (c *upConn) expectHeader() { c.lim.left = maxResponseHeader }
func (c *upConn) expectBody()   { c.lim.left = math.MaxInt64 }

var _ io.Reader = (*limitedConn)(nil)
