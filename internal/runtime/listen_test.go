package runtime

import (
	"net"
	"os"
	"testing"
)

const tcpTable = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 200001        0 1 1 0000000000000000 100 0 0 10 0
   1: 0100007F:A1B2 0100007F:0050 01 00000000:00000000 00:00000000 00000000 200001        0 2 1 0000000000000000 20 4 30 10 -1
`

const tcp6Table = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:0BB8 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000 200001        0 3 1 0000000000000000 100 0 0 10 0
`

func TestListensIn(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		table string
		port  int
		want  bool
	}{
		{"a socket listening on the port at 127.0.0.1 listens", tcpTable, 8080, true},
		{"a socket listening on the port at any IPv6 address listens", tcp6Table, 3000, true},
		{"a connection from the port is no listener", tcpTable, 0xA1B2, false},
		{"a connection to the port is no listener", tcpTable, 80, false},
		{"another port's listener is not the app's", tcpTable, 8081, false},
		{"an empty table has no listener", "", 8080, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := listensIn([]byte(tc.table), tc.port); got != tc.want {
				t.Fatalf("listensIn(port %d) = %v, want %v", tc.port, got, tc.want)
			}
		})
	}
}

// The kernel's own table says a listener is there once listen(2) returned,
// and /proc of a process that is gone says nothing (the caller probes).
func TestListensOnReadsTheNamespacesTable(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if listening, known := listensOn(os.Getpid(), port); !listening || !known {
		t.Fatalf("listening on %d: listensOn = %v, %v", port, listening, known)
	}
	l.Close()
	if listening, known := listensOn(os.Getpid(), port); listening || !known {
		t.Fatalf("closed %d: listensOn = %v, %v", port, listening, known)
	}
	if _, known := listensOn(0, port); known {
		t.Fatal("no process: listensOn claims to know")
	}
}
