// Package proxy routes requests for <host-label>.<env-domain> to the
// environment's current process (WebSockets and streaming included) and
// answers for environments that run nothing with a page that says why and
// what to do. Everything else goes to the control plane. It holds no state
// of its own: the runtime says which process serves a host, the store what
// state an environment is in. Its Front (front.go) serves glenv's listener
// ahead of net/http and forwards plain requests for environments itself.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"html"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"time"

	"github.com/glenv/glenv/internal/gitsha"
	"github.com/glenv/glenv/internal/store"
)

// Backends say which process serves an environment host label right now.
// release must be called when the request is done: a redeploy stops the
// old process only after its requests finished.
type Backends interface {
	Acquire(host string) (addr string, release func(), ok bool)
}

// Options configure a Proxy.
type Options struct {
	// EnvDomain is the domain environments are served under (localhost).
	EnvDomain string
	Backends  Backends
	// Lookup finds the environment of a host label (store.ErrNotFound
	// when none); it is asked only when no process serves the host.
	Lookup func(ctx context.Context, host string) (store.Environment, error)
	// Next serves every request that is not for an environment.
	Next   http.Handler
	Logger *slog.Logger
	// Gate, when set, sees every environment request first (private
	// previews, internal/auth): it returns the request to serve, or false
	// when it answered itself.
	Gate func(w http.ResponseWriter, r *http.Request, label string) (*http.Request, bool)
	// GateOpen reports that Gate lets every request for label through
	// as it is when it carries no glenv cookie or ticket (the environment
	// is public). The Front forwards requests itself only then, and hands
	// the others to net/http and Gate; with a Gate and no GateOpen it
	// forwards none.
	GateOpen func(ctx context.Context, label string) bool
	// PublicScheme is the scheme people reach glenv by ("https" when
	// --public-url is https, even where TLS ends in front of glenv); apps
	// see it as X-Forwarded-Proto. Default "http".
	PublicScheme string
	// Visits records requests that count as someone using an environment
	// (not bots' nor health checks'), for idle pause; nil records nothing.
	Visits interface{ Seen(host string) }
	// Wake starts a paused environment again for a visit (the environments
	// service's Wake); nil leaves paused environments paused.
	Wake func(ctx context.Context, envID int64) (bool, error)
	// WakeWait bounds how long a request that accepts no HTML waits for a
	// waking environment before a 503 with Retry-After (default 30s).
	WakeWait time.Duration
	// DisableLeanPath sends every request through httputil.ReverseProxy,
	// for bench/proxy to compare the two paths.
	DisableLeanPath bool
	// Replicas relays requests for environments another glenv replica
	// runs to it; nil with one replica.
	Replicas Replicas
}

// Proxy is an http.Handler.
type Proxy struct {
	opts          Options
	suffix        string
	scheme        string
	rp            *httputil.ReverseProxy
	up            upstreams // the lean path's connections
	waking        waking
	onLean        func()          // tests: called for each request on the lean path
	onFront       func()          // tests: called for each request the Front forwards itself
	onAnswer      func(lean bool) // tests: called for each answer head read on the lean path, lean when the lean parser read it
	onWatch       func()          // tests: called when the Front starts watching a client whose app is slow to answer
	noLeanAnswers bool            // tests: every answer head is http.ReadResponse's

	relayOnce sync.Once
	relayRP   *httputil.ReverseProxy // to other replicas (Options.Replicas)
}

type addrKey struct{}

type bodyKey struct{}

// New returns the handler.
func New(opts Options) *Proxy {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.WakeWait <= 0 {
		opts.WakeWait = 30 * time.Second
	}
	if opts.Next == nil {
		opts.Next = http.NotFoundHandler()
	}
	p := &Proxy{opts: opts, suffix: "." + strings.ToLower(strings.TrimSuffix(opts.EnvDomain, ".")), scheme: "http"}
	if opts.PublicScheme == "https" {
		p.scheme = "https"
	}
	transport := &http.Transport{
		DialContext:           dialNoDelay,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       60 * time.Second,
		ResponseHeaderTimeout: 0, // long polls and slow apps are the app's business
		ExpectContinueTimeout: time.Second,
		// Pass the client's Accept-Encoding through instead of asking for
		// gzip and unpacking it here.
		DisableCompression: true,
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = pr.In.Context().Value(addrKey{}).(string)
			pr.Out.Host = pr.In.Host // apps see the environment's host name
			forwarded(pr, p.scheme)
		},
		Transport:  transport,
		BufferPool: bufferPool{},
		// Server-sent events and other unsized bodies are flushed as they
		// come (ReverseProxy does this for ContentLength -1); sized ones
		// are buffered normally.
		FlushInterval: 0,
		ErrorLog:      slog.NewLogLogger(opts.Logger.Handler(), slog.LevelDebug),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			cb, _ := r.Context().Value(bodyKey{}).(*clientBody)
			p.proxyError(w, r.Host, err, cb)
		},
	}
	return p
}

// proxyError answers a request the app could not be asked, or did not
// answer: the client's fault (a bad body) is a 400, the app's a 502.
func (p *Proxy) proxyError(w http.ResponseWriter, host string, err error, cb *clientBody) {
	if cb != nil && cb.failed() != nil {
		// The client's body was bad (malformed chunks, cut short): the
		// client's fault, not the app's. Checked first: a body cut short
		// also cancels the request, and a client that stopped sending may
		// still be reading.
		page(w, http.StatusBadRequest, "Bad request body",
			"<p>glenv could not read the request body ("+html.EscapeString(cb.failed().Error())+"); the app was not given it. Send a well-formed body.</p>")
		return
	}
	if errors.Is(err, context.Canceled) {
		return // the client went away
	}
	p.opts.Logger.Warn("environment app did not answer", "host", host, "err", err)
	page(w, http.StatusBadGateway, "The app is not answering",
		"<p>glenv could not reach the environment's app ("+html.EscapeString(err.Error())+").</p>"+
			"<p>See its output with <code>glenv environment:logs</code>, or redeploy it with <code>glenv environment:redeploy</code>.</p>")
}

// Label returns the environment host label of a Host header value, or
// false when the host is not <label>.<env-domain>.
func (p *Proxy) Label(host string) (string, bool) {
	host = strings.ToLower(host)
	// Without a colon SplitHostPort can only fail, allocating its error:
	// not for every request.
	if strings.IndexByte(host, ':') >= 0 {
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
	}
	host = strings.TrimSuffix(host, ".")
	label, ok := strings.CutSuffix(host, p.suffix)
	if !ok || label == "" || strings.Contains(label, ".") {
		return "", false
	}
	return label, true
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	label, ok := p.Label(r.Host)
	if !ok {
		p.opts.Next.ServeHTTP(w, r)
		return
	}
	// A request another replica relayed here passed its gate there (which
	// may have taken glenv's own cookies off it) and is never relayed again.
	relayed, ok := p.relayed(w, r)
	if !ok {
		return
	}
	if p.opts.Gate != nil && !relayed {
		if r, ok = p.opts.Gate(w, r, label); !ok {
			return
		}
	}
	// After the gate: a visitor it refuses neither counts nor wakes.
	counts := countsAsVisit(r)
	if addr, release, ok := p.opts.Backends.Acquire(label); ok {
		p.serve(w, r, label, addr, release, counts)
		return
	}
	if p.opts.Replicas != nil && !relayed {
		if addr, ok := p.opts.Replicas.Owner(r.Context(), label); ok {
			p.relay(w, r, addr)
			return
		}
	}
	p.statusPage(w, r, label, counts)
}

// serve forwards r to the environment's process at addr.
func (p *Proxy) serve(w http.ResponseWriter, r *http.Request, label, addr string, release func(), counts bool) {
	defer release()
	p.waking.done(label)
	if counts && p.opts.Visits != nil {
		p.opts.Visits.Seen(label)
	}
	if !p.opts.DisableLeanPath && lean(r) {
		p.serveLean(w, r, addr)
		return
	}
	ctx := context.WithValue(r.Context(), addrKey{}, addr)
	if r.Body != nil && r.Body != http.NoBody {
		// The error handler sees ReverseProxy's copy of the request, so
		// the body's fate travels in the context.
		cb := &clientBody{ReadCloser: r.Body}
		ctx = context.WithValue(ctx, bodyKey{}, cb)
		r = r.WithContext(ctx)
		r.Body = cb
	} else {
		r = r.WithContext(ctx)
	}
	p.rp.ServeHTTP(w, r)
}

// statusPage answers for a host no process serves; a visit to a paused
// environment wakes it.
func (p *Proxy) statusPage(w http.ResponseWriter, r *http.Request, label string, counts bool) {
	if p.opts.Lookup == nil {
		p.notFound(w, r)
		return
	}
	env, err := p.opts.Lookup(r.Context(), label)
	if errors.Is(err, store.ErrNotFound) || err == nil && !env.DeletedAt.IsZero() {
		p.notFound(w, r)
		return
	}
	if err != nil {
		page(w, http.StatusServiceUnavailable, "glenv cannot read its database", "<p>Try again in a moment.</p>")
		return
	}
	if counts && p.opts.Visits != nil {
		p.opts.Visits.Seen(label)
	}
	if p.wake(w, r, label, env, counts) {
		return
	}
	name, integ := html.EscapeString(env.Name), html.EscapeString(env.IntegrationName)
	title := fmt.Sprintf("Environment %s is %s", name, html.EscapeString(env.State))
	facts := fmt.Sprintf("<p>Integration <code>%s</code>, ref <code>%s</code>, head <code>%s</code>.</p>",
		integ, html.EscapeString(env.Ref), html.EscapeString(gitsha.Short(env.HeadSHA)))
	var what string
	switch env.State {
	case store.StateInactive:
		what = fmt.Sprintf("<p>It runs nothing until it is activated: <code>glenv environment:activate %s --integration %s</code>.</p>", name, integ)
	case store.StateBuilding, store.StateDeploying:
		w.Header().Set("Retry-After", "5")
		w.Header().Set("Refresh", "5")
		what = fmt.Sprintf("<p>It is being built and started; this page reloads until it serves. Follow it with <code>glenv environment:logs %s --integration %s</code>.</p>", name, integ)
	case store.StateFailed:
		what = fmt.Sprintf("<p>Its last deploy failed. Read why with <code>glenv environment:logs %s --integration %s</code>, fix it and push, or retry with <code>glenv environment:redeploy %s --integration %s</code>.</p>", name, integ, name, integ)
	case store.StatePaused:
		what = fmt.Sprintf("<p>It was paused because nobody used it; a visit in a browser wakes it, or resume it with <code>glenv environment:resume %s --integration %s</code>.</p>", name, integ)
	case store.StateStopping:
		what = "<p>It is being stopped.</p>"
	default:
		what = fmt.Sprintf("<p>Its app is not running (glenv may be restarting it). If this lasts, redeploy it with <code>glenv environment:redeploy %s --integration %s</code>.</p>", name, integ)
	}
	page(w, http.StatusServiceUnavailable, title, facts+what)
}

func (p *Proxy) notFound(w http.ResponseWriter, r *http.Request) {
	page(w, http.StatusNotFound, "No such environment",
		"<p>No environment is at <code>"+html.EscapeString(r.Host)+"</code>. List environments and their URLs with <code>glenv environment:list</code>.</p>")
}

func page(w http.ResponseWriter, status int, title, body string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<!doctype html><meta charset=utf-8><title>%[1]s</title><h1>%[1]s</h1>%[2]s<p><small>glenv</small></p>\n", title, body)
}

// bufferPool reuses the 32 KB copy buffers ReverseProxy would otherwise
// allocate for every response.
type bufferPool struct{}

var buffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufferPool) Get() []byte  { return *buffers.Get().(*[]byte) }
func (bufferPool) Put(b []byte) { buffers.Put(&b) }
