package runtime_test

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/glenv/glenv/internal/runtime"
)

// loopbackResolver stands for a host resolver on the host's loopback
// (systemd-resolved's 127.0.0.53): a DNS server on an address of
// 127.0.0.0/8 of its own, port 53, answering every A question with
// 10.9.9.9. It returns its address and how many queries it answered.
func loopbackResolver(t *testing.T) (string, func() int64) {
	t.Helper()
	addr := fmt.Sprintf("127.53.%d.%d", os.Getpid()%250+1, os.Getpid()/250%250+1)
	c, err := net.ListenPacket("udp4", addr+":53")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("listen on %s:53 for the stand-in resolver: %v; CI runs as root and must", addr, err)
		}
		t.Skipf("cannot listen on %s:53 for a stand-in resolver: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	var answered atomic.Int64
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			q := buf[:n]
			end := 12
			for end < n && q[end] != 0 {
				end += int(q[end]) + 1
			}
			if n < 12 || end+5 > n {
				continue
			}
			resp := append([]byte{}, q[:2]...)                             // id
			resp = append(resp, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0)        // answer, one question, one answer
			resp = append(resp, q[12:end+5]...)                            // the question
			resp = append(resp, 0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4) // A, IN, TTL 60, 4 bytes
			resp = append(resp, 10, 9, 9, 9)
			if _, err := c.WriteTo(resp, from); err == nil {
				answered.Add(1)
			}
		}
	}()
	return addr, answered.Load
}

func TestAnEnvironmentResolvesNamesThroughTheHostsLoopbackResolverAndReachesNothingElseThere(t *testing.T) {
	t.Parallel()
	resolver, answered := loopbackResolver(t)
	hostConf := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(hostConf, []byte("nameserver "+resolver+"\noptions timeout:2 attempts:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dbAddr, _ := listen(t)
	w := newWorld(t, runtime.Options{Databases: fakeDatabases{addr: dbAddr}, HostResolvConf: hostConf})
	requireSandbox(t, w.rt)
	env := w.deployProbe(t, 97, "mr", "")

	got := w.probe(t, env, "/sh?cmd="+url.QueryEscape(`python3 -c "import socket; print('resolved', socket.gethostbyname('preview.glenv.test'))"`))
	if !strings.Contains(got, "resolved 10.9.9.9") || answered() == 0 {
		t.Fatalf("the environment could not resolve a name through the host's loopback resolver (%d queries answered):\n%s", answered(), got)
	}
	// The forward is DNS to one address only: the resolver's own address
	// is the namespace's loopback inside, and answers nothing.
	before := answered()
	direct := w.probe(t, env, "/sh?cmd="+url.QueryEscape(`python3 -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)
s.sendto(bytes.fromhex('1234010000010000000000000570726f62650474657374000001000'+'1'), ('`+resolver+`', 53))
try:
    s.recv(512); print('answered')
except OSError as e:
    print('no answer', e)
"`))
	if !strings.Contains(direct, "no answer") || answered() != before {
		t.Fatalf("the host's loopback resolver answered the environment directly:\n%s", direct)
	}
}
