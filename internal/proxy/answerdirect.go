package proxy

import (
	"bytes"
	"net/http"
)

// directMaxBody bounds the answers written straight from the app's bytes:
// net/http holds a body this small in response.w until the handler
// returns and then writes head and body at once, so an answer cut short
// sends the client nothing either way, and the bytes it does send are
// the whole answer's.
const directMaxBody = bufferBeforeChunkingSize

// hopByHop are the answer headers ReverseProxy drops (removeHopByHop);
// a lean answer's Connection names no others.
var hopByHop = map[string]bool{"Connection": true, "Proxy-Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true,
	"Proxy-Authorization": true, "Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true}

// answerDirect writes the app's answer on c to the client as ReverseProxy
// and net/http would (copyResponse, then frontWriter's writeHeader and
// finish), straight from the answer's bytes without an http.Header or an
// http.Response in between (issue 15: those were a tenth of the Front's
// CPU). It takes only a lean answer (answerhead.go) to a request without
// a body, sized by a Content-Length of at most directMaxBody, and only
// once all of it is read; for any other it returns false with every byte
// still buffered, and p.answer reads it. keep reports whether c may carry
// another request.
func (fc *frontConn) answerDirect(c *upConn) (ok, keep bool) {
	a := &c.ans
	c.expectHeader()
	for {
		b, _ := c.br.Peek(c.br.Buffered())
		v := a.parse(b)
		if v == headDoubt {
			return false, false
		}
		if v == headOK {
			break
		}
		if c.br.Buffered() == c.br.Size() {
			return false, false
		}
		if _, err := c.br.Peek(c.br.Buffered() + 1); err != nil {
			return false, false
		}
	}
	n := int(a.contentLength)
	if a.chunked || n > directMaxBody || a.n+n > c.br.Size() {
		return false, false
	}
	if c.br.Buffered() < a.n+n {
		c.splits = true // the body came after the head: see quickAck
	}
	raw, err := c.br.Peek(a.n + n)
	if err != nil {
		return false, false // cut short: p.answer meets the same error and answers as net/http does
	}
	if fc.f.proxy.onAnswer != nil {
		fc.f.proxy.onAnswer(true)
	}
	fc.writeAnswer(a, raw[a.n:])
	c.br.Discard(a.n + n)
	c.expectBody()
	return true, !a.close
}

// writeAnswer writes the head net/http writes for a's fields, then body:
// the fields but the hop-by-hop ones, sorted by canonical name (each
// name's values in the app's order), as Header.WriteSubset writes them,
// then the headers net/http adds itself (extraHeader), in its order.
func (fc *frontConn) writeAnswer(a *answerHead, body []byte) {
	fw := fc.fw
	// Canonical names, one after another in fc.names; fc.order the
	// fields kept, sorted by name (insertion sort: a head has few).
	fc.names, fc.order, fc.nameEnd = fc.names[:0], fc.order[:0], fc.nameEnd[:0]
	haveDate, haveType, encoding := false, false, []byte(nil)
	for i, f := range a.fields {
		start := len(fc.names)
		fc.names = canonicalKey(fc.names, f.name)
		fc.nameEnd = append(fc.nameEnd, len(fc.names))
		name := fc.names[start:]
		if hopByHop[string(name)] {
			continue
		}
		switch string(name) {
		case "Date":
			haveDate = true
		case "Content-Type":
			haveType = true
		case "Content-Encoding":
			if encoding == nil {
				encoding = f.value[:len(f.value):len(f.value)]
			}
		}
		fc.order = append(fc.order, i)
		for j := len(fc.order) - 1; j > 0 && bytes.Compare(fc.name(fc.order[j-1]), name) > 0; j-- {
			fc.order[j-1], fc.order[j] = fc.order[j], fc.order[j-1]
		}
	}
	bw := fc.bw
	writeStatusLine(bw, a.status)
	for _, i := range fc.order {
		bw.Write(fc.name(i))
		bw.WriteString(": ")
		bw.Write(a.fields[i].value)
		bw.WriteString("\r\n")
	}
	if !haveDate {
		bw.WriteString("Date: ")
		bw.Write(fw.date.now())
		bw.WriteString("\r\n")
	}
	if !haveType && len(encoding) == 0 && len(body) > 0 {
		bw.WriteString("Content-Type: ")
		bw.WriteString(http.DetectContentType(body))
		bw.WriteString("\r\n")
	}
	closeAfter := fw.wantsClose || !fw.keepAlives
	if closeAfter {
		bw.WriteString("Connection: close\r\n")
	}
	bw.WriteString("\r\n")
	bw.Write(body)
	// What finish needs to know: a final answer, its head written, all
	// of its body.
	fw.wroteHeader, fw.cwWroteHeader, fw.status = true, true, a.status
	fw.contentLength, fw.written, fw.closeAfterReply = int64(len(body)), int64(len(body)), closeAfter
}

// name is the canonical name of field i of the answer writeAnswer writes.
func (fc *frontConn) name(i int) []byte {
	start := 0
	if i > 0 {
		start = fc.nameEnd[i-1]
	}
	return fc.names[start:fc.nameEnd[i]]
}
