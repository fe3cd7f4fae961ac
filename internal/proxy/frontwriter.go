package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// frontWriter is the front's http.ResponseWriter: it answers the handler
// calls the lean path makes (copyResponse, page, 1xx) with the bytes
// net/http's server writes for the same calls to an HTTP/1.1 request. It
// follows net/http/server.go (Go 1.26) step by step: response.WriteHeader,
// response.write, the 2 KB buffer before chunking (response.w), and
// chunkWriter.writeHeader, Write and close; the names below are its names.
// Requests it never sees (HTTP/1.0, Expect, bodies it did not read whole)
// go to net/http, so those branches are left out.
type frontWriter struct {
	conn *bufio.Writer // the client connection's (conn.bufw)
	w    *bufio.Writer // response.w: bufferBeforeChunkingSize over chunkWriter

	// The request.
	isHEAD     bool
	wantsClose bool
	keepAlives bool        // false while the front shuts down (doKeepAlives)
	reqBody    *lengthBody // nil without a body
	werr       func() bool // whether writing to the client failed

	handlerHeader http.Header
	header        http.Header // cw.header: the handler's header when WriteHeader ran
	wroteHeader   bool        // a final status was (logically) written
	status        int
	contentLength int64
	written       int64
	handlerDone   bool
	trailers      []string

	cwWroteHeader   bool
	chunking        bool
	closeAfterReply bool

	clenBuf [20]byte
	date    dateCache
}

const bufferBeforeChunkingSize = 2048 // net/http's

// maxPostHandlerReadBytes is how much unread request body net/http reads
// away after a handler to keep a connection.
const maxPostHandlerReadBytes = 256 << 10

// chunkWriter is what response.w flushes into.
type chunkWriter struct{ fw *frontWriter }

func (cw chunkWriter) Write(p []byte) (int, error) { return cw.fw.cwWrite(p) }

func newFrontWriter(conn *bufio.Writer) *frontWriter {
	fw := &frontWriter{conn: conn, handlerHeader: http.Header{}, header: http.Header{}}
	fw.w = bufio.NewWriterSize(chunkWriter{fw}, bufferBeforeChunkingSize)
	return fw
}

// reset readies fw for the next request on its connection.
func (fw *frontWriter) reset(h *head, body *lengthBody, keepAlives bool, werr func() bool) {
	if len(fw.handlerHeader) > 0 { // a direct answer (answerdirect.go) used neither: clearing an empty map still walks it
		clear(fw.handlerHeader)
	}
	if len(fw.header) > 0 {
		clear(fw.header)
	}
	fw.w.Reset(chunkWriter{fw})
	fw.isHEAD, fw.wantsClose, fw.keepAlives, fw.reqBody, fw.werr = h.method == http.MethodHead, h.close, keepAlives, body, werr
	fw.wroteHeader, fw.status, fw.contentLength, fw.written, fw.handlerDone = false, 0, -1, 0, false
	fw.trailers = fw.trailers[:0]
	fw.cwWroteHeader, fw.chunking, fw.closeAfterReply = false, false, false
}

func (fw *frontWriter) Header() http.Header { return fw.handlerHeader }

func (fw *frontWriter) WriteHeader(code int) {
	if fw.wroteHeader {
		return // net/http logs a superfluous call and ignores it
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code)) // checkWriteHeaderCode
	}
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		writeStatusLine(fw.conn, code)
		fw.handlerHeader.WriteSubset(fw.conn, excludedHeadersNoBody)
		fw.conn.WriteString("\r\n")
		fw.conn.Flush()
		return
	}
	fw.wroteHeader = true
	fw.status = code
	// A shallow copy is a snapshot: Header's methods replace value slices
	// rather than change them in place.
	for k, v := range fw.handlerHeader {
		fw.header[k] = v
	}
	if cl := fw.handlerHeader.Get("Content-Length"); cl != "" {
		v, err := strconv.ParseInt(cl, 10, 64)
		if err == nil && v >= 0 {
			fw.contentLength = v
		} else {
			fw.handlerHeader.Del("Content-Length")
		}
	}
}

var excludedHeadersNoBody = map[string]bool{"Content-Length": true, "Transfer-Encoding": true}

func (fw *frontWriter) Write(p []byte) (int, error) {
	if !fw.wroteHeader {
		fw.WriteHeader(http.StatusOK)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if !bodyAllowedForStatus(fw.status) {
		return 0, http.ErrBodyNotAllowed
	}
	fw.written += int64(len(p))
	if fw.contentLength != -1 && fw.written > fw.contentLength {
		return 0, http.ErrContentLength
	}
	return fw.w.Write(p)
}

// Flush is response.FlushError.
func (fw *frontWriter) Flush() {
	if !fw.wroteHeader {
		fw.WriteHeader(http.StatusOK)
	}
	fw.w.Flush()
	if !fw.cwWroteHeader {
		fw.writeHeader(nil)
	}
	fw.conn.Flush()
}

// finish is response.finishRequest; it reports whether the connection may
// carry another request (shouldReuseConnection).
func (fw *frontWriter) finish() bool {
	fw.handlerDone = true
	if !fw.wroteHeader {
		fw.WriteHeader(http.StatusOK)
	}
	fw.w.Flush()
	if !fw.cwWroteHeader {
		fw.writeHeader(nil)
	}
	if fw.chunking {
		fw.conn.WriteString("0\r\n")
		if t := fw.finalTrailers(); t != nil {
			t.Write(fw.conn)
		}
		fw.conn.WriteString("\r\n")
	}
	fw.conn.Flush()
	switch {
	case fw.closeAfterReply, fw.werr():
		return false
	case !fw.isHEAD && fw.contentLength != -1 && bodyAllowedForStatus(fw.status) && fw.contentLength != fw.written:
		return false // did not write enough: the client would be out of step
	}
	return true
}

func (fw *frontWriter) finalTrailers() http.Header {
	var t http.Header
	for k, vv := range fw.handlerHeader {
		if kk, found := strings.CutPrefix(k, http.TrailerPrefix); found {
			if t == nil {
				t = http.Header{}
			}
			t[kk] = vv
		}
	}
	for _, k := range fw.trailers {
		if t == nil {
			t = http.Header{}
		}
		for _, v := range fw.handlerHeader[k] {
			t.Add(k, v)
		}
	}
	return t
}

func (fw *frontWriter) cwWrite(p []byte) (int, error) {
	if !fw.cwWroteHeader {
		fw.writeHeader(p)
	}
	if fw.isHEAD {
		return len(p), nil // eat writes
	}
	if fw.chunking {
		fw.conn.Write(strconv.AppendInt(fw.conn.AvailableBuffer(), int64(len(p)), 16))
		fw.conn.WriteString("\r\n")
	}
	n, err := fw.conn.Write(p)
	if fw.chunking && err == nil {
		_, err = fw.conn.WriteString("\r\n")
	}
	return n, err
}

// writeHeader is chunkWriter.writeHeader for an HTTP/1.1 request whose
// handler always called Header (so cw.header is owned).
func (fw *frontWriter) writeHeader(p []byte) {
	fw.cwWroteHeader = true
	header := fw.header
	var excludeHeader map[string]bool
	trailers := false
	for k := range header {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			if excludeHeader == nil {
				excludeHeader = map[string]bool{}
			}
			excludeHeader[k] = true
			trailers = true
		}
	}
	for _, v := range header["Trailer"] {
		trailers = true
		foreachHeaderElement(v, fw.declareTrailer)
	}
	te := header.Get("Transfer-Encoding")
	hasTE := te != ""
	var setContentLength []byte
	if fw.handlerDone && !trailers && !hasTE && bodyAllowedForStatus(fw.status) && header.Get("Content-Length") == "" && (!fw.isHEAD || len(p) > 0) {
		fw.contentLength = int64(len(p))
		setContentLength = strconv.AppendInt(fw.clenBuf[:0], int64(len(p)), 10)
	}
	hasCL := fw.contentLength != -1
	if fw.wantsClose {
		fw.closeAfterReply = true
	}
	if header.Get("Connection") == "close" || !fw.keepAlives {
		fw.closeAfterReply = true
	}
	// The request body the handler left unread is read away (it is at
	// most leanMaxBody here), so the next request can be read.
	if fw.reqBody != nil && !fw.closeAfterReply {
		if _, err := io.CopyN(io.Discard, fw.reqBody, maxPostHandlerReadBytes+1); err != io.EOF {
			fw.closeAfterReply = true
		}
	}
	var setContentType, setConnection, setTransferEncoding string
	code := fw.status
	if bodyAllowedForStatus(code) {
		_, haveType := header["Content-Type"]
		if header.Get("Content-Encoding") == "" && !haveType && !hasTE && len(p) > 0 {
			setContentType = http.DetectContentType(p)
		}
	} else {
		for _, k := range suppressedHeaders(code) {
			header.Del(k)
		}
	}
	var setDate []byte
	if _, ok := header["Date"]; !ok {
		setDate = fw.date.now()
	}
	if hasCL && hasTE && te != "identity" {
		header.Del("Content-Length")
		hasCL = false
	}
	switch {
	case fw.isHEAD || !bodyAllowedForStatus(code) || code == http.StatusNoContent:
		header.Del("Transfer-Encoding")
	case hasCL:
		header.Del("Transfer-Encoding")
	case hasTE && te == "identity":
		fw.chunking = false
		fw.closeAfterReply = true
		header.Del("Transfer-Encoding")
	default:
		fw.chunking = true
		setTransferEncoding = "chunked"
		if hasTE && te == "chunked" {
			header.Del("Transfer-Encoding")
		}
	}
	if fw.chunking {
		header.Del("Content-Length")
	}
	if fw.closeAfterReply && (!fw.keepAlives || !hasToken(header.Get("Connection"), "close")) &&
		!isProtocolSwitchResponse(code, header) {
		header.Del("Connection")
		setConnection = "close"
	}
	writeStatusLine(fw.conn, code)
	header.WriteSubset(fw.conn, excludeHeader)
	// extraHeader.Write's order.
	if setDate != nil {
		fw.conn.WriteString("Date: ")
		fw.conn.Write(setDate)
		fw.conn.WriteString("\r\n")
	}
	if setContentLength != nil {
		fw.conn.WriteString("Content-Length: ")
		fw.conn.Write(setContentLength)
		fw.conn.WriteString("\r\n")
	}
	for i, v := range []string{setContentType, setConnection, setTransferEncoding} {
		if v != "" {
			fw.conn.WriteString([...]string{"Content-Type: ", "Connection: ", "Transfer-Encoding: "}[i])
			fw.conn.WriteString(v)
			fw.conn.WriteString("\r\n")
		}
	}
	fw.conn.WriteString("\r\n")
}

func (fw *frontWriter) declareTrailer(k string) {
	k = http.CanonicalHeaderKey(k)
	if strings.HasPrefix(k, "If-") || badTrailer[k] {
		return // forbidden in trailers (httpguts.ValidTrailerHeader)
	}
	fw.trailers = append(fw.trailers, k)
}

func writeStatusLine(bw *bufio.Writer, code int) {
	bw.WriteString("HTTP/1.1 ")
	if text := http.StatusText(code); text != "" {
		bw.Write(strconv.AppendInt(bw.AvailableBuffer(), int64(code), 10))
		bw.WriteByte(' ')
		bw.WriteString(text)
		bw.WriteString("\r\n")
	} else {
		fmt.Fprintf(bw, "%03d status code %d\r\n", code, code)
	}
}

func bodyAllowedForStatus(status int) bool {
	switch {
	case status >= 100 && status <= 199, status == 204, status == 304:
		return false
	}
	return true
}

func suppressedHeaders(status int) []string {
	switch {
	case status == 304:
		return []string{"Content-Type", "Content-Length", "Transfer-Encoding"}
	case !bodyAllowedForStatus(status):
		return []string{"Content-Length", "Transfer-Encoding"}
	}
	return nil
}

var badTrailer = map[string]bool{"Authorization": true, "Cache-Control": true, "Connection": true,
	"Content-Encoding": true, "Content-Length": true, "Content-Range": true, "Content-Type": true, "Expect": true,
	"Host": true, "Keep-Alive": true, "Max-Forwards": true, "Pragma": true, "Proxy-Authenticate": true,
	"Proxy-Authorization": true, "Proxy-Connection": true, "Range": true, "Realm": true, "Te": true,
	"Trailer": true, "Transfer-Encoding": true, "Www-Authenticate": true}

// isProtocolSwitchResponse: the lean path never answers 101 (roundTrip
// refuses it), so only for completeness.
func isProtocolSwitchResponse(code int, h http.Header) bool {
	if code != http.StatusSwitchingProtocols {
		return false
	}
	for _, v := range h["Connection"] {
		if hasToken(v, "upgrade") {
			return true
		}
	}
	return false
}

// hasToken is net/http's: token appears in v, case-insensitively, between
// token boundaries (space, comma, tab).
func hasToken(v, token string) bool {
	if len(token) > len(v) || token == "" {
		return false
	}
	if v == token {
		return true
	}
	boundary := func(b byte) bool { return b == ' ' || b == ',' || b == '\t' }
	for sp := 0; sp <= len(v)-len(token); sp++ {
		if sp > 0 && !boundary(v[sp-1]) {
			continue
		}
		if end := sp + len(token); end != len(v) && !boundary(v[end]) {
			continue
		}
		if strings.EqualFold(v[sp:sp+len(token)], token) {
			return true
		}
	}
	return false
}

// foreachHeaderElement is net/http's: fn for each non-empty element of a
// comma-separated value.
func foreachHeaderElement(v string, fn func(string)) {
	v = strings.Trim(v, " \t\r\n")
	if v == "" {
		return
	}
	for f := range strings.SplitSeq(v, ",") {
		if f = strings.Trim(f, " \t\r\n"); f != "" {
			fn(f)
		}
	}
}

// dateCache formats the Date header once a second instead of per answer.
type dateCache struct {
	sec int64
	b   []byte
}

func (d *dateCache) now() []byte {
	t := time.Now()
	if s := t.Unix(); s != d.sec || d.b == nil {
		d.sec, d.b = s, t.UTC().AppendFormat(d.b[:0], http.TimeFormat)
	}
	return d.b
}
