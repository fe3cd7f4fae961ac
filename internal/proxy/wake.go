package proxy

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/glenv/glenv/internal/store"
)

// waking is the set of environment hosts woken by a visit and not serving
// yet: their visitors get the waking page (refresh every second) rather
// than the slower building page. An entry goes when the host serves or is
// found in another state, so the set holds at most the environments
// waking now.
type waking struct {
	n     atomic.Int64 // len(hosts), read without the lock on every request
	mu    sync.Mutex
	hosts map[string]bool
}

func (k *waking) add(host string) {
	k.mu.Lock()
	if k.hosts == nil {
		k.hosts = map[string]bool{}
	}
	k.hosts[host] = true
	k.n.Store(int64(len(k.hosts)))
	k.mu.Unlock()
}

func (k *waking) has(host string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.hosts[host]
}

func (k *waking) done(host string) {
	if k.n.Load() == 0 {
		return
	}
	k.mu.Lock()
	delete(k.hosts, host)
	k.n.Store(int64(len(k.hosts)))
	k.mu.Unlock()
}

// wakePoll is how often a waiting request looks for the woken app's
// process: a map read in the runtime, cheap enough to do every 2 ms, and
// each millisecond of it is added to the wake (issue 17: wake → first 200
// within the app's own start + 200 ms).
const wakePoll = 2 * time.Millisecond

// wake answers for an environment that is paused, or waking after a
// visit: a visit (not a bot's) to a paused one wakes it; browsers get a
// small page that refreshes every second until the app serves, other
// clients wait up to WakeWait for it and are then served, or answered 503
// with Retry-After. It reports whether it answered.
func (p *Proxy) wake(w http.ResponseWriter, r *http.Request, label string, env store.Environment, counts bool) bool {
	switch {
	case env.State == store.StatePaused && counts && p.opts.Wake != nil:
		if _, err := p.opts.Wake(r.Context(), env.ID); err != nil {
			p.opts.Logger.Warn("wake environment", "integration", env.IntegrationName, "environment", env.Name, "err", err)
			page(w, http.StatusServiceUnavailable, "glenv could not wake this environment",
				"<p>Try again in a moment, or resume it with <code>glenv environment:resume</code>.</p>")
			return true
		}
		p.waking.add(label)
	case (env.State == store.StateBuilding || env.State == store.StateDeploying) && p.waking.has(label):
	default:
		p.waking.done(label)
		return false
	}
	if acceptsHTML(r) {
		wakingPage(w, env)
		return true
	}
	ctx, cancel := context.WithTimeout(r.Context(), p.opts.WakeWait)
	defer cancel()
	t := time.NewTicker(wakePoll)
	defer t.Stop()
	for {
		if addr, release, ok := p.opts.Backends.Acquire(label); ok {
			p.serve(w, r, label, addr, release, counts)
			return true
		}
		select {
		case <-ctx.Done():
			if r.Context().Err() != nil {
				return true // the client went away
			}
			w.Header().Set("Retry-After", "5")
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "environment %s is waking up (it was paused while idle); retry in a few seconds\n", env.Name)
			return true
		case <-t.C:
		}
	}
}

// wakingPage is what a browser sees while a paused environment starts: it
// reloads every second and then shows the app.
func wakingPage(w http.ResponseWriter, env store.Environment) {
	w.Header().Set("Retry-After", "1")
	name := html.EscapeString(env.Name)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusServiceUnavailable)
	fmt.Fprintf(w, "<!doctype html><meta charset=utf-8><meta http-equiv=refresh content=1><title>Waking up %[1]s</title>"+
		"<h1>Waking up %[1]s</h1><p>This environment was paused while nobody used it. It is starting again; this page reloads until it is ready.</p><p><small>glenv</small></p>\n", name)
}
