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
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// serverTimeouts are internal/server's settings for glenv's http.Server.
func serverTimeouts(s *http.Server) {
	s.ReadHeaderTimeout, s.IdleTimeout, s.MaxHeaderBytes = 10*time.Second, 2*time.Minute, 64<<10
}

// startFront serves p behind a Front, with internal/server's timeouts
// (then tune, when given), and returns its address.
func startFront(t *testing.T, p *Proxy, tune func(*http.Server)) string {
	t.Helper()
	srv := &http.Server{Handler: p}
	serverTimeouts(srv)
	if tune != nil {
		tune(srv)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := NewFront(p, srv)
	done := make(chan error, 1)
	go func() { done <- f.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := f.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		select {
		case err := <-done:
			if err != http.ErrServerClosed {
				t.Errorf("Serve returned %v, want http.ErrServerClosed", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return after Shutdown")
		}
	})
	return l.Addr().String()
}

// wire sends raw on a new connection to addr, half-closing it after when
// closeWrite, and describes the answers: up to n, then EOF if the last
// said Connection: close or the server hung up (a refusal). Date is left
// out; bodies are read whole.
func wire(t *testing.T, addr, raw string, n int, closeWrite bool) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	go func() {
		io.WriteString(c, raw)
		if closeWrite {
			c.(*net.TCPConn).CloseWrite()
		}
	}()
	br := bufio.NewReader(c)
	methods := requestMethods(raw)
	var b strings.Builder
	for i := 0; i < n; i++ {
		method := "GET"
		if i < len(methods) {
			method = methods[i]
		}
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			fmt.Fprintf(&b, "then: %v\n", err)
			break
		}
		body, err := io.ReadAll(resp.Body)
		fmt.Fprintf(&b, "%s close=%v length=%d\n", resp.Status, resp.Close, resp.ContentLength)
		writeSorted(&b, resp.Header, "Date")
		fmt.Fprintf(&b, "%s\n", body)
		if err != nil {
			fmt.Fprintf(&b, "body: %v\n", err)
		}
		if resp.Close {
			if _, err := br.ReadByte(); err != io.EOF {
				fmt.Fprintf(&b, "after close: %v\n", err)
			}
			break
		}
	}
	return b.String()
}

// requestMethods are the methods of the requests in raw, in order, for
// reading their answers (HEAD's have no body).
func requestMethods(raw string) []string {
	var ms []string
	for _, m := range regexp.MustCompile(`(?m)^(GET|HEAD|POST|PUT) /`).FindAllStringSubmatch(raw, -1) {
		ms = append(ms, m[1])
	}
	return ms
}

// TestHostileRequestsAreAnsweredAsNetHTTPAnswersThem sends raw requests
// that attack or stretch HTTP/1.1 parsing (request smuggling, header
// injection, pipelining, odd framing) to the Front and to the same proxy
// behind net/http alone, with the lean path and with ReverseProxy only,
// and asserts the same answers: whatever the Front does not take itself
// must reach net/http byte for byte.
func TestHostileRequestsAreAnsweredAsNetHTTPAnswersThem(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(echoApp))
	defer app.Close()
	ps := newPaths(t, strings.TrimPrefix(app.URL, "http://"))
	const host = "Host: main--app.preview.example.com\r\n"
	get := "GET /a HTTP/1.1\r\n" + host + "\r\n"
	for _, tc := range []struct {
		name  string
		raw   string
		n     int  // requests in raw that are answered on a kept connection
		front bool // the Front forwards (the first) itself
	}{
		{"a plain GET is the Front's", get, 1, true},
		{"pipelined GETs are answered in order", get + "GET /b HTTP/1.1\r\n" + host + "\r\n" + "HEAD /c HTTP/1.1\r\n" + host + "\r\n", 3, true},
		{"a pipelined GET then a chunked POST: the POST goes to net/http", get + "POST /b HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 2, true},
		{"a pipelined GET then garbage: the garbage is net/http's 400", get + "GARBAGE\r\n\r\n", 2, true},
		{"a body then a pipelined request", "POST /a HTTP/1.1\r\n" + host + "Content-Length: 5\r\n\r\nhello" + get, 2, true},
		{"Connection: close ends the connection", "GET /a HTTP/1.1\r\n" + host + "Connection: close\r\n\r\n" + get, 1, true},
		{"duplicate equal Content-Length", "POST /a HTTP/1.1\r\n" + host + "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 1, false},
		{"conflicting Content-Length", "POST /a HTTP/1.1\r\n" + host + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 1, false},
		{"a Content-Length list", "POST /a HTTP/1.1\r\n" + host + "Content-Length: 5, 5\r\n\r\nhello", 1, false},
		{"a signed Content-Length", "POST /a HTTP/1.1\r\n" + host + "Content-Length: +5\r\n\r\nhello", 1, false},
		{"a Content-Length with leading zeros", "POST /a HTTP/1.1\r\n" + host + "Content-Length: 005\r\n\r\nhello", 1, false},
		{"Content-Length and chunked together", "POST /a HTTP/1.1\r\n" + host + "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 1, false},
		{"Transfer-Encoding: chunked, identity", "POST /a HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked, identity\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 1, false},
		{"Transfer-Encoding: identity", "POST /a HTTP/1.1\r\n" + host + "Transfer-Encoding: identity\r\nContent-Length: 3\r\n\r\nabc", 1, false},
		{"Transfer-Encoding in capitals", "POST /a HTTP/1.1\r\n" + host + "Transfer-Encoding: CHUNKED\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 1, false},
		{"Transfer-Encoding with a space before the colon", "POST /a HTTP/1.1\r\n" + host + "Transfer-Encoding : chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 1, false},
		{"Transfer-Encoding: xchunked", "POST /a HTTP/1.1\r\n" + host + "Transfer-Encoding: xchunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 1, false},
		{"a malformed chunk", "POST /a HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", 1, false},
		{"an obs-folded header", "GET /a HTTP/1.1\r\n" + host + "X-A: 1\r\n folded\r\n\r\n", 1, false},
		{"a folded Host", "GET /a HTTP/1.1\r\nHost:\r\n main--app.preview.example.com\r\n\r\n", 1, false},
		{"bare LF line ends", "GET /a HTTP/1.1\n" + "Host: main--app.preview.example.com\n\n", 1, false},
		{"a bare CR in a header", "GET /a HTTP/1.1\r\n" + host + "X-A: 1\rX-B: 2\r\n\r\n", 1, false},
		{"a NUL in a header value", "GET /a HTTP/1.1\r\n" + host + "X-A: a\x00b\r\n\r\n", 1, false},
		{"a NUL in the path", "GET /a\x00b HTTP/1.1\r\n" + host + "\r\n", 1, false},
		{"a header injected through an escaped line break stays one header", "GET /a HTTP/1.1\r\n" + host + "X-A: a%0d%0aX-Injected: 1\r\n\r\n", 1, true},
		{"non-ASCII in a header value", "GET /a HTTP/1.1\r\n" + host + "X-A: caf\xc3\xa9\r\n\r\n", 1, false},
		{"a head over the Front's buffer but under net/http's limit", "GET /a HTTP/1.1\r\n" + host + "X-Big: " + strings.Repeat("b", 10<<10) + "\r\n\r\n", 1, false},
		{"a head over net/http's limit is a 431", "GET /a HTTP/1.1\r\n" + host + "X-Big: " + strings.Repeat("b", 70<<10) + "\r\n\r\n", 1, false},
		{"a lower-case method", "get /a HTTP/1.1\r\n" + host + "\r\n", 1, false},
		{"an invalid method", "G@T /a HTTP/1.1\r\n" + host + "\r\n", 1, false},
		{"an unusual valid method", "PROPFIND /a HTTP/1.1\r\n" + host + "\r\n", 1, false},
		{"CONNECT", "CONNECT main--app.preview.example.com:443 HTTP/1.1\r\n" + host + "\r\n", 1, false},
		{"HTTP/1.0", "GET /a HTTP/1.0\r\n" + host + "\r\n", 1, false},
		{"HTTP/1.0 keep-alive", "GET /a HTTP/1.0\r\n" + host + "Connection: keep-alive\r\n\r\n" + get, 2, false},
		{"HTTP/0.9", "GET /a\r\n\r\n", 1, false},
		{"HTTP/2.0 in a request line", "GET /a HTTP/2.0\r\n" + host + "\r\n", 1, false},
		{"the HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 1, false},
		{"a lower-case version", "GET /a http/1.1\r\n" + host + "\r\n", 1, false},
		{"two spaces in the request line", "GET  /a HTTP/1.1\r\n" + host + "\r\n", 1, false},
		{"a space in the target", "GET /a b HTTP/1.1\r\n" + host + "\r\n", 1, false},
		{"an empty line before the request", "\r\n" + get, 1, false},
		{"absolute-form", "GET http://main--app.preview.example.com/a HTTP/1.1\r\nHost: other.example.com\r\n\r\n", 1, false},
		{"absolute-form naming the control plane", "GET http://glenv.example.com/a HTTP/1.1\r\n" + host + "\r\n", 1, false},
		{"a target starting with //", "GET //evil.example/a HTTP/1.1\r\n" + host + "\r\n", 1, false},
		{"a fragment in the target", "GET /a#b HTTP/1.1\r\n" + host + "\r\n", 1, false},
		{"a bad escape in the path", "GET /a%zz HTTP/1.1\r\n" + host + "\r\n", 1, false},
		{"escapes in the path pass as sent", "GET /a%2Fb%41 HTTP/1.1\r\n" + host + "\r\n", 1, true},
		{"OPTIONS *", "OPTIONS * HTTP/1.1\r\n" + host + "\r\n", 1, false},
		{"no Host", "GET /a HTTP/1.1\r\n\r\n", 1, false},
		{"two Hosts", "GET /a HTTP/1.1\r\n" + host + "Host: other.example.com\r\n\r\n", 1, false},
		{"an empty Host", "GET /a HTTP/1.1\r\nHost:\r\n\r\n", 1, false},
		{"a Host with a space inside", "GET /a HTTP/1.1\r\nHost: main--app.preview.example.com x\r\n\r\n", 1, false},
		{"a Host with a user", "GET /a HTTP/1.1\r\nHost: u@main--app.preview.example.com\r\n\r\n", 1, false},
		{"a Host in capitals with a port and spaces", "GET /a HTTP/1.1\r\nHost:   MAIN--APP.preview.example.com:8080  \r\n\r\n", 1, true},
		{"a space before a header's colon", "GET /a HTTP/1.1\r\n" + host + "X-A : 1\r\n\r\n", 1, false},
		{"a header without a colon", "GET /a HTTP/1.1\r\n" + host + "X-A\r\n\r\n", 1, false},
		{"a header without a name", "GET /a HTTP/1.1\r\n" + host + ": 1\r\n\r\n", 1, false},
		{"lower-case forwarding headers are still replaced", "GET /a HTTP/1.1\r\n" + host + "x-forwarded-for: 6.6.6.6\r\nx-real-ip: 6.6.6.6\r\nforwarded: for=6.6.6.6\r\n\r\n", 1, true},
		{"Connection naming a header", "GET /a HTTP/1.1\r\n" + host + "Connection: X-A\r\nX-A: 1\r\n\r\n", 1, false},
		{"two Connection headers", "GET /a HTTP/1.1\r\n" + host + "Connection: keep-alive\r\nConnection: close\r\n\r\n", 1, false},
		{"Expect: 100-continue", "POST /a HTTP/1.1\r\n" + host + "Content-Length: 5\r\nExpect: 100-continue\r\n\r\nhello", 1, false},
		{"an h2c upgrade", "GET /a HTTP/1.1\r\n" + host + "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n", 1, false},
		{"a replica's relay mark", "GET /a HTTP/1.1\r\n" + host + "X-Glenv-Replica-Sig: forged\r\n\r\n", 1, false},
		{"glenv's cookie", "GET /a HTTP/1.1\r\n" + host + "Cookie: glenv_env=x; a=1\r\n\r\n", 1, false},
		{"a body over 64 KB", "PUT /a HTTP/1.1\r\n" + host + "Content-Length: 65537\r\n\r\n" + strings.Repeat("b", 65537), 1, false},
		{"a TLS ClientHello", "\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + strings.Repeat("\x00", 32) + "\r\n\r\n", 1, false},
		{"another host goes to the control plane", "GET /a HTTP/1.1\r\nHost: glenv.example.com\r\n\r\n", 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := ps.frontCount.Load()
			front := wire(t, ps.front, tc.raw, tc.n, false)
			if took := ps.frontCount.Load() > before; took != tc.front {
				t.Errorf("the Front forwarded it itself: %v, want %v", took, tc.front)
			}
			lean := wire(t, strings.TrimPrefix(ps.lean.URL, "http://"), tc.raw, tc.n, false)
			reverse := wire(t, strings.TrimPrefix(ps.reverse.URL, "http://"), tc.raw, tc.n, false)
			if front != lean || front != reverse {
				t.Fatalf("answers differ.\nFront:\n%s\nnet/http, lean path:\n%s\nnet/http, ReverseProxy:\n%s", front, lean, reverse)
			}
		})
	}
}

func TestTheFrontKeepsVisitsAndWakes(t *testing.T) {
	t.Run("a visit to a paused environment through the Front wakes it and counts", func(t *testing.T) {
		w := newWakeWorld(t, time.Minute)
		addr := startFront(t, w.p, nil)
		got := wire(t, addr, "GET / HTTP/1.1\r\nHost: feature--app.localhost\r\nAccept: text/html\r\nConnection: close\r\n\r\n", 1, false)
		if !strings.Contains(got, "503 Service Unavailable") || !strings.Contains(got, "Waking up feature") {
			t.Fatalf("answer:\n%s", got)
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.wakes != 1 || len(w.visits) != 1 || w.visits[0] != "feature--app" {
			t.Fatalf("wakes %d, visits %q; want 1 wake and 1 visit", w.wakes, w.visits)
		}
	})
	t.Run("requests the Front forwards count as visits, bots' and health checks' do not", func(t *testing.T) {
		app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
		defer app.Close()
		w := &wakeWorld{}
		p := New(Options{EnvDomain: "localhost", Visits: w, Backends: backends{"main--app": strings.TrimPrefix(app.URL, "http://")}})
		var forwarded atomic.Int64
		p.onFront = func() { forwarded.Add(1) }
		addr := startFront(t, p, nil)
		raw := "GET / HTTP/1.1\r\nHost: main--app.localhost\r\nUser-Agent: Mozilla/5.0\r\n\r\n" +
			"GET / HTTP/1.1\r\nHost: main--app.localhost\r\nUser-Agent: Mozilla/5.0 (compatible; GoogleBOT/2.1)\r\n\r\n" +
			"GET /heal%74hz HTTP/1.1\r\nHost: main--app.localhost\r\n\r\n" +
			"GET /a HTTP/1.1\r\nHost: main--app.localhost\r\n\r\n"
		if got := wire(t, addr, raw, 4, false); strings.Count(got, "200 OK") != 4 {
			t.Fatalf("answers:\n%s", got)
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		if forwarded.Load() != 4 || len(w.visits) != 2 {
			t.Fatalf("forwarded %d, visits %q; want 4 forwarded and 2 visits (not the bot's, not /healthz)", forwarded.Load(), w.visits)
		}
	})
}

func TestTheFrontLeavesGatedEnvironmentsToTheGate(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "app saw cookie="+r.Header.Get("Cookie"))
	}))
	defer app.Close()
	for _, tc := range []struct {
		name     string
		open     func(context.Context, string) bool
		cookie   string
		front    bool
		gateRuns bool
	}{
		{"a gate without GateOpen sees every request", nil, "", false, true},
		{"a private environment's requests go to the gate", func(context.Context, string) bool { return false }, "", false, true},
		{"a public environment's requests are the Front's", func(context.Context, string) bool { return true }, "a=1", true, false},
		{"a request with glenv's cookie goes to the gate even when public", func(context.Context, string) bool { return true }, "glenv_env=secret; a=1", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var gateRan, forwarded atomic.Int64
			p := New(Options{EnvDomain: "localhost", Backends: backends{"main--app": strings.TrimPrefix(app.URL, "http://")},
				Gate: func(w http.ResponseWriter, r *http.Request, label string) (*http.Request, bool) {
					gateRan.Add(1)
					r = r.Clone(r.Context())
					r.Header.Set("Cookie", "a=1") // as internal/auth strips glenv's
					return r, true
				},
				GateOpen: tc.open})
			p.onFront = func() { forwarded.Add(1) }
			addr := startFront(t, p, nil)
			got := wire(t, addr, "GET / HTTP/1.1\r\nHost: main--app.localhost\r\nCookie: "+tc.cookie+"\r\nConnection: close\r\n\r\n", 1, false)
			if !strings.Contains(got, "app saw cookie=a=1") {
				t.Fatalf("answer:\n%s", got)
			}
			if (forwarded.Load() == 1) != tc.front || (gateRan.Load() == 1) != tc.gateRuns {
				t.Fatalf("forwarded by the Front %d, gate ran %d", forwarded.Load(), gateRan.Load())
			}
		})
	}
}

// TestAHalfClosedClientGetsItsAnswer: a client may send its request and
// close its sending side. net/http cancels such a request as soon as it
// notices (and then answers an empty 200 when the app had not answered);
// the Front watches only after watchAfter, so a quick app's answer
// arrives, and a slow app's request is cancelled with no answer at all.
func TestAHalfClosedClientGetsItsAnswer(t *testing.T) {
	release := make(chan struct{})
	cancelled := make(chan struct{}, 1)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			select {
			case <-r.Context().Done():
				cancelled <- struct{}{}
			case <-release:
			}
			return
		}
		io.WriteString(w, "answer")
	}))
	defer app.Close()
	defer close(release)
	ps := newPaths(t, strings.TrimPrefix(app.URL, "http://"))
	if got := wire(t, ps.front, "GET /quick HTTP/1.1\r\nHost: main--app.preview.example.com\r\n\r\n", 1, true); !strings.Contains(got, "200 OK") || !strings.Contains(got, "answer") {
		t.Fatalf("quick app, half-closed client:\n%s", got)
	}
	got := wire(t, ps.front, "GET /slow HTTP/1.1\r\nHost: main--app.preview.example.com\r\n\r\n", 1, true)
	if !strings.HasPrefix(got, "then: ") { // EOF before any byte of an answer
		t.Fatalf("slow app, half-closed client: %q, want no answer", got)
	}
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the slow app's request was not cancelled")
	}
}

// TestASlowHeadIsCutAsNetHTTPCutsIt: a client that never finishes its
// head is cut after ReadHeaderTimeout with net/http's answer (none, or a
// 400 for a head already bad); one whose head the Front hands to net/http
// gets no more time for it.
func TestASlowHeadIsCutAsNetHTTPCutsIt(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(echoApp))
	defer app.Close()
	short := func(s *http.Server) { s.ReadHeaderTimeout = 300 * time.Millisecond }
	p := New(Options{EnvDomain: "preview.example.com", Backends: backends{"main--app": strings.TrimPrefix(app.URL, "http://")}})
	front := startFront(t, p, short)
	ref := httptest.NewUnstartedServer(p)
	serverTimeouts(ref.Config)
	short(ref.Config)
	ref.Start()
	defer ref.Close()
	cut := func(addr, partial string) string {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		io.WriteString(c, partial)
		b, err := io.ReadAll(c)
		return fmt.Sprintf("%q %v", b, err)
	}
	for _, tc := range []struct{ partial, want string }{
		{"GET /a HTTP/1.1\r\nHost: main--app.preview.example.com\r\nX-A: 1", `"" <nil>`},                     // the Front waits for the rest
		{"GET /a HTTP/1.1\r\nHost: main--app.preview.example.com\r\nX-A: \x01", `"HTTP/1.1 400 Bad Request`}, // handed to net/http at once
	} {
		front, ref := cut(front, tc.partial), cut(strings.TrimPrefix(ref.URL, "http://"), tc.partial)
		if front != ref || !strings.HasPrefix(front, tc.want) {
			t.Fatalf("head %q: the Front answered %s, net/http %s; want %s…", tc.partial, front, ref, tc.want)
		}
	}
}

func TestAHandedConnectionKeepsTheFrontsHeadDeadline(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	headBy := time.Now().Add(time.Second)
	hc := &handedConn{Conn: a, pending: []byte("GET"), headBy: headBy}
	var set []time.Time
	hc.Conn = deadlineRecorder{Conn: a, set: &set}
	hc.SetReadDeadline(headBy.Add(10 * time.Second)) // net/http's head deadline, later
	hc.SetReadDeadline(time.Time{})                  // the head is read
	hc.SetReadDeadline(headBy.Add(time.Hour))        // the next head: net/http's own
	if !set[0].Equal(headBy) || !set[1].IsZero() || !set[2].Equal(headBy.Add(time.Hour)) {
		t.Fatalf("deadlines set %v; want the Front's for the first head only", set)
	}
	p := make([]byte, 8)
	if n, _ := hc.Read(p); string(p[:n]) != "GET" {
		t.Fatalf("read %q first, want the bytes the Front had read", p[:n])
	}
}

type deadlineRecorder struct {
	net.Conn
	set *[]time.Time
}

func (d deadlineRecorder) SetReadDeadline(t time.Time) error {
	*d.set = append(*d.set, t)
	return nil
}

func TestTheFrontLeavesToNetHTTPWhatItsSettingsForbid(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(echoApp))
	defer app.Close()
	for _, tc := range []struct {
		name string
		tune func(*http.Server)
	}{
		{"a head over MaxHeaderBytes is net/http's to judge", func(s *http.Server) { s.MaxHeaderBytes = 100 }},
		{"with a ReadTimeout the Front takes nothing", func(s *http.Server) { s.ReadTimeout = time.Minute }},
		{"with a WriteTimeout the Front takes nothing", func(s *http.Server) { s.WriteTimeout = time.Minute }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := New(Options{EnvDomain: "preview.example.com", Backends: backends{"main--app": strings.TrimPrefix(app.URL, "http://")}})
			var forwarded atomic.Int64
			p.onFront = func() { forwarded.Add(1) }
			addr := startFront(t, p, tc.tune)
			got := wire(t, addr, "GET /a HTTP/1.1\r\nHost: main--app.preview.example.com\r\nX-Pad: "+strings.Repeat("p", 200)+"\r\nConnection: close\r\n\r\n", 1, false)
			if !strings.Contains(got, "200 OK") || forwarded.Load() != 0 {
				t.Fatalf("forwarded by the Front %d; answer:\n%s", forwarded.Load(), got)
			}
		})
	}
}

// An app slower than watchAfter has the Front watch its client; the
// answer still reaches the client whole, and the connection carries the
// next request.
func TestASlowAnswerReachesAWatchedClientAndTheConnectionGoesOn(t *testing.T) {
	watching := make(chan struct{}, 1)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			select {
			case <-watching:
			case <-time.After(10 * time.Second):
				http.Error(w, "the Front never watched the client", http.StatusInternalServerError)
				return
			}
		}
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "answer to "+r.URL.Path)
	}))
	defer app.Close()
	p := New(Options{EnvDomain: "localhost", Backends: backends{"main--app": strings.TrimPrefix(app.URL, "http://")}})
	p.onWatch = func() {
		select {
		case watching <- struct{}{}:
		default:
		}
	}
	var forwarded atomic.Int64
	p.onFront = func() { forwarded.Add(1) }
	addr := startFront(t, p, nil)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(c)
	for _, path := range []string{"/slow", "/next", "/slow", "/next"} {
		io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: main--app.localhost\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != 200 || string(body) != "answer to "+path || resp.Close {
			t.Fatalf("%s: %d %q %v, close %v", path, resp.StatusCode, body, err, resp.Close)
		}
	}
	if forwarded.Load() != 4 {
		t.Fatalf("the Front forwarded %d of 4 requests itself", forwarded.Load())
	}
}
