package gitlabapi

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
)

// GitLab's API is mounted in Rails, whose default middleware ends with
// Rack::Head, Rack::ConditionalGet and Rack::ETag "no-cache"
// (railties lib/rails/application/default_middleware_stack.rb): every
// 200 or 201 answer with a body gets a weak ETag and
// "Cache-Control: max-age=0, private, must-revalidate", every other one
// "Cache-Control: no-cache", and a GET whose If-None-Match names the
// current ETag is answered 304 without a body. Clients that revalidate
// (browsers, caching HTTP clients) then save the transfer.

// cacheControlETag and cacheControlNone are Rack::ETag's two values.
const (
	cacheControlETag = "max-age=0, private, must-revalidate"
	cacheControlNone = "no-cache"
)

// Revalidated wraps w so that what the handler answers gets Rack::ETag's
// and Rack::ConditionalGet's treatment; finish writes it out and must be
// called once the handler returned. Answers are held in memory: the API's
// are small JSON documents.
func Revalidated(w http.ResponseWriter, r *http.Request) (rw http.ResponseWriter, finish func()) {
	b := &buffered{w: w, header: http.Header{}}
	return b, func() { b.finish(r) }
}

// buffered holds an answer until finish.
type buffered struct {
	w      http.ResponseWriter
	header http.Header
	status int
	body   bytes.Buffer
	// direct: the answer bypasses the Rails stack (Malformed) and goes out
	// as written.
	direct bool
}

func (b *buffered) Header() http.Header { return b.header }

// Unwrap lets http.ResponseController reach the connection.
func (b *buffered) Unwrap() http.ResponseWriter { return b.w }

func (b *buffered) WriteHeader(status int) {
	if b.status == 0 {
		b.status = status
	}
}

func (b *buffered) Write(p []byte) (int, error) {
	b.WriteHeader(http.StatusOK)
	return b.body.Write(p)
}

// bypass marks an answer GitLab gives before Rails' middleware sees the
// request (HandleMalformedStrings sits ahead of Rack::ETag).
func (b *buffered) bypass() { b.direct = true }

func (b *buffered) finish(r *http.Request) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	h := b.header
	if !b.direct {
		etag := ""
		if (b.status == http.StatusOK || b.status == http.StatusCreated) && b.body.Len() > 0 &&
			!strings.Contains(h.Get("Cache-Control"), "no-cache") && h.Get("ETag") == "" && h.Get("Last-Modified") == "" {
			sum := sha256.Sum256(b.body.Bytes())
			etag = `W/"` + hex.EncodeToString(sum[:])[:32] + `"` // rack lib/rack/etag.rb #digest_body
			h.Set("ETag", etag)
		}
		if h.Get("Cache-Control") == "" {
			if etag != "" {
				h.Set("Cache-Control", cacheControlETag)
			} else {
				h.Set("Cache-Control", cacheControlNone)
			}
		}
		// rack lib/rack/conditional_get.rb: GET and HEAD, 200, and
		// If-None-Match equal to the ETag.
		if (r.Method == http.MethodGet || r.Method == http.MethodHead) && b.status == http.StatusOK &&
			etag != "" && r.Header.Get("If-None-Match") == etag {
			h.Del("Content-Type")
			h.Del("Content-Length")
			b.status = http.StatusNotModified
			b.body.Reset()
		}
	}
	dst := b.w.Header()
	for k, vs := range h {
		dst[k] = vs
	}
	b.w.WriteHeader(b.status)
	b.w.Write(b.body.Bytes())
}
