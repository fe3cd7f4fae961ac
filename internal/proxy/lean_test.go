package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestWhatTakesTheLeanPath(t *testing.T) {
	for _, tc := range []struct {
		name string
		req  string
		lean bool
	}{
		{"a plain GET is lean", "GET /a?b=c HTTP/1.1\r\nHost: x\r\n\r\n", true},
		{"HTTP/1.0 is lean", "GET / HTTP/1.0\r\nHost: x\r\n\r\n", true},
		{"a HEAD is lean", "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", true},
		{"a small sized body is lean", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", true},
		{"a body of 64 KB is lean", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 65536\r\n\r\n", true},
		{"a body over 64 KB is not", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 65537\r\n\r\n", false},
		{"a chunked body is not", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", false},
		{"Connection: keep-alive is lean", "GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n", true},
		{"Connection: close is lean", "GET / HTTP/1.1\r\nHost: x\r\nConnection: Close\r\n\r\n", true},
		{"a WebSocket upgrade is not", "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", false},
		{"an Upgrade header alone is not", "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\n\r\n", false},
		{"Connection naming other headers is not", "GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\n\r\n", false},
		{"Expect: 100-continue is not", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello", false},
		{"TE: trailers is not", "GET / HTTP/1.1\r\nHost: x\r\nTE: trailers\r\n\r\n", false},
		{"a request announcing trailers is not", "GET / HTTP/1.1\r\nHost: x\r\nTrailer: X-Sum\r\n\r\n", false},
		{"a query ReverseProxy re-encodes (;) is not", "GET /?a=1;b=2 HTTP/1.1\r\nHost: x\r\n\r\n", false},
		{"a query with a bad escape is not", "GET /?a=%zz HTTP/1.1\r\nHost: x\r\n\r\n", false},
		{"a query with good escapes is lean", "GET /?a=%20b%2F HTTP/1.1\r\nHost: x\r\n\r\n", true},
		{"a non-ASCII host is not", "GET / HTTP/1.1\r\nHost: b\xc3\xbccher\r\n\r\n", false},
		{"CONNECT is not", "CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(tc.req)))
			if err != nil {
				t.Fatal(err)
			}
			if got := lean(r); got != tc.lean {
				t.Fatalf("lean = %v, want %v", got, tc.lean)
			}
		})
	}
	t.Run("HTTP/2 is not", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.ProtoMajor, r.ProtoMinor = 2, 0
		if lean(r) {
			t.Fatal("lean")
		}
	})
}

// paths are a proxy with its lean path and one with ReverseProxy only, in
// front of the same app, both behind net/http's server, and a proxy
// behind the Front; leanCount counts the requests the first took lean,
// frontCount those the Front forwarded itself.
type paths struct {
	lean, reverse *httptest.Server
	front         string // the Front's address
	leanCount     atomic.Int64
	frontCount    atomic.Int64
	leanAnswers   atomic.Int64 // answer heads the Front's proxy read with the lean parser
	leanProxy     *Proxy       // the proxy of lean
}

func newPaths(t *testing.T, app string) *paths {
	t.Helper()
	ps := &paths{}
	for _, disable := range []bool{false, true} {
		p := New(Options{EnvDomain: "preview.example.com", DisableLeanPath: disable,
			Backends: backends{"main--app": app}})
		p.onLean = func() { ps.leanCount.Add(1) }
		s := httptest.NewUnstartedServer(p)
		serverTimeouts(s.Config)
		s.Start()
		t.Cleanup(s.Close)
		if disable {
			ps.reverse = s
		} else {
			ps.lean, ps.leanProxy = s, p
		}
	}
	p := New(Options{EnvDomain: "preview.example.com", Backends: backends{"main--app": app}})
	p.onFront = func() { ps.frontCount.Add(1) }
	p.onAnswer = func(lean bool) {
		if lean {
			ps.leanAnswers.Add(1)
		}
	}
	ps.front = startFront(t, p, nil)
	return ps
}

// transcript sends a raw request on a new connection and describes every
// answer to it (1xx included) as a client sees it: status, headers but
// Date, body, trailers, or how reading failed.
func transcript(t *testing.T, s *httptest.Server, req string) string {
	t.Helper()
	return transcriptAt(t, strings.TrimPrefix(s.URL, "http://"), req)
}

func transcriptAt(t *testing.T, addr, req string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	go func() {
		io.WriteString(c, req)
		if strings.Contains(req, "Content-Length: 10\r\n") {
			// A body shorter than its length: the client stops sending.
			c.(*net.TCPConn).CloseWrite()
		}
	}()
	br := bufio.NewReader(c)
	method, _, _ := strings.Cut(req, " ")
	var b strings.Builder
	for {
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			fmt.Fprintf(&b, "error reading the answer: %v\n", err)
			return b.String()
		}
		fmt.Fprintf(&b, "%s\n", resp.Status)
		if resp.StatusCode == http.StatusBadGateway {
			// Why the app did not answer is worded by each path (the
			// error's text), so only the page's shape is compared.
			body, _ := io.ReadAll(resp.Body)
			fmt.Fprintf(&b, "%s\n", regexp.MustCompile(`\(.*\)\.</p>`).ReplaceAll(body, []byte("(…).</p>")))
			return b.String()
		}
		writeSorted(&b, resp.Header, "Date")
		if resp.StatusCode >= 100 && resp.StatusCode < 200 {
			continue
		}
		body, err := io.ReadAll(resp.Body)
		fmt.Fprintf(&b, "length %d, chunked %v\n\n%s\n", resp.ContentLength, slices.Contains(resp.TransferEncoding, "chunked"), body)
		if err != nil {
			fmt.Fprintf(&b, "error reading the body: %v\n", err)
		}
		writeSorted(&b, resp.Trailer)
		return b.String()
	}
}

func writeSorted(b *strings.Builder, h http.Header, except ...string) {
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range h {
			if !slices.Contains(except, k) && !yield(k) {
				return
			}
		}
	}) {
		fmt.Fprintf(b, "%s: %q\n", k, h[k])
	}
}

// echoApp answers what it was asked, and behaves as the path says.
func echoApp(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	switch r.URL.Path {
	case "/hop":
		h.Set("Connection", "X-Secret")
		h.Set("X-Secret", "hop")
		h.Set("Keep-Alive", "timeout=5")
		h.Set("Proxy-Authenticate", "Basic")
	case "/cookies":
		h.Add("Set-Cookie", "a=1")
		h.Add("Set-Cookie", "b=2; Path=/")
	case "/204":
		w.WriteHeader(http.StatusNoContent)
		return
	case "/304":
		w.WriteHeader(http.StatusNotModified)
		return
	case "/chunked":
		io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		io.WriteString(w, "second\n")
		return
	case "/trailers":
		h.Set("Trailer", "X-Sum")
		io.WriteString(w, "body\n")
		h.Set("X-Sum", "42")
		h.Set(http.TrailerPrefix+"X-Late", "unannounced")
		return
	case "/early-hints":
		h.Add("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
	case "/cut":
		h.Set("Content-Length", "100")
		io.WriteString(w, "only part")
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	case "/hang-up":
		panic(http.ErrAbortHandler)
	case "/huge-header":
		h.Set("X-Big", strings.Repeat("x", 11<<20))
	case "/418":
		w.WriteHeader(http.StatusTeapot)
	}
	body, err := io.ReadAll(r.Body)
	fmt.Fprintf(w, "%s %s %s host=%s length=%d te=%v read=%d err=%v\n", r.Method, r.RequestURI, r.Proto, r.Host, r.ContentLength, r.TransferEncoding, len(body), err)
	var b strings.Builder
	writeSorted(&b, r.Header)
	io.WriteString(w, b.String())
	if len(body) < 100 {
		fmt.Fprintf(w, "body %q\n", body)
	}
}

func TestTheLeanPathAnswersAsReverseProxyDoes(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(echoApp))
	defer app.Close()
	ps := newPaths(t, strings.TrimPrefix(app.URL, "http://"))
	const host = "Host: main--app.preview.example.com\r\n"
	big := strings.Repeat("b", leanMaxBody)
	for _, tc := range []struct {
		name string
		req  string
		lean bool
		want string // in both transcripts
	}{
		{"a GET keeps its method, path, query, host and headers", "GET /p/a%2Fb?q=1&r=%20 HTTP/1.1\r\n" + host + "Accept: text/plain\r\nCookie: a=1\r\nCookie: b=2\r\nX-Many: 1\r\nX-Many: 2\r\nUser-Agent: t\r\n\r\n", true,
			`GET /p/a%2Fb?q=1&r=%20 HTTP/1.1 host=main--app.preview.example.com length=0`},
		{"no User-Agent is added", "GET / HTTP/1.1\r\n" + host + "\r\n", true, "X-Real-Ip"},
		{"forged forwarding headers are replaced by the connection's", "GET / HTTP/1.1\r\n" + host + "X-Real-IP: 6.6.6.6\r\nX-Forwarded-For: 6.6.6.6\r\nForwarded: for=6.6.6.6\r\nTrue-Client-IP: 6.6.6.6\r\nX-Forwarded-Proto: gopher\r\n\r\n", true,
			`X-Forwarded-For: ["127.0.0.1"]`},
		{"hop-by-hop request headers are dropped", "GET / HTTP/1.1\r\n" + host + "Connection: keep-alive\r\nKeep-Alive: 300\r\nProxy-Authorization: Basic eA==\r\nProxy-Connection: keep-alive\r\n\r\n", true, "X-Forwarded-Host"},
		{"Connection: close from the client is not passed on", "GET / HTTP/1.1\r\n" + host + "Connection: close\r\n\r\n", true, "X-Forwarded-Host"},
		{"a POST body arrives whole", "POST /form HTTP/1.1\r\n" + host + "Content-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello", true, `body "hello"`},
		{"a POST without a body says Content-Length: 0", "POST / HTTP/1.1\r\n" + host + "Content-Length: 0\r\n\r\n", true, "length=0"},
		{"a DELETE without a body says no length", "DELETE / HTTP/1.1\r\n" + host + "\r\n", true, "length=0"},
		{"a 64 KB body arrives whole", fmt.Sprintf("PUT / HTTP/1.1\r\n%sContent-Length: %d\r\n\r\n%s", host, len(big), big), true, "read=65536"},
		{"a body over 64 KB arrives whole", fmt.Sprintf("PUT / HTTP/1.1\r\n%sContent-Length: %d\r\n\r\n%sb", host, len(big)+1, big), false, "read=65537"},
		{"a chunked body arrives whole", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", false, `body "hello"`},
		{"a body shorter than its length is a 400", "POST / HTTP/1.1\r\n" + host + "Content-Length: 10\r\nConnection: close\r\n\r\nhello", true, "400 Bad Request"},
		{"HEAD answers headers only", "HEAD / HTTP/1.1\r\n" + host + "\r\n", true, "200 OK"},
		{"204 has no body", "GET /204 HTTP/1.1\r\n" + host + "\r\n", true, "204 No Content"},
		{"304 has no body", "GET /304 HTTP/1.1\r\n" + host + "\r\n", true, "304 Not Modified"},
		{"an error status passes as it is", "GET /418 HTTP/1.1\r\n" + host + "\r\n", true, "418 I'm a teapot"},
		{"hop-by-hop response headers are dropped", "GET /hop HTTP/1.1\r\n" + host + "\r\n", true, "200 OK"},
		{"several Set-Cookie stay apart", "GET /cookies HTTP/1.1\r\n" + host + "\r\n", true, `Set-Cookie: ["a=1" "b=2; Path=/"]`},
		{"an unsized response is streamed whole", "GET /chunked HTTP/1.1\r\n" + host + "\r\n", true, "first\nsecond\n"},
		{"trailers reach the client", "GET /trailers HTTP/1.1\r\n" + host + "TE: trailers\r\n\r\n", false, `X-Sum: ["42"]`},
		{"trailers reach a client that did not ask", "GET /trailers HTTP/1.1\r\n" + host + "\r\n", true, `X-Late: ["unannounced"]`},
		{"an early hint reaches the client before the answer", "GET /early-hints HTTP/1.1\r\n" + host + "\r\n", true, "103 Early Hints\nLink:"},
		{"an answer cut short is aborted", "GET /cut HTTP/1.1\r\n" + host + "\r\n", true, "error reading the answer: unexpected EOF"},
		{"an app that hangs up without answering is a 502", "GET /hang-up HTTP/1.1\r\n" + host + "\r\n", true, "502 Bad Gateway"},
		{"a response header over 10 MB is a 502", "GET /huge-header HTTP/1.1\r\n" + host + "\r\n", true, "502 Bad Gateway"},
		{"a query ReverseProxy re-encodes is re-encoded", "GET /?a=1;b=2&c=%zz HTTP/1.1\r\n" + host + "\r\n", false, "GET / HTTP/1.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := ps.leanCount.Load()
			lean := transcript(t, ps.lean, tc.req)
			if took := ps.leanCount.Load() > before; took != tc.lean {
				t.Errorf("took the lean path: %v, want %v", took, tc.lean)
			}
			reverse := transcript(t, ps.reverse, tc.req)
			if lean != reverse {
				t.Fatalf("the paths answer differently.\nlean:\n%s\nReverseProxy:\n%s", lean, reverse)
			}
			before = ps.frontCount.Load()
			front := transcriptAt(t, ps.front, tc.req)
			if took := ps.frontCount.Load() > before; took != tc.lean {
				t.Errorf("the Front forwarded it itself: %v, want %v (what the lean path takes)", took, tc.lean)
			}
			if front != reverse {
				t.Fatalf("the Front answers differently.\nFront:\n%s\nReverseProxy:\n%s", front, reverse)
			}
			if !strings.Contains(lean, tc.want) {
				t.Fatalf("both answered\n%s\nwant it to contain %q", lean, tc.want)
			}
		})
	}
}

// countingApp is an app that counts the connections it accepted.
func countingApp(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	app := httptest.NewUnstartedServer(h)
	app.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	app.Start()
	t.Cleanup(app.Close)
	return app, &conns
}

func TestTheLeanPathKeepsConnectionsToTheAppAlive(t *testing.T) {
	app, conns := countingApp(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok")
	})
	ps := newPaths(t, strings.TrimPrefix(app.URL, "http://"))
	send := func(method string) {
		t.Helper()
		req, _ := http.NewRequest(method, ps.lean.URL+"/", strings.NewReader("body"))
		if method == http.MethodGet {
			req, _ = http.NewRequest(method, "http://"+ps.front+"/", nil) // the Front's send (upsend.go)
		}
		req.Host = "main--app.preview.example.com"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "ok" {
			t.Fatalf("%s: %d %q", method, resp.StatusCode, b)
		}
	}
	t.Run("one connection carries request after request", func(t *testing.T) {
		before, frontBefore := ps.leanCount.Load(), ps.frontCount.Load()
		for range 20 {
			send(http.MethodGet)
			send(http.MethodPost)
		}
		if n := conns.Load(); n != 2 {
			t.Fatalf("the app accepted %d connections for 40 requests one after another, want 2 (one per proxy: net/http's and the Front's)", n)
		}
		if ps.leanCount.Load()-before != 20 || ps.frontCount.Load()-frontBefore != 20 {
			t.Fatal("not all requests took the lean path (POSTs) or the Front's (GETs)")
		}
	})
	t.Run("a connection the app closed while idle is not used", func(t *testing.T) {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			app.CloseClientConnections() // as an app's keep-alive timeout does
			before := conns.Load()
			send(method)
			if conns.Load() != before+1 {
				t.Fatalf("%s: no new connection after the app closed the idle one", method)
			}
		}
	})
}

// On both paths a client that goes away ends the app's request (a long
// poll is not left running for nobody).
func TestTheClientGoingAwayEndsTheAppsRequest(t *testing.T) {
	for _, path := range []struct {
		name  string
		addr  func(*paths) string
		count func(*paths) int64
	}{
		{"the lean path behind net/http", func(ps *paths) string { return strings.TrimPrefix(ps.lean.URL, "http://") }, func(ps *paths) int64 { return ps.leanCount.Load() }},
		{"the Front", func(ps *paths) string { return ps.front }, func(ps *paths) int64 { return ps.frontCount.Load() }},
	} {
		t.Run(path.name, func(t *testing.T) {
			started, ended := make(chan struct{}), make(chan struct{})
			app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				close(started)
				select { // a long poll
				case <-r.Context().Done():
					close(ended)
				case <-time.After(30 * time.Second):
				}
			}))
			defer app.Close()
			ps := newPaths(t, strings.TrimPrefix(app.URL, "http://"))
			c, err := net.Dial("tcp", path.addr(ps))
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(c, "GET /poll HTTP/1.1\r\nHost: main--app.preview.example.com\r\n\r\n")
			select {
			case <-started:
			case <-time.After(10 * time.Second):
				t.Fatal("the request did not reach the app")
			}
			c.Close()
			select {
			case <-ended:
			case <-time.After(10 * time.Second):
				t.Fatal("the app's request went on after the client went away")
			}
			if path.count(ps) != 1 {
				t.Fatal("the request did not take this path")
			}
		})
	}
}

func TestAnAppThatIsDownIsA502PageOnBothPaths(t *testing.T) {
	ps := newPaths(t, downAddr(t))
	for _, req := range []string{
		"GET / HTTP/1.1\r\nHost: main--app.preview.example.com\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: main--app.preview.example.com\r\nContent-Length: 2\r\n\r\nhi",
	} {
		lean, reverse := transcript(t, ps.lean, req), transcript(t, ps.reverse, req)
		if lean != reverse || !strings.Contains(lean, "502 Bad Gateway") || !strings.Contains(lean, "environment:logs") {
			t.Fatalf("lean:\n%s\nReverseProxy:\n%s", lean, reverse)
		}
	}
	if ps.leanCount.Load() != 2 {
		t.Fatal("the requests did not take the lean path")
	}
}

func TestTheConnectionPoolIsBounded(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	var u upstreams
	addr := l.Addr().String()
	var cs []*upConn
	for range maxIdlePerHost + 2 {
		c, err := u.get(context.Background(), addr)
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	for _, c := range cs {
		u.put(c)
	}
	t.Run("no more idle connections to an app than http.Transport keeps", func(t *testing.T) {
		if len(u.idle[addr]) != maxIdlePerHost || u.n != maxIdlePerHost {
			t.Fatalf("%d idle (n=%d), want %d", len(u.idle[addr]), u.n, maxIdlePerHost)
		}
	})
	t.Run("idle connections go after a minute, and their app with them", func(t *testing.T) {
		u.mu.Lock()
		for _, c := range u.idle[addr] {
			c.idleAt = time.Now().Add(-idleTimeout - time.Second)
		}
		u.mu.Unlock()
		u.closeIdle()
		if len(u.idle) != 0 || u.n != 0 {
			t.Fatalf("%d apps, %d connections left", len(u.idle), u.n)
		}
	})
}

// TestASecondAnswerToOneRequestReachesNobody: an app that answers one
// request twice must not have its extra answer handed to the next client
// (who may be someone else) on a reused connection; the lean path checks
// every idle connection before using it and drops it. (http.Transport
// notices such bytes only when its read goroutine runs before the next
// request is written: here, with the extra answer sent just before, the
// ReverseProxy path hands it on, so only the lean path is tested.)
func TestASecondAnswerToOneRequestReachesNobody(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	sendExtra, extraSent := make(chan bool), make(chan struct{})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					answer := "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nanswer"
					extra := "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nunsolicited"
					switch req.URL.Path {
					case "/extra-at-once": // in the same write as the answer
						io.WriteString(c, answer+extra)
					case "/extra-later": // once the answer reached the client
						io.WriteString(c, answer)
						if <-sendExtra {
							io.WriteString(c, extra)
						}
						close(extraSent)
					default:
						io.WriteString(c, answer)
					}
				}
			}()
		}
	}()
	ps := newPaths(t, l.Addr().String())
	for name, s := range map[string]string{"lean": strings.TrimPrefix(ps.lean.URL, "http://"), "Front": ps.front} {
		for _, path := range []string{"/extra-at-once", "/extra-later"} {
			sendExtra, extraSent = make(chan bool, 1), make(chan struct{})
			first := transcriptAt(t, s, "GET "+path+" HTTP/1.1\r\nHost: main--app.preview.example.com\r\n\r\n")
			if path == "/extra-later" {
				sendExtra <- true
				select {
				case <-extraSent:
				case <-time.After(10 * time.Second):
					t.Fatal("the app did not send its extra answer")
				}
			}
			next := transcriptAt(t, s, "GET /next HTTP/1.1\r\nHost: main--app.preview.example.com\r\n\r\n")
			if !strings.Contains(first, "\nanswer\n") || !strings.Contains(next, "\nanswer\n") {
				t.Fatalf("%s %s: first answer:\n%s\nthe next request's answer:\n%s", name, path, first, next)
			}
		}
	}
}
