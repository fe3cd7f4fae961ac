package proxy

import (
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"sync"
)

// clientHeaders are what a client could claim about itself or the way its
// request came: an app must be able to trust them, so only glenv sets them.
var clientHeaders = []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto",
	"X-Forwarded-Port", "X-Forwarded-Prefix", "X-Forwarded-Server", "X-Forwarded-Ssl", "X-Real-Ip",
	"X-Client-Ip", "True-Client-Ip", "X-Cluster-Client-Ip", "Cf-Connecting-Ip", "Fastly-Client-Ip", "X-Original-Forwarded-For"}

// forwarded sets the forwarding headers from the connection and the public
// scheme, after dropping whatever the client sent under those names.
func forwarded(pr *httputil.ProxyRequest, scheme string) {
	for _, h := range clientHeaders {
		pr.Out.Header.Del(h)
	}
	dropReplicaHeaders(pr.Out.Header)
	forwardedHeaders(pr.In, scheme, pr.Out.Header.Set)
}

// forwardedHeaders gives the headers glenv tells an app about a request
// in: both paths set them (the lean path writes them as they come).
func forwardedHeaders(in *http.Request, scheme string, set func(k, v string)) {
	if ip, _, err := net.SplitHostPort(in.RemoteAddr); err == nil {
		set("X-Forwarded-For", ip)
		set("X-Real-Ip", ip)
	}
	set("X-Forwarded-Host", in.Host)
	set("X-Forwarded-Proto", scheme)
}

// clientBody remembers why reading the client's request body failed, so a
// bad body is answered 400 instead of blamed on the app.
type clientBody struct {
	io.ReadCloser
	mu  sync.Mutex
	err error
}

func (b *clientBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		b.mu.Lock()
		if b.err == nil {
			b.err = err
		}
		b.mu.Unlock()
	}
	return n, err
}

func (b *clientBody) failed() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}
