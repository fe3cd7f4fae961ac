package replica

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/glenv/glenv/internal/proxy"
	"github.com/glenv/glenv/internal/secret"
	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/store/storetest"
)

// backends serves one host from one address.
type backends map[string]string

func (b backends) Acquire(host string) (string, func(), bool) {
	addr, ok := b[host]
	return addr, func() {}, ok
}

// TestRelaysBetweenReplicas runs two replicas' proxies on one database:
// replica A runs nothing, replica B runs environment x's app, which echoes
// the headers it got. Requests for x that reach A are relayed to B; the
// attacks (a client posing as a replica to skip a private environment's
// gate, a replica with another secret key, a replayed old relay) fail.
func TestRelaysBetweenReplicas(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		key := make([]byte, 32)
		box, err := secret.NewBox(key)
		if err != nil {
			t.Fatal(err)
		}
		app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			for k, v := range r.Header {
				fmt.Fprintf(w, "%s: %s\n", k, strings.Join(v, ","))
			}
			fmt.Fprintln(w, "app of x")
		}))
		defer app.Close()

		lb, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		opts := Options{Heartbeat: time.Second, DeadAfter: 10 * time.Second}
		opts.Address = lb.Addr().String()
		b, err := Register(ctx, s, opts)
		if err != nil {
			t.Fatal(err)
		}
		opts.Address = "127.0.0.1:1" // A is never relayed to
		a, err := Register(ctx, s, opts)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.refresh(ctx); err != nil { // A learns that B is live
			t.Fatal(err)
		}
		in := &store.Integration{Name: "app", Type: "gitlab", BaseURL: "https://gitlab.example.com", ProjectID: 42,
			ProjectPath: "group/app", DefaultBranch: "main", TokenSealed: "v1:x", WebhookSecretSealed: "v1:y", Space: "root"}
		if err := store.CreateIntegration(ctx, s.DB, in); err != nil {
			t.Fatal(err)
		}
		env := &store.Environment{IntegrationID: in.ID, IntegrationName: "app", ProjectID: 42, Name: "x", Slug: "x",
			Host: "x--app", Kind: "branch", State: store.StateActive}
		if err := store.SaveEnvironment(ctx, s.DB, env); err != nil {
			t.Fatal(err)
		}
		if err := store.SetEnvironmentOwner(ctx, s.DB, env.ID, b.ID()); err != nil {
			t.Fatal(err)
		}

		// B's gate refuses everyone: x is private, and only a request A
		// relayed (after A's own gate let it through) passes B.
		gate := func(pass bool) func(w http.ResponseWriter, r *http.Request, label string) (*http.Request, bool) {
			return func(w http.ResponseWriter, r *http.Request, label string) (*http.Request, bool) {
				if !pass {
					http.Error(w, "sign in first", http.StatusUnauthorized)
				}
				return r, pass
			}
		}
		appAddr := strings.TrimPrefix(app.URL, "http://")
		proxyB := proxy.New(proxy.Options{EnvDomain: "localhost", Backends: backends{"x--app": appAddr},
			Gate: gate(false), Replicas: &Relays{R: b, Box: box}})
		srvB := &http.Server{Handler: proxyB}
		go srvB.Serve(lb)
		defer srvB.Close()
		proxyA := httptest.NewServer(proxy.New(proxy.Options{EnvDomain: "localhost", Backends: backends{},
			Gate: gate(true), Replicas: &Relays{R: a, Box: box}}))
		defer proxyA.Close()

		get := func(url string, header map[string]string) (int, string) {
			t.Helper()
			req, _ := http.NewRequest(http.MethodGet, url+"/page?q=1", nil)
			req.Host = "x--app.localhost"
			for k, v := range header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(body)
		}

		t.Run("a request for an environment another replica runs is relayed to it and reaches the app as the client's", func(t *testing.T) {
			code, body := get(proxyA.URL, nil)
			if code != 200 || !strings.Contains(body, "app of x") {
				t.Fatalf("through A: %d %s", code, body)
			}
			if !strings.Contains(body, "X-Forwarded-For: 127.0.0.1") || !strings.Contains(body, "X-Forwarded-Host: x--app.localhost") {
				t.Errorf("the app does not see the client's forwarding headers:\n%s", body)
			}
			if strings.Contains(strings.ToLower(body), "x-glenv-replica") {
				t.Errorf("the relay's headers reached the app:\n%s", body)
			}
		})
		t.Run("a client posing as a replica with a made-up signature is refused and never reaches the app", func(t *testing.T) {
			code, body := get("http://"+lb.Addr().String(), map[string]string{"X-Glenv-Replica-Signature": "forged",
				"X-Glenv-Replica-Client": "10.0.0.1", "X-Glenv-Replica-At": fmt.Sprint(time.Now().Unix())})
			if code != http.StatusForbidden || strings.Contains(body, "app of x") {
				t.Fatalf("forged relay: %d %s", code, body)
			}
		})
		t.Run("a replica with another secret key cannot relay", func(t *testing.T) {
			other, _ := secret.NewBox(append(make([]byte, 31), 1))
			req := httptest.NewRequest(http.MethodGet, "http://x--app.localhost/page?q=1", nil)
			(&Relays{R: a, Box: other}).Sign(req, "10.0.0.1")
			h := map[string]string{}
			for k := range req.Header {
				h[k] = req.Header.Get(k)
			}
			if code, body := get("http://"+lb.Addr().String(), h); code != http.StatusForbidden {
				t.Fatalf("relay signed with another key: %d %s", code, body)
			}
		})
		t.Run("a signature for one request does not pass another path", func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "http://x--app.localhost/other", nil)
			(&Relays{R: a, Box: box}).Sign(req, "10.0.0.1")
			h := map[string]string{}
			for k := range req.Header {
				h[k] = req.Header.Get(k)
			}
			if code, body := get("http://"+lb.Addr().String(), h); code != http.StatusForbidden {
				t.Fatalf("relay signed for /other used for /page: %d %s", code, body)
			}
		})
		t.Run("a client at B directly meets B's gate", func(t *testing.T) {
			if code, _ := get("http://"+lb.Addr().String(), nil); code != http.StatusUnauthorized {
				t.Fatalf("direct to B: %d, want the gate's 401", code)
			}
		})
	})
}

func TestVerify(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	tests := []struct {
		name      string
		want, got string
		at        time.Time
		ok        bool
	}{
		{name: "a matching signature made now verifies", want: "s", got: "s", at: now, ok: true},
		{name: "a signature that does not match is refused", want: "s", got: "t", at: now},
		{name: "a relay older than the window is refused (no replays)", want: "s", got: "s", at: now.Add(-31 * time.Second)},
		{name: "a relay from too far ahead is refused", want: "s", got: "s", at: now.Add(31 * time.Second)},
		{name: "clocks a few seconds apart are fine", want: "s", got: "s", at: now.Add(-5 * time.Second), ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := verify(tt.want, tt.got, fmt.Sprint(tt.at.Unix()), now)
			if (err == nil) != tt.ok {
				t.Fatalf("verify = %v, want ok %v", err, tt.ok)
			}
		})
	}
}
