package proxy

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"
)

// serverTimeouts are internal/server's settings for glenv's http.Server.
func serverTimeouts(s *http.Server) {
	s.ReadHeaderTimeout, s.IdleTimeout, s.MaxHeaderBytes = 10*time.Second, 2*time.Minute, 64<<10
}

// startFront serves p behind a Front, with internal/server's timeouts
// (then tune, when given), and returns its address.
func startFront(t *testing.T, p *Proxy, tune func(*http.Server)) string {
	t.Helper()
	srv := &http.Server{Handler: p}
	serverTimeouts(srv)
	if tune != nil {
		tune(srv)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := NewFront(p, srv)
	done := make(chan error, 1)
	go func() { done <- f.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := f.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		select {
		case err := <-done:
			if err != http.ErrServerClosed {
				t.Errorf("Serve returned %v, want http.ErrServerClosed", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return after Shutdown")
		}
	})
	return l.Addr().String()
}
