package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The lean path forwards plain HTTP/1 requests itself, on a pooled
// connection and on the request's goroutine, with the header rules of
// httputil.ReverseProxy and forwarded.go written straight to the wire.
// Requests that need more (upgrades, chunked or large bodies, Expect,
// trailers, queries ReverseProxy rewrites) stay on ReverseProxy; any
// response is handled here, streaming ones flushed as ReverseProxy does.
// Both paths answer a client alike; lean_test.go runs the same requests
// through both and compares.

// leanMaxBody is the largest request body the lean path takes. It writes
// the whole request before reading the answer, so a body must fit the
// socket buffers even when the app answers before reading it;
// ReverseProxy writes and reads at once and takes the rest.
const leanMaxBody = 64 << 10

// lean reports whether r takes the lean path.
func lean(r *http.Request) bool {
	if r.ProtoMajor != 1 || r.Method == http.MethodConnect {
		return false
	}
	if r.ContentLength < 0 || r.ContentLength > leanMaxBody || len(r.TransferEncoding) > 0 {
		return false
	}
	h := r.Header
	// Upgrades (WebSocket, h2c), 100-continue, trailers either way.
	if h["Upgrade"] != nil || h["Expect"] != nil || h["Te"] != nil || h["Trailer"] != nil {
		return false
	}
	// Connection naming headers to drop, or an upgrade.
	for _, v := range h["Connection"] {
		for tok := range strings.SplitSeq(v, ",") {
			tok = strings.TrimSpace(tok)
			if !strings.EqualFold(tok, "keep-alive") && !strings.EqualFold(tok, "close") && tok != "" {
				return false
			}
		}
	}
	return plainQuery(r.URL.RawQuery) && asciiHost(r.Host)
}

// plainQuery reports whether ReverseProxy would send the query as it is
// (it re-encodes queries with ';', bad escapes or over 10,000 parameters:
// httputil.cleanQueryParams).
func plainQuery(q string) bool {
	if strings.Count(q, "&") >= 10000 {
		return false
	}
	for i := 0; i < len(q); i++ {
		switch q[i] {
		case ';':
			return false
		case '%':
			if i+2 >= len(q) || !ishex(q[i+1]) || !ishex(q[i+2]) {
				return false
			}
			i += 2
		}
	}
	return true
}

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// asciiHost: http.Transport converts other hosts to punycode.
func asciiHost(h string) bool {
	for i := 0; i < len(h); i++ {
		if h[i] >= 0x80 {
			return false
		}
	}
	return true
}

// dropped are the request headers the lean path does not pass on:
// hop-by-hop ones (ReverseProxy's list), the client's claims about itself
// (forwarded.go sets its own), and the framing it writes itself.
var dropped = func() map[string]bool {
	m := map[string]bool{"Connection": true, "Proxy-Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true,
		"Proxy-Authorization": true, "Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
		"Host": true, "Content-Length": true}
	for _, h := range clientHeaders {
		m[h] = true
	}
	return m
}()

// aLongTimeAgo is a deadline that has passed: setting it interrupts a
// blocked read or write on a connection.
var aLongTimeAgo = time.Unix(1, 0)

// serveLean forwards r to the app at addr.
func (p *Proxy) serveLean(w http.ResponseWriter, r *http.Request, addr string) {
	if p.onLean != nil {
		p.onLean()
	}
	ctx := r.Context()
	var body *clientBody
	if r.ContentLength > 0 {
		body = &clientBody{ReadCloser: r.Body}
	}
	c, err := p.up.get(ctx, addr)
	if err == nil {
		err = p.exchange(ctx, w, r, c, body)
		if err != nil && c.reused && c.lim.read == 0 && replayable(r) {
			// The app closed an idle connection as the request went out
			// on it; http.Transport sends such requests again on a new
			// connection.
			if c, err = dial(ctx, addr); err == nil {
				err = p.exchange(ctx, w, r, c, body)
			}
		}
	}
	if err != nil {
		if ctx.Err() != nil && (body == nil || body.failed() == nil) {
			// What the app was doing was interrupted because the client
			// went away.
			err = ctx.Err()
		} else if err == io.ErrUnexpectedEOF && c != nil && c.lim.read == 0 {
			err = io.EOF // the app hung up without a word, as http.Transport says
		}
		p.proxyError(w, r.Host, err, body)
	}
}

// exchange sends r on c and copies the answer to w. It returns an error
// only when no final answer was begun (1xx ones may have been passed on);
// c is then closed.
func (p *Proxy) exchange(ctx context.Context, w http.ResponseWriter, r *http.Request, c *upConn, body *clientBody) error {
	// The client going away interrupts whatever waits on the app.
	stop := context.AfterFunc(ctx, func() { c.tcp.SetDeadline(aLongTimeAgo) })
	resp, err := p.roundTrip(w, r, c, body)
	if err != nil {
		stop()
		c.tcp.Close()
		return err
	}
	whole := p.copyResponse(w, r.Host, resp)
	if stop() && whole && !resp.Close {
		p.up.put(c)
		return nil
	}
	c.tcp.Close()
	if !whole && r.Context().Value(http.ServerContextKey) != nil {
		// As ReverseProxy: a response cut short can only be aborted.
		panic(http.ErrAbortHandler)
	}
	return nil
}

// roundTrip writes r on c and reads the answer's header, passing 1xx
// answers on to the client as ReverseProxy does.
func (p *Proxy) roundTrip(w http.ResponseWriter, r *http.Request, c *upConn, body *clientBody) (*http.Response, error) {
	c.lim.read = 0
	writeHead(c.bw, r, p.scheme)
	if body != nil {
		if _, err := io.CopyN(c.bw, body, r.ContentLength); err != nil {
			return nil, err
		}
	}
	if err := c.bw.Flush(); err != nil {
		return nil, err
	}
	c.quickAck()
	return p.answer(w, c, r)
}

// answer reads the app's answer to r on c, passing 1xx answers on to the
// client as ReverseProxy does; r is only asked for its method.
func (p *Proxy) answer(w http.ResponseWriter, c *upConn, r *http.Request) (*http.Response, error) {
	for n := 0; ; n++ {
		c.expectHeader()
		resp, err := p.readAnswer(c, r)
		if err != nil {
			if errors.Is(err, errHeaderTooLarge) {
				err = fmt.Errorf("net/http: server response headers exceeded %d bytes; aborted", maxResponseHeader)
			}
			return nil, err
		}
		c.expectBody()
		if resp.Body != http.NoBody && c.br.Buffered() == 0 {
			c.splits = true
		}
		switch code := resp.StatusCode; {
		case code == http.StatusSwitchingProtocols:
			return nil, errors.New("the app switched protocols when the request asked for none")
		case code >= 100 && code < 200:
			if n >= 32 {
				return nil, errors.New("the app sent more than 32 informational (1xx) responses")
			}
			h := w.Header()
			copyHeader(h, resp.Header)
			w.WriteHeader(code)
			clear(h)
			continue
		}
		return resp, nil
	}
}

// replayable is http.Transport's rule for sending a request again.
func replayable(r *http.Request) bool {
	if r.ContentLength != 0 {
		return false
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return r.Header["Idempotency-Key"] != nil || r.Header["X-Idempotency-Key"] != nil
}

// writeHead writes r's request line and header as http.Transport would
// write ReverseProxy's outgoing request.
func writeHead(bw *bufio.Writer, r *http.Request, scheme string) {
	bw.WriteString(r.Method)
	bw.WriteByte(' ')
	bw.WriteString(r.URL.RequestURI())
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(r.Host)
	bw.WriteString("\r\n")
	for k, vv := range r.Header {
		if dropped[k] || strings.HasPrefix(k, ReplicaHeaderPrefix) || underscored(k) {
			continue
		}
		for _, v := range vv {
			field(bw, k, v)
		}
	}
	forwardedHeaders(r, scheme, func(k, v string) { field(bw, k, v) })
	// http.Transport says Content-Length: 0 only for methods that expect
	// a body.
	if r.ContentLength > 0 || r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch {
		var n [20]byte
		bw.WriteString("Content-Length: ")
		bw.Write(strconv.AppendInt(n[:0], r.ContentLength, 10))
		bw.WriteString("\r\n")
	}
	bw.WriteString("\r\n")
}

// field writes one header line; a line break in a value becomes a space,
// as net/http's Header.Write does, so no value can add a header.
func field(bw *bufio.Writer, k, v string) {
	bw.WriteString(k)
	bw.WriteString(": ")
	if strings.ContainsAny(v, "\r\n") {
		v = strings.NewReplacer("\r", " ", "\n", " ").Replace(v)
	}
	bw.WriteString(strings.TrimSpace(v))
	bw.WriteString("\r\n")
}

// copyResponse writes resp to the client as ReverseProxy does: without
// hop-by-hop headers, trailers announced and passed on, streaming bodies
// flushed as they come. It reports whether the whole body was copied.
func (p *Proxy) copyResponse(w http.ResponseWriter, host string, resp *http.Response) bool {
	removeHopByHop(resp.Header)
	h := w.Header()
	copyHeader(h, resp.Header)
	announced := len(resp.Trailer)
	if announced > 0 {
		keys := make([]string, 0, announced)
		for k := range resp.Trailer {
			keys = append(keys, k)
		}
		h.Add("Trailer", strings.Join(keys, ", "))
	}
	w.WriteHeader(resp.StatusCode)
	flush := resp.ContentLength == -1 || eventStream(resp.Header.Get("Content-Type"))
	buf := buffers.Get().(*[]byte)
	defer buffers.Put(buf)
	for {
		n, rerr := resp.Body.Read(*buf)
		if n > 0 {
			if _, err := w.Write((*buf)[:n]); err != nil {
				return false
			}
			if flush {
				http.NewResponseController(w).Flush()
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			p.opts.Logger.Debug("environment app's response cut short", "host", host, "err", rerr)
			return false
		}
	}
	resp.Body.Close()
	if len(resp.Trailer) > 0 {
		// Chunked, so the trailers can follow the body.
		http.NewResponseController(w).Flush()
	}
	if len(resp.Trailer) == announced {
		copyHeader(h, resp.Trailer)
	} else {
		for k, vv := range resp.Trailer {
			for _, v := range vv {
				h.Add(http.TrailerPrefix+k, v)
			}
		}
	}
	return true
}

// eventStream reports whether a Content-Type is server-sent events, which
// ReverseProxy flushes as they come whatever their length.
func eventStream(ct string) bool {
	if !strings.Contains(strings.ToLower(ct), "event-stream") {
		return false
	}
	mt, _, _ := mime.ParseMediaType(ct)
	return mt == "text/event-stream"
}

// removeHopByHop is ReverseProxy's removeHopByHopHeaders.
func removeHopByHop(h http.Header) {
	for _, f := range h["Connection"] {
		for sf := range strings.SplitSeq(f, ",") {
			if sf = strings.TrimSpace(sf); sf != "" {
				h.Del(sf)
			}
		}
	}
	for _, f := range []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"} {
		delete(h, f)
	}
}

// copyHeader adds src's values to dst's, as ReverseProxy does, sharing
// src's slices where dst has none (src is the app's answer, read for this
// request only).
func copyHeader(dst, src http.Header) {
	for k, vv := range src {
		if have := dst[k]; have != nil {
			dst[k] = append(have, vv...)
		} else {
			dst[k] = vv
		}
	}
}
