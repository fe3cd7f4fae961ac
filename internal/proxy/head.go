package proxy

import (
	"bytes"
	"net/url"
)

// The front's request-head parser. It accepts only heads whose every byte
// it reads exactly as net/http does, and only requests the lean path may
// forward: HTTP/1.1, a known method, an origin-form target in a
// conservative alphabet, one Host, at most one plain Content-Length of at
// most leanMaxBody, no Transfer-Encoding, Expect, Upgrade, TE or Trailer,
// header lines of token names and printable ASCII values ended by CRLF.
// Anything else (bare LF or CR, obs-fold, NUL, other versions,
// absolute-form, duplicate or odd framing, non-ASCII) is a doubt: the whole
// connection goes to net/http, which answers it as it always did. So the
// parser never refuses anything itself and never needs to agree with
// net/http on how to refuse.

type verdict int

const (
	headIncomplete verdict = iota // more bytes may make it a head
	headOK                        // a head the front forwards itself
	headDoubt                     // net/http's to read
)

// headField is one header line of a parsed head.
type headField struct {
	name, value []byte // the value trimmed of SP and HTAB
}

// head is a parsed request head. Its byte slices point into the buffer it
// was parsed from, valid until the connection is read again.
type head struct {
	n             int    // length of the head, through the blank line
	method        string // interned: one of frontMethods
	target        []byte // as sent: path, then ?query when there is one
	path, query   []byte
	host          []byte
	userAgent     []byte // the first User-Agent value
	fields        []headField
	contentLength int64
	close         bool // Connection: close
	idempotent    bool // Idempotency-Key or X-Idempotency-Key (http.Transport's retry rule)
	key           []byte
}

// frontMethods are the methods the front forwards; others (CONNECT, PRI,
// WebDAV's …) go to net/http.
var frontMethods = map[string]string{"GET": "GET", "HEAD": "HEAD", "POST": "POST", "PUT": "PUT",
	"DELETE": "DELETE", "OPTIONS": "OPTIONS", "PATCH": "PATCH"}

// pathByte: RFC 3986 unreserved, sub-delims, ':' '@' '/' and '%' (checked
// as an escape). url.URL.RequestURI gives such a path back as it came, so
// the app sees the bytes the client sent, as through net/http.
var pathByte = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-._~!$&'()*+,;=:@/%" {
		t[c] = true
	}
	return t
}()

// queryByte: a path byte or '?', but not ';' (ReverseProxy re-encodes
// queries with it: plainQuery).
var queryByte = func() (t [256]bool) {
	t = pathByte
	t['?'], t[';'] = true, false
	return t
}()

// tchar is RFC 9110's token alphabet, the bytes of a header name.
var tchar = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

var hostByte = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	t['.'], t['-'], t[':'] = true, true, true
	return t
}()

// valueByte: HTAB, SP and visible ASCII. obs-text (bytes ≥ 0x80) is legal
// but rare, and goes to net/http.
func valueByte(c byte) bool { return c == '\t' || c >= ' ' && c < 0x7f }

// parse reads b as the start of a request. It validates as it goes, so a
// byte that cannot belong to a head the front takes is a doubt at once,
// without waiting for the rest (net/http then waits for it itself).
func (h *head) parse(b []byte) verdict {
	fields, key := h.fields[:0], h.key[:0]
	*h = head{fields: fields, key: key}
	hosts, lengths, connections := 0, 0, 0
	first := true
	for pos := 0; ; {
		line, next, v := headLine(b, pos)
		if v != headOK {
			return v
		}
		pos = next
		if first {
			first = false
			if !h.requestLine(line) {
				return headDoubt
			}
			continue
		}
		if len(line) == 0 {
			h.n = pos
			if hosts != 1 {
				return headDoubt
			}
			return headOK
		}
		name, value, ok := headerField(line)
		if !ok {
			return headDoubt
		}
		h.key = canonicalKey(h.key[:0], name)
		switch string(h.key) {
		case "Host":
			hosts++
			if len(value) == 0 {
				return headDoubt
			}
			for _, c := range value {
				if !hostByte[c] {
					return headDoubt
				}
			}
			h.host = value
		case "Content-Length":
			lengths++
			n, ok := contentLength(value)
			if !ok || lengths > 1 {
				return headDoubt
			}
			h.contentLength = n
		case "Connection":
			connections++
			if connections > 1 || !h.connection(value) {
				return headDoubt
			}
		case "Transfer-Encoding", "Expect", "Upgrade", "Te", "Trailer":
			return headDoubt
		case "User-Agent":
			if h.userAgent == nil {
				h.userAgent = value
			}
		case "Cookie":
			// glenv's own cookies are the gate's (internal/auth strips them).
			if bytes.Contains(value, []byte("glenv_")) {
				return headDoubt
			}
		case "Idempotency-Key", "X-Idempotency-Key":
			h.idempotent = true
		}
		if len(h.key) >= len(ReplicaHeaderPrefix) && string(h.key[:len(ReplicaHeaderPrefix)]) == ReplicaHeaderPrefix {
			return headDoubt // relayed by a replica: verified by ServeHTTP
		}
		h.fields = append(h.fields, headField{name: name, value: value})
	}
}

// headLine finds the line of a head that starts at pos: its bytes
// without the CRLF, and where the next line starts. v is headOK for a
// whole line, else the verdict on a head that stops there: a bare LF is a
// doubt, and a line not ended yet is partial's to judge. Both parsers,
// the request's (head.parse) and the answer's (answerHead.parse), read
// their lines with it.
func headLine(b []byte, pos int) (line []byte, next int, v verdict) {
	eol := bytes.IndexByte(b[pos:], '\n')
	if eol < 0 {
		return nil, pos, partial(b[pos:])
	}
	if eol == 0 || b[pos+eol-1] != '\r' {
		return nil, pos, headDoubt // a bare LF
	}
	return b[pos : pos+eol-1], pos + eol + 1, headOK
}

// headerField splits a header line into its name, a token, and its value
// of HTAB, SP and visible ASCII without the optional whitespace around
// it; ok is false for anything else (obs-fold, no name, no colon, another
// byte), which both parsers leave to net/http.
func headerField(line []byte) (name, value []byte, ok bool) {
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		return nil, nil, false
	}
	name, value = line[:colon], trimOWS(line[colon+1:])
	for _, c := range name {
		if !tchar[c] {
			return nil, nil, false
		}
	}
	for _, c := range value {
		if !valueByte(c) {
			return nil, nil, false
		}
	}
	return name, value, true
}

// partial checks the bytes of a line not ended yet.
func partial(b []byte) verdict {
	for i, c := range b {
		if !valueByte(c) && !(c == '\r' && i == len(b)-1) {
			return headDoubt
		}
	}
	return headIncomplete
}

// requestLine takes "METHOD SP origin-form SP HTTP/1.1".
func (h *head) requestLine(line []byte) bool {
	sp := bytes.IndexByte(line, ' ')
	if sp < 0 {
		return false
	}
	method, ok := frontMethods[string(line[:sp])]
	if !ok {
		return false
	}
	rest := line[sp+1:]
	sp = bytes.IndexByte(rest, ' ')
	if sp < 0 || string(rest[sp+1:]) != "HTTP/1.1" {
		return false
	}
	target := rest[:sp]
	if len(target) == 0 || target[0] != '/' || len(target) > 1 && target[1] == '/' {
		return false
	}
	path, query := target, []byte(nil)
	if q := bytes.IndexByte(target, '?'); q >= 0 {
		path, query = target[:q], target[q+1:]
	}
	if !escaped(path, &pathByte) || !escaped(query, &queryByte) {
		return false
	}
	if bytes.Contains(query, []byte("glenv_")) {
		return false // the gate's ticket (internal/auth)
	}
	h.method, h.target, h.path, h.query = method, target, path, query
	return true
}

// escaped reports whether every byte of s is allowed and every '%' starts
// a valid escape.
func escaped(s []byte, allowed *[256]bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !allowed[c] {
			return false
		}
		if c == '%' {
			if i+2 >= len(s) || !ishex(s[i+1]) || !ishex(s[i+2]) {
				return false
			}
			i += 2
		}
	}
	return true
}

// connection takes a Connection value naming only keep-alive or close.
func (h *head) connection(v []byte) bool {
	for tok := range bytes.SplitSeq(v, []byte(",")) {
		tok = trimOWS(tok)
		switch {
		case len(tok) == 0, bytes.EqualFold(tok, []byte("keep-alive")):
		case bytes.EqualFold(tok, []byte("close")):
			h.close = true
		default:
			return false
		}
	}
	return true
}

// contentLength takes digits without a sign or leading zeros, up to
// leanMaxBody.
func contentLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 6 || len(v) > 1 && v[0] == '0' {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, n <= leanMaxBody
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// canonicalKey appends the canonical form of a header name made of token
// bytes, as textproto.CanonicalMIMEHeaderKey gives it: upper case first
// and after each '-', lower case elsewhere.
func canonicalKey(dst, name []byte) []byte {
	upper := true
	for _, c := range name {
		if upper && 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		} else if !upper && 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
		upper = c == '-'
	}
	return dst
}

// countsAsVisit is countsAsVisit for a parsed head: r.URL.Path is the
// path unescaped.
func (h *head) countsAsVisit() bool {
	if bytes.IndexByte(h.path, '%') >= 0 {
		if p, err := url.PathUnescape(string(h.path)); err == nil {
			return isVisit(p, h.userAgent)
		}
	}
	return isVisit(h.path, h.userAgent)
}
