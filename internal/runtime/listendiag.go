package runtime

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// Reading /proc/PID/net/tcp walks the kernel's whole established-socket
// hash table, every namespace's, to print one namespace's sockets: here
// (262,144 buckets) each read of tcp or tcp6 took 1.0 ms of CPU in an
// empty namespace, so the listen watch, two reads every millisecond, kept
// most of a core busy while the new app started on the other. A sock_diag
// dump that asks for listening sockets only walks the listening table
// (16,384 buckets here) and skips the established one: listenDiag asks
// that, through a netlink socket made once inside the app's namespace (a
// netlink socket answers for the namespace it was made in).

// tcpfListen is TCPF_LISTEN: 1 << TCP_LISTEN (10), the states asked for.
const tcpfListen = 1 << 10

// listenDiag answers whether a TCP socket listens on a port of one network
// namespace.
type listenDiag struct {
	fd  int
	seq uint32
	buf []byte
}

// newListenDiag makes the sock_diag socket inside ns (a handle of it).
func newListenDiag(ns *os.File) (*listenDiag, error) {
	fd, err := onThreadIn(ns, func() (int, error) {
		return unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_INET_DIAG)
	})
	if err != nil {
		return nil, fmt.Errorf("sock_diag socket: %w", err)
	}
	// A dump is answered at once; this only bounds a kernel that would not.
	tv := unix.Timeval{Sec: 1}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return nil, err
	}
	// A netlink socket shows in its namespace's /proc/net/netlink with its
	// port id, which the kernel would make glenv's pid: a random one (high
	// bit set, as the kernel's own fallback) tells the app nothing of glenv.
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Pid: 1<<31 | rand.Uint32()}); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &listenDiag{fd: fd, buf: make([]byte, 1<<15)}, nil
}

func (l *listenDiag) close() {
	if l != nil {
		unix.Close(l.fd)
	}
}

// listens reports whether a TCP socket, IPv4 or IPv6, listens on port in
// l's namespace. An error means the kernel did not say (no sock_diag for
// TCP): the caller then looks another way.
func (l *listenDiag) listens(port int) (bool, error) {
	for _, family := range []uint8{unix.AF_INET, unix.AF_INET6} {
		ok, err := l.dump(family, port)
		if err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}

// dump asks for family's TCP sockets listening on port and reads the
// answer to its end.
func (l *listenDiag) dump(family uint8, port int) (bool, error) {
	l.seq++
	// struct nlmsghdr (16 bytes), then struct inet_diag_req_v2 (56):
	// family, protocol, ext, pad, states, then inet_diag_sockid, whose
	// source port (big-endian) the kernel matches listening sockets to.
	req := make([]byte, unix.NLMSG_HDRLEN+56)
	ne := binary.NativeEndian
	ne.PutUint32(req[0:], uint32(len(req)))
	ne.PutUint16(req[4:], unix.SOCK_DIAG_BY_FAMILY)
	ne.PutUint16(req[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	ne.PutUint32(req[8:], l.seq)
	b := req[unix.NLMSG_HDRLEN:]
	b[0], b[1] = family, unix.IPPROTO_TCP
	ne.PutUint32(b[4:], tcpfListen)
	binary.BigEndian.PutUint16(b[8:], uint16(port))
	if err := unix.Sendto(l.fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return false, err
	}
	found := false
	for {
		n, _, err := unix.Recvfrom(l.fd, l.buf, 0)
		if err != nil {
			return false, err
		}
		msgs, err := syscall.ParseNetlinkMessage(l.buf[:n])
		if err != nil {
			return false, err
		}
		for _, m := range msgs {
			if m.Header.Seq != l.seq {
				continue // an answer to an earlier request cut short
			}
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				return found, nil
			case unix.NLMSG_ERROR:
				if len(m.Data) >= 4 {
					if e := int32(ne.Uint32(m.Data)); e != 0 {
						return false, fmt.Errorf("sock_diag: %w", unix.Errno(-e))
					}
				}
				return false, errors.New("sock_diag: error without a code")
			case unix.SOCK_DIAG_BY_FAMILY:
				// struct inet_diag_msg: family, state, timer, retrans, then
				// the sockid, its source port first.
				if len(m.Data) >= 6 && m.Data[1] == unix.BPF_TCP_LISTEN && int(binary.BigEndian.Uint16(m.Data[4:])) == port {
					found = true
				}
			}
		}
	}
}
