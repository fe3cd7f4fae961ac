package server

import (
	"errors"
	"fmt"
	"html"
	"net"
	"net/http"
	"strings"

	"github.com/glenv/glenv/internal/store"
)

// routeByHost sends requests for <label>.<env-domain> to the environment
// and everything else to the control-plane mux.
func (s *Server) routeByHost(next http.Handler) http.Handler {
	suffix := "." + strings.ToLower(s.cfg.EnvDomain)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := strings.ToLower(r.Host)
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if !strings.HasSuffix(host, suffix) || strings.Contains(strings.TrimSuffix(host, suffix), ".") {
			next.ServeHTTP(w, r)
			return
		}
		s.environmentPage(w, r, strings.TrimSuffix(host, suffix))
	})
}

// environmentPage answers for an environment host. Until the process runtime
// serves apps, it says what state the environment is in and how to change it.
func (s *Server) environmentPage(w http.ResponseWriter, r *http.Request, label string) {
	env, err := store.GetEnvironmentByHost(r.Context(), s.store.Reader(), label)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if errors.Is(err, store.ErrNotFound) {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, "<!doctype html><title>No such environment</title><h1>No environment at %s</h1><p>List environments with <code>glenv environment:list</code>.</p>", html.EscapeString(r.Host))
		return
	}
	if err != nil {
		http.Error(w, "glenv cannot read its database", http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusServiceUnavailable)
	fmt.Fprintf(w, "<!doctype html><title>%[1]s</title><h1>Environment %[1]s is %[2]s</h1><p>Integration %[3]s, ref %[4]s, head %[5]s.</p>%[6]s",
		html.EscapeString(env.Name), html.EscapeString(env.State), html.EscapeString(env.IntegrationName),
		html.EscapeString(env.Ref), html.EscapeString(short(env.HeadSHA)), hint(env))
}

func hint(env store.Environment) string {
	if env.State == store.StateInactive {
		return fmt.Sprintf("<p>Activate it with <code>glenv environment:activate %s --integration %s</code>.</p>", html.EscapeString(env.Name), html.EscapeString(env.IntegrationName))
	}
	return "<p>No app is being served for it yet.</p>"
}

func short(sha string) string {
	if len(sha) > 8 {
		return sha[:8]
	}
	return sha
}
