package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httputil"
	"net/textproto"
)

// readAnswer reads the app's answer head on c as http.ReadResponse would,
// with the lean parser when the answer is a common one, and with
// http.ReadResponse itself otherwise. The lean answer's strings share one
// copy of the head and its body readers live in c, so a common answer
// costs a few allocations instead of ReadResponse's dozens.
func (p *Proxy) readAnswer(c *upConn, req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodHead && !p.noLeanAnswers {
		if resp := c.leanAnswer(); resp != nil {
			if p.onAnswer != nil {
				p.onAnswer(true)
			}
			return resp, nil
		}
	}
	if p.onAnswer != nil {
		p.onAnswer(false)
	}
	return http.ReadResponse(c.br, req)
}

// leanAnswer parses the head buffered on c, reading more while it is
// incomplete and fits the buffer; it returns nil, leaving every byte
// buffered, when the head is not one the lean parser takes or reading
// failed (ReadResponse then reads again and says why).
func (c *upConn) leanAnswer() *http.Response {
	a := &c.ans
	for {
		b, _ := c.br.Peek(c.br.Buffered())
		switch a.parse(b) {
		case headDoubt:
			return nil
		case headOK:
			return c.answerFrom(b[:a.n])
		}
		if c.br.Buffered() == c.br.Size() {
			return nil // longer than the buffer: ReadResponse's
		}
		if _, err := c.br.Peek(c.br.Buffered() + 1); err != nil {
			return nil
		}
	}
}

// chunkedEncoding is resp.TransferEncoding of a chunked answer; nothing
// the proxy calls changes it.
var chunkedEncoding = []string{"chunked"}

// answerFrom builds the response ReadResponse would for the head a just
// parsed from raw, and consumes raw from c.br.
func (c *upConn) answerFrom(raw []byte) *http.Response {
	a := &c.ans
	s := string(raw) // one copy: every name and value below is a part of it
	at := func(b []byte) string {
		i := len(s) - len(raw) + int(cap(raw)-cap(b))
		return s[i : i+len(b)]
	}
	// The map is the connection's: nothing keeps it past the answer's
	// copy to the client, which ends before the connection is pooled
	// again. The values are not: the Front's writer shares them until it
	// wrote the head, after that.
	if c.header == nil {
		c.header = make(http.Header, len(a.fields))
	}
	h := c.header
	clear(h)
	values := make([]string, len(a.fields))
	for i, f := range a.fields {
		name := at(f.name)
		if !canonical(f.name) {
			name = textproto.CanonicalMIMEHeaderKey(name)
		}
		values[i] = at(f.value)
		if have := h[name]; have != nil {
			h[name] = append(have, values[i])
		} else {
			h[name] = values[i : i+1 : i+1]
		}
	}
	resp := &c.resp
	*resp = http.Response{Status: at(a.statusText), StatusCode: a.status, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, ContentLength: a.contentLength, Close: a.close}
	if a.close {
		delete(h, "Connection") // transfer.go shouldClose(…, removeCloseHeader)
	}
	c.br.Discard(len(raw))
	switch {
	case a.chunked:
		delete(h, "Transfer-Encoding") // transfer.go parseTransferEncoding
		resp.TransferEncoding = chunkedEncoding
		c.chunked = chunkedBody{src: httputil.NewChunkedReader(c.br), br: c.br, resp: resp}
		resp.Body = &c.chunked
	case a.contentLength == 0:
		resp.Body = http.NoBody
	default:
		c.sized = lengthBody{br: c.br, left: a.contentLength}
		resp.Body = &c.sized
	}
	return resp
}

// canonical reports whether a token name is already in canonical form.
func canonical(name []byte) bool {
	upper := true
	for _, c := range name {
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			return false
		}
		upper = c == '-'
	}
	return true
}

// chunkedBody is a chunked answer body with its trailer, read as
// transfer.go's body and readTrailer read them.
type chunkedBody struct {
	src  io.Reader // httputil.NewChunkedReader: net/http's own chunk parser
	br   *bufio.Reader
	resp *http.Response
	err  error // sticky once the body ended, well or not
}

func (b *chunkedBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.src.Read(p)
	if err == io.EOF {
		if terr := b.readTrailer(); terr != nil {
			err = terr
		}
	}
	if err != nil {
		b.err = err
	}
	return n, err
}

func (b *chunkedBody) Close() error { return nil }

var errTrailerEOF = errors.New("http: unexpected EOF reading trailer")

// readTrailer is transfer.go's body.readTrailer.
func (b *chunkedBody) readTrailer() error {
	buf, err := b.br.Peek(2)
	if bytes.Equal(buf, []byte("\r\n")) {
		b.br.Discard(2)
		return nil
	}
	if len(buf) < 2 {
		return errTrailerEOF
	}
	if err != nil {
		return err
	}
	if !upcomingDoubleCRLF(b.br) {
		return errors.New("http: suspiciously long trailer after chunked body")
	}
	hdr, err := textproto.NewReader(b.br).ReadMIMEHeader()
	if err != nil {
		if err == io.EOF {
			return errTrailerEOF
		}
		return err
	}
	if b.resp.Trailer == nil {
		b.resp.Trailer = http.Header(hdr)
	} else {
		for k, vv := range hdr {
			b.resp.Trailer[k] = vv
		}
	}
	return nil
}

// upcomingDoubleCRLF is transfer.go's seeUpcomingDoubleCRLF: a trailer
// must end within the reader's buffer.
func upcomingDoubleCRLF(r *bufio.Reader) bool {
	for size := 4; ; size++ {
		buf, err := r.Peek(size)
		if bytes.HasSuffix(buf, []byte("\r\n\r\n")) {
			return true
		}
		if err != nil {
			return false
		}
	}
}
