package main

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"
)

// nagleApp is Python's http.server speaking HTTP/1.1 with Nagle's
// algorithm on (its default): it writes the header and the body in two
// sends, so the body waits for the ACK of the header, which the receiver
// delays on a reused connection.
const nagleApp = `
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = sys.argv[2] == "nodelay"
    def do_GET(self):
        body = b"hello, glenv\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1].rsplit(":", 1)[1])), H).serve_forever()
`

// python measures sequential requests on one keep-alive connection to a
// Python http.server app, Nagle on and off, direct and through each path:
// the 44 ms that glenv's quick ACK on its app connections takes away.
func python(n int) {
	if _, err := exec.LookPath("python3"); err != nil {
		fmt.Println("\npython http.server: skipped (no python3)")
		return
	}
	fmt.Printf("\npython http.server, HTTP/1.1: %d requests one after another on one connection; median / max ms\n", n)
	fmt.Printf("  %-24s %-18s %s\n", "app", "path", "latency")
	for _, mode := range []string{"nagle", "nodelay"} {
		addr := freeAddr()
		app := exec.Command("python3", "-c", nagleApp, addr, mode)
		app.Stderr = os.Stderr
		must(app.Start())
		waitUp(addr)
		px := startChild("proxy", freeAddr(), addr, "")
		rp := startChild("proxy-reverseproxy", freeAddr(), addr, "")
		for _, t := range []target{
			{name: "direct", addr: addr, host: addr},
			{name: "glenv proxy", addr: px.addr, host: "app--bench.localhost"},
			{name: "  ReverseProxy only", addr: rp.addr, host: "app--bench.localhost"},
		} {
			k := newClient(t)
			var lats []time.Duration
			for range n {
				start := time.Now()
				must(k.do())
				lats = append(lats, time.Since(start))
			}
			k.close()
			slices.Sort(lats)
			name := "Nagle on (default)"
			if mode == "nodelay" {
				name = "disable_nagle_algorithm"
			}
			fmt.Printf("  %-24s %-18s %.2f / %.2f\n", name, strings.TrimSpace(t.name), ms(lats[len(lats)/2]), ms(lats[len(lats)-1]))
		}
		px.stop()
		rp.stop()
		app.Process.Kill()
		app.Wait()
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
