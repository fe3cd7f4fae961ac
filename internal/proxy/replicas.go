package proxy

import (
	"context"
	"errors"
	"html"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"time"
)

// Replicas lets a proxy hand a request for an environment that another
// glenv replica runs (several replicas, process runtime) to that replica.
// internal/replica implements it.
type Replicas interface {
	// Owner is the address of the other live replica that runs the
	// environment of host label, or false (this one runs it, or none).
	Owner(ctx context.Context, label string) (addr string, ok bool)
	// Sign marks out as relayed by a replica, for a client at clientIP.
	Sign(out *http.Request, clientIP string)
	// Verify reports whether in was relayed by a replica and for which
	// client; a mark that does not verify is an error.
	Verify(in *http.Request) (clientIP string, relayed bool, err error)
}

// ReplicaHeaderPrefix starts the headers one replica marks a relayed
// request with. Apps never see them, and a client that sends them is
// refused unless they verify.
const ReplicaHeaderPrefix = "X-Glenv-Replica-"

// relayKey carries the owner's address to the relay's Rewrite.
type relayKey struct{}

func (p *Proxy) newRelay() *httputil.ReverseProxy {
	transport := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       60 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
	}
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = pr.In.Context().Value(relayKey{}).(string)
			pr.Out.Host = pr.In.Host
			dropReplicaHeaders(pr.Out.Header)
			ip, _, err := net.SplitHostPort(pr.In.RemoteAddr)
			if err != nil {
				ip = pr.In.RemoteAddr
			}
			p.opts.Replicas.Sign(pr.Out, ip)
		},
		Transport:  transport,
		BufferPool: bufferPool{},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, context.Canceled) {
				return
			}
			p.opts.Logger.Warn("replica running the environment did not answer", "host", r.Host, "err", err)
			page(w, http.StatusBadGateway, "The glenv replica running this environment is not answering",
				"<p>"+html.EscapeString(err.Error())+"</p><p>If it stopped, another replica deploys the environment again within <code>--replica-dead-after</code>; try again in a moment.</p>")
		},
	}
}

// relay hands r to the replica at addr, which runs the environment.
func (p *Proxy) relay(w http.ResponseWriter, r *http.Request, addr string) {
	p.relayOnce.Do(func() { p.relayRP = p.newRelay() })
	p.relayRP.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), relayKey{}, addr)))
}

// relayed verifies a request another replica relayed here; it answers
// (and returns false) when the mark does not verify.
func (p *Proxy) relayed(w http.ResponseWriter, r *http.Request) (bool, bool) {
	if p.opts.Replicas == nil {
		return false, true
	}
	ip, ok, err := p.opts.Replicas.Verify(r)
	if err != nil {
		page(w, http.StatusForbidden, "Relayed request refused",
			"<p>"+html.EscapeString(err.Error())+"</p><p>glenv replicas must share one <code>--secret-key-file</code> and keep their clocks in sync.</p>")
		return false, false
	}
	if !ok {
		return false, true
	}
	// The client is the one the relaying replica saw: apps get its
	// address in X-Forwarded-For, not the replica's.
	r.RemoteAddr = net.JoinHostPort(ip, "0")
	dropReplicaHeaders(r.Header)
	return true, true
}

func dropReplicaHeaders(h http.Header) {
	for k := range h {
		if strings.HasPrefix(k, ReplicaHeaderPrefix) {
			delete(h, k)
		}
	}
}
