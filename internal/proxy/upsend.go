package proxy

import (
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// send writes req, a whole request (no body left to read from the
// client), on c and waits until the app's answer can be read, all in one
// RawRead (issue 15: a system call less per request). Written the usual
// way, the answer's first read comes straight after the request and finds
// nothing yet (EAGAIN), then waits for the poller. Here the wait is the
// poller's alone: the readiness flag is reset before the look at the
// socket that a reused connection needs anyway (alive's peek), so an
// answer arriving any time after it wakes the wait, and the read after it
// finds the answer.
//
// dead reports that c, reused, was closed by the app or holds bytes
// nobody asked for (see alive); nothing was written then.
func (c *upConn) send(req []byte) (dead bool, err error) {
	if !c.initRaw() {
		return true, nil
	}
	c.req, c.sent, c.sendErr, c.dead, c.waited = req, 0, nil, false, false
	err = c.raw.Read(c.sendFn)
	c.req = nil
	switch {
	case c.dead:
		return true, nil
	case err != nil:
		return false, err // the client went away (watchClient's deadline), or the connection failed
	case c.sendErr != nil:
		return false, c.sendErr
	case c.sent < len(req):
		// The socket's buffer was full: the rest the ordinary way, which
		// waits for room.
		_, err = c.tcp.Write(req[c.sent:])
	}
	return false, err
}

// sendStep is send's turn at the socket: the first call looks and
// writes, and returns false to wait; the call after the wait finds the
// answer readable.
func (c *upConn) sendStep(fd uintptr) bool {
	if c.waited {
		return true
	}
	if c.reused {
		_, _, errno := unix.Syscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&c.peekBuf[0])), 1,
			unix.MSG_PEEK|unix.MSG_DONTWAIT, 0, 0)
		if errno != unix.EAGAIN && errno != unix.EWOULDBLOCK {
			c.dead = true
			return true
		}
	}
	for c.sent < len(c.req) {
		n, err := unix.Write(int(fd), c.req[c.sent:])
		switch {
		case err == nil:
			c.sent += n
		case err == unix.EINTR:
		case err == unix.EAGAIN:
			return true // send writes the rest
		default:
			c.sendErr = os.NewSyscallError("write", err)
			return true
		}
	}
	if !c.reused || c.splits {
		unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_QUICKACK, 1) // see quickAck
	}
	c.waited = true
	return false
}
