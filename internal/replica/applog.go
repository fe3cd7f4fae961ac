package replica

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/glenv/glenv/internal/proxy"
	"github.com/glenv/glenv/internal/store"
)

// AppLogs relays the requests that read an environment's app output to the
// replica that runs it: that output is a file on the owner's disk
// (runtime.AppLog), while everything else those routes read is in the
// database. The owner checks the request's credentials itself (API token
// or session, both in the shared database), so a relay grants nothing the
// client did not have. Requests for anything else go to Next untouched.
type AppLogs struct {
	Relays *Relays
	Next   http.Handler

	once sync.Once
	rp   *httputil.ReverseProxy
}

// appLogEnvironment is the decision: the environment whose app output a
// request reads, for the routes that read it (internal/api and internal/web
// register them): GET /api/v1/environments/{id}/logs (environment:logs,
// --follow too) and GET /events/applog/{id} (the dashboard's live output).
func appLogEnvironment(method, path string) (int64, bool) {
	if method != http.MethodGet && method != http.MethodHead {
		return 0, false
	}
	var id string
	switch {
	case strings.HasPrefix(path, "/api/v1/environments/") && strings.HasSuffix(path, "/logs"):
		id = strings.TrimSuffix(strings.TrimPrefix(path, "/api/v1/environments/"), "/logs")
	case strings.HasPrefix(path, "/events/applog/"):
		id = strings.TrimPrefix(path, "/events/applog/")
	default:
		return 0, false
	}
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil || n <= 0 || strconv.FormatInt(n, 10) != id {
		return 0, false // not an id: the route's own handler says why
	}
	return n, true
}

func (a *AppLogs) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id, ok := appLogEnvironment(r.Method, r.URL.Path)
	if !ok {
		a.Next.ServeHTTP(w, r)
		return
	}
	clientIP, relayed, err := a.Relays.Verify(r)
	if err != nil {
		http.Error(w, "relayed request refused: "+err.Error()+" (glenv replicas must share one --secret-key-file and keep their clocks in sync)", http.StatusForbidden)
		return
	}
	if relayed {
		// Never relayed twice: an owner that lost the environment meanwhile
		// answers what it has (nothing), and the client's next page or
		// reconnect finds the new owner.
		r.RemoteAddr = net.JoinHostPort(clientIP, "0")
		dropRelayHeaders(r.Header)
		a.Next.ServeHTTP(w, r)
		return
	}
	dropRelayHeaders(r.Header)
	addr, ok := a.Relays.OwnerOf(r.Context(), id)
	if !ok {
		a.Next.ServeHTTP(w, r)
		return
	}
	a.once.Do(func() { a.rp = a.newRelay() })
	a.rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ownerKey{}, addr)))
}

// ownerKey carries the owner's address to the relay's Rewrite.
type ownerKey struct{}

func (a *AppLogs) newRelay() *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = pr.In.Context().Value(ownerKey{}).(string)
			pr.Out.Host = pr.In.Host
			ip, _, err := net.SplitHostPort(pr.In.RemoteAddr)
			if err != nil {
				ip = pr.In.RemoteAddr
			}
			a.Relays.Sign(pr.Out, ip)
		},
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 16,
			IdleConnTimeout:     60 * time.Second,
		},
		// Followed logs and the dashboard's event stream reach the client
		// as the owner writes them.
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, context.Canceled) {
				return
			}
			a.Relays.R.opts.Logger.Warn("replica running the environment did not answer a log request", "path", r.URL.Path, "err", err)
			http.Error(w, "the glenv replica running this environment did not answer ("+err.Error()+"); if it stopped, another replica "+
				"deploys the environment again within --replica-dead-after: try again in a moment", http.StatusBadGateway)
		},
	}
}

func dropRelayHeaders(h http.Header) {
	for k := range h {
		if strings.HasPrefix(k, proxy.ReplicaHeaderPrefix) {
			delete(h, k)
		}
	}
}

// OwnerOf is the address of the live replica, other than this one, that
// runs environment id.
func (f *Relays) OwnerOf(ctx context.Context, id int64) (string, bool) {
	owner, err := store.EnvironmentOwner(ctx, f.R.st.Reader(), id)
	if err != nil || owner == 0 || owner == f.R.ID() {
		return "", false
	}
	r, ok := f.R.Live(owner)
	if !ok {
		return "", false
	}
	return r.Address, true
}
