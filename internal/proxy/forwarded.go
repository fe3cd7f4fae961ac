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

// underscored reports whether a header name has an underscore: such
// headers never reach an app. CGI, Rack, WSGI and PHP name a header
// HTTP_<NAME> with '-' made '_', so X_Forwarded_For and X-Forwarded-For
// are one variable there, and a client could forge the forwarding headers
// glenv sets (or the X_Glenv_… of one). nginx drops them for this reason
// (underscores_in_headers off and ignore_invalid_headers on, its defaults:
// nginx.org/en/docs/http/ngx_http_core_module.html#underscores_in_headers),
// so apps that run behind GitLab's nginx or an ingress never got them.
func underscored[S string | []byte](name S) bool {
	for i := range len(name) {
		if name[i] == '_' {
			return true
		}
	}
	return false
}

// forwarded sets the forwarding headers from the connection and the public
// scheme, after dropping whatever the client sent under those names and
// every header with an underscore in its name.
func forwarded(pr *httputil.ProxyRequest, scheme string) {
	for _, h := range clientHeaders {
		pr.Out.Header.Del(h)
	}
	for k := range pr.Out.Header {
		if underscored(k) {
			delete(pr.Out.Header, k)
		}
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
