package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/glenv/glenv/internal/store"
)

// backends maps host labels to addresses.
type backends map[string]string

func (b backends) Acquire(host string) (string, func(), bool) {
	addr, ok := b[host]
	return addr, func() {}, ok
}

func newProxy(t *testing.T, b backends, envs map[string]store.Environment) *httptest.Server {
	t.Helper()
	p := New(Options{EnvDomain: "preview.example.com", Backends: b,
		Lookup: func(_ context.Context, host string) (store.Environment, error) {
			if e, ok := envs[host]; ok {
				return e, nil
			}
			return store.Environment{}, store.ErrNotFound
		},
		Next: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "control plane") }),
	})
	s := httptest.NewServer(p)
	t.Cleanup(s.Close)
	return s
}

func get(t *testing.T, s *httptest.Server, host string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.URL+"/path?q=1", nil)
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestRoutingByHost(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "app saw "+r.Host+" "+r.URL.RequestURI()+" from "+r.Header.Get("X-Forwarded-Host"))
	}))
	defer app.Close()
	envs := map[string]store.Environment{
		"feature--app": {Name: "feature", IntegrationName: "app", State: store.StateInactive, Ref: "feature"},
		"mr-7--app":    {Name: "mr-7", IntegrationName: "app", State: store.StateDeploying},
		"broken--app":  {Name: "broken", IntegrationName: "app", State: store.StateFailed},
		"gone--app":    {Name: "gone", IntegrationName: "app", State: store.StateDeleted, DeletedAt: time.Now()},
	}
	s := newProxy(t, backends{"main--app": strings.TrimPrefix(app.URL, "http://")}, envs)
	for _, tc := range []struct {
		name, host string
		status     int
		want       string
	}{
		{"a running environment is proxied with its host name", "main--app.preview.example.com:8080", 200, "app saw main--app.preview.example.com:8080 /path?q=1 from main--app.preview.example.com:8080"},
		{"host names are case-insensitive", "MAIN--APP.Preview.Example.com", 200, "app saw"},
		{"an inactive environment says how to activate it", "feature--app.preview.example.com", 503, "glenv environment:activate feature --integration app"},
		{"a deploying environment says so and reloads", "mr-7--app.preview.example.com", 503, "being built and started"},
		{"a failed environment says where the log is", "broken--app.preview.example.com", 503, "glenv environment:logs broken --integration app"},
		{"an unknown host is a 404 page", "nope--app.preview.example.com", 404, "No environment is at"},
		{"a deleted environment is a 404 page", "gone--app.preview.example.com", 404, "No environment is at"},
		{"other hosts go to the control plane", "glenv.example.com", 200, "control plane"},
		{"deeper names are not environments", "a.b.preview.example.com", 200, "control plane"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := get(t, s, tc.host)
			if resp.StatusCode != tc.status || !strings.Contains(body, tc.want) {
				t.Fatalf("got %d %q, want %d containing %q", resp.StatusCode, body, tc.status, tc.want)
			}
		})
	}
	t.Run("a deploying environment asks to retry", func(t *testing.T) {
		resp, _ := get(t, s, "mr-7--app.preview.example.com")
		if resp.Header.Get("Retry-After") == "" {
			t.Fatal("no Retry-After")
		}
	})
}

// downAddr is an address nothing answers on for the rest of the test: a
// socket bound to a free port that never listens holds the port (a
// connection to it is refused), so no listener the test opens afterwards
// can be given it. A closed listener's port can be: the proxy under test
// was once given it and forwarded to itself until it ran out of file
// descriptors.
func downAddr(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
}

func TestAnAppThatIsDownIsA502Page(t *testing.T) {
	addr := downAddr(t)
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatalf("%s answered: not down", addr)
	}
	s := newProxy(t, backends{"main--app": addr}, nil)
	resp, body := get(t, s, "main--app.preview.example.com")
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "environment:logs") {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
}

func TestWebSocketsAndStreamingPassThrough(t *testing.T) {
	sent := make(chan struct{})
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") == "websocket" {
			conn, rw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
			rw.Flush()
			line, _ := rw.ReadString('\n')
			rw.WriteString("echo " + line)
			rw.Flush()
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		select { // the second event waits until the client saw the first
		case <-sent:
		case <-time.After(5 * time.Second):
		}
		io.WriteString(w, "data: second\n\n")
	}))
	defer app.Close()
	s := newProxy(t, backends{"main--app": strings.TrimPrefix(app.URL, "http://")}, nil)

	t.Run("server-sent events arrive as they are written", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, s.URL+"/events", nil)
		req.Host = "main--app.preview.example.com"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		r := bufio.NewReader(resp.Body)
		first, err := r.ReadString('\n')
		if err != nil || first != "data: first\n" {
			t.Fatalf("first event %q %v", first, err)
		}
		close(sent)
		rest, _ := io.ReadAll(r)
		if !strings.Contains(string(rest), "data: second") {
			t.Fatalf("rest %q", rest)
		}
	})
	t.Run("a WebSocket upgrade is tunnelled", func(t *testing.T) {
		conn, err := net.Dial("tcp", strings.TrimPrefix(s.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: main--app.preview.example.com\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("handshake: %v %v", resp, err)
		}
		io.WriteString(conn, "ping\n")
		line, err := br.ReadString('\n')
		if err != nil || line != "echo ping\n" {
			t.Fatalf("got %q %v", line, err)
		}
	})
}

// rawRequest sends req on a fresh connection and returns the status line.
func rawRequest(t *testing.T, s *httptest.Server, req string) string {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(s.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	return strings.TrimSpace(line)
}

func TestForwardedHeadersComeFromTheConnectionNotTheClient(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, h := range []string{"X-Real-Ip", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "Forwarded", "True-Client-Ip"} {
			io.WriteString(w, h+"="+strings.Join(r.Header.Values(h), ",")+"\n")
		}
	}))
	defer app.Close()
	for _, scheme := range []string{"http", "https"} {
		t.Run("public URL "+scheme, func(t *testing.T) {
			p := New(Options{EnvDomain: "preview.example.com", PublicScheme: scheme,
				Backends: backends{"main--app": strings.TrimPrefix(app.URL, "http://")}})
			s := httptest.NewServer(p)
			defer s.Close()
			req, _ := http.NewRequest(http.MethodGet, s.URL+"/", nil)
			req.Host = "main--app.preview.example.com"
			forged := map[string]string{"X-Real-IP": "6.6.6.6", "X-Forwarded-For": "6.6.6.6", "X-Forwarded-Host": "evil.example",
				"X-Forwarded-Proto": "gopher", "Forwarded": "for=6.6.6.6;proto=https", "True-Client-IP": "6.6.6.6"}
			for k, v := range forged {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			want := "X-Real-Ip=127.0.0.1\nX-Forwarded-For=127.0.0.1\nX-Forwarded-Host=main--app.preview.example.com\nX-Forwarded-Proto=" + scheme + "\nForwarded=\nTrue-Client-Ip=\n"
			if string(b) != want {
				t.Fatalf("the app saw:\n%s\nwant:\n%s", b, want)
			}
		})
	}
}

func TestAMalformedChunkedBodyIs400NotTheAppsFault(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok")
	}))
	defer app.Close()
	s := newProxy(t, backends{"main--app": strings.TrimPrefix(app.URL, "http://")}, nil)
	got := rawRequest(t, s, "POST / HTTP/1.1\r\nHost: main--app.preview.example.com\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n")
	if !strings.Contains(got, " 400 ") {
		t.Fatalf("malformed chunked body: %q, want 400", got)
	}
	// The proxy keeps serving, and a well-formed chunked body goes through.
	if got := rawRequest(t, s, "POST / HTTP/1.1\r\nHost: main--app.preview.example.com\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n"); !strings.Contains(got, " 200 ") {
		t.Fatalf("well-formed chunked body: %q", got)
	}
}

// cgiApp answers with what a CGI, Rack or WSGI app would read as its
// request's forwarding headers (HTTP_<NAME>, '-' made '_', the values of
// all names that meet there), and with every header name it got that has
// an underscore.
func cgiApp(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	env := map[string][]string{}
	var underscored []string
	for k, vv := range r.Header {
		name := "HTTP_" + strings.ToUpper(strings.ReplaceAll(k, "-", "_"))
		env[name] = append(env[name], vv...)
		if strings.Contains(k, "_") {
			underscored = append(underscored, k)
		}
	}
	for _, k := range []string{"HTTP_X_FORWARDED_FOR", "HTTP_X_REAL_IP", "HTTP_X_FORWARDED_HOST", "HTTP_X_GLENV_REPLICA_CLIENT"} {
		vv := env[k]
		slices.Sort(vv)
		fmt.Fprintf(w, "%s=%s\n", k, strings.Join(vv, ","))
	}
	slices.Sort(underscored)
	fmt.Fprintf(w, "underscored=%s\n", strings.Join(underscored, ","))
}

func TestHeadersWithUnderscoresNeverReachTheApp(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(cgiApp))
	defer app.Close()
	ps := newPaths(t, strings.TrimPrefix(app.URL, "http://"))
	const spoof = "Host: main--app.preview.example.com\r\nX_Forwarded_For: 6.6.6.6\r\nx_real_ip: 6.6.6.6\r\nX-Forwarded_Host: evil.example\r\n" +
		"X_Glenv_Replica_Client: 6.6.6.6\r\nX_Custom: 1\r\n"
	const want = "HTTP_X_FORWARDED_FOR=127.0.0.1\nHTTP_X_REAL_IP=127.0.0.1\nHTTP_X_FORWARDED_HOST=main--app.preview.example.com\n" +
		"HTTP_X_GLENV_REPLICA_CLIENT=\nunderscored=\n"
	for _, req := range []struct{ name, raw string }{
		{"a GET (the Front's and the lean path's)", "GET / HTTP/1.1\r\n" + spoof + "\r\n"},
		{"a chunked POST (ReverseProxy's on every path)", "POST / HTTP/1.1\r\n" + spoof + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
	} {
		for _, path := range []struct{ name, addr string }{
			{"Front", ps.front},
			{"net/http and the lean path", strings.TrimPrefix(ps.lean.URL, "http://")},
			{"ReverseProxy only", strings.TrimPrefix(ps.reverse.URL, "http://")},
		} {
			t.Run(req.name+" through "+path.name, func(t *testing.T) {
				got := transcriptAt(t, path.addr, req.raw)
				if !strings.Contains(got, "\n\n"+want) {
					t.Fatalf("the app saw:\n%s\nwant the spoofs dropped:\n%s", got, want)
				}
			})
		}
	}
}
