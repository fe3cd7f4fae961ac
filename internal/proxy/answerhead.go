package proxy

import (
	"bytes"
)

// The app side's answer-head parser (issue 15: http.ReadResponse was most
// of the front's allocations). It takes only the common answer, whose
// every byte it reads exactly as http.ReadResponse does
// (net/http/response.go and transfer.go, Go 1.26): "HTTP/1.1", a final
// status with a body (2xx to 5xx but 204 and 304), header lines of token
// names and printable ASCII values ended by CRLF, and one plain framing:
// a single Content-Length of digits or a single Transfer-Encoding:
// chunked. Anything else (1xx, HTTP/1.0, no length, duplicate or odd
// framing, Trailer or Pragma, which ReadResponse rewrites, bare LF,
// obs-fold, non-ASCII, a head longer than the connection's buffer) is a
// doubt: the bytes stay buffered and http.ReadResponse reads them, so
// every unusual answer is judged by net/http as before.

// answerHead is a parsed answer head; its slices point into the buffer it
// was parsed from.
type answerHead struct {
	n             int // length of the head, through the blank line
	status        int
	statusText    []byte // "200 OK": the code and reason, as resp.Status
	fields        []headField
	contentLength int64 // -1 when chunked
	chunked       bool
	close         bool // Connection: close
	key           []byte
}

// parse reads b as the start of an answer.
func (a *answerHead) parse(b []byte) verdict {
	fields, key := a.fields[:0], a.key[:0]
	*a = answerHead{fields: fields, key: key, contentLength: -1}
	lengths, encodings, connections := 0, 0, 0
	first := true
	for pos := 0; ; {
		line, next, v := headLine(b, pos)
		if v != headOK {
			return v
		}
		pos = next
		if first {
			first = false
			if !a.statusLine(line) {
				return headDoubt
			}
			continue
		}
		if len(line) == 0 {
			a.n = pos
			// No framing is a body read until the app closes (transfer.go
			// readTransfer: "Unbounded body"), and both at once is
			// smuggling's favourite: net/http's to judge.
			if lengths+encodings != 1 {
				return headDoubt
			}
			return headOK
		}
		name, value, ok := headerField(line)
		if !ok {
			return headDoubt
		}
		a.key = canonicalKey(a.key[:0], name)
		switch string(a.key) {
		case "Content-Length":
			lengths++
			n, ok := answerLength(value)
			if !ok || lengths > 1 {
				return headDoubt
			}
			a.contentLength = n
		case "Transfer-Encoding":
			// transfer.go parseTransferEncoding: one field, "chunked" in
			// any case; anything else is an error there.
			encodings++
			if encodings > 1 || !bytes.EqualFold(value, []byte("chunked")) {
				return headDoubt
			}
			a.chunked = true
		case "Connection":
			// Only the tokens whose meaning is framing: others name
			// headers ReverseProxy then drops (removeHopByHop), which
			// ReadResponse's Header gives it to do.
			connections++
			if connections > 1 || !connectionTokens(value, &a.close) {
				return headDoubt
			}
		case "Trailer", "Pragma":
			// ReadResponse makes resp.Trailer of the one (fixTrailer) and
			// adds Cache-Control for the other (fixPragmaCacheControl).
			return headDoubt
		}
		a.fields = append(a.fields, headField{name: name, value: value})
	}
}

// statusLine takes "HTTP/1.1 SP 3DIGIT SP reason" with a status that has
// a body on any request but HEAD.
func (a *answerHead) statusLine(line []byte) bool {
	rest, ok := bytes.CutPrefix(line, []byte("HTTP/1.1 "))
	if !ok || len(rest) < 4 || rest[3] != ' ' {
		return false
	}
	code := 0
	for _, c := range rest[:3] {
		if c < '0' || c > '9' {
			return false
		}
		code = code*10 + int(c-'0')
	}
	if code < 200 || code > 599 || code == 204 || code == 304 {
		return false
	}
	for _, c := range rest[4:] {
		if !valueByte(c) {
			return false
		}
	}
	a.status, a.statusText = code, rest
	return true
}

// answerLength takes digits without a sign or leading zeros; 18 of them
// fit an int64.
func answerLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 || len(v) > 1 && v[0] == '0' {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// connectionTokens takes a Connection value of only keep-alive and close
// tokens, noting close.
func connectionTokens(v []byte, close *bool) bool {
	for tok := range bytes.SplitSeq(v, []byte(",")) {
		tok = trimOWS(tok)
		switch {
		case len(tok) == 0, bytes.EqualFold(tok, []byte("keep-alive")):
		case bytes.EqualFold(tok, []byte("close")):
			*close = true
		default:
			return false
		}
	}
	return true
}
