package replica

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/glenv/glenv/internal/secret"
	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/store/storetest"
)

func TestAppLogEnvironment(t *testing.T) {
	tests := []struct {
		name, method, path string
		id                 int64
	}{
		{name: "environment:logs reads environment 7's app output", method: "GET", path: "/api/v1/environments/7/logs", id: 7},
		{name: "the dashboard's live app output reads environment 12's", method: "GET", path: "/events/applog/12", id: 12},
		{name: "the deploy log is in the database: not relayed", method: "GET", path: "/api/v1/activities/7/log"},
		{name: "the environment itself is in the database: not relayed", method: "GET", path: "/api/v1/environments/7"},
		{name: "a write is never relayed", method: "POST", path: "/api/v1/environments/7/logs"},
		{name: "a non-number id is left to the route's own error", method: "GET", path: "/events/applog/x"},
		{name: "a zero id is left to the route's own error", method: "GET", path: "/events/applog/0"},
		{name: "a padded id is left to the route's own error", method: "GET", path: "/events/applog/007"},
		{name: "a nested path is not the logs route", method: "GET", path: "/api/v1/environments/7/x/logs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, ok := appLogEnvironment(tt.method, tt.path)
			if id != tt.id || ok != (tt.id != 0) {
				t.Fatalf("appLogEnvironment(%s %s) = %d, %v; want %d", tt.method, tt.path, id, ok, tt.id)
			}
		})
	}
}

// TestAppLogsAreReadFromTheOwner runs two replicas' AppLogs on one
// database: B runs environment x and has its output on its disk, A has
// none. A request for x's output at A is answered by B, with the client's
// credentials for B to check; the dashboard's stream arrives as B writes
// it; a client posing as a replica at B is refused.
func TestAppLogsAreReadFromTheOwner(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		box, err := secret.NewBox(make([]byte, 32))
		if err != nil {
			t.Fatal(err)
		}
		lb, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		opts := Options{Heartbeat: time.Second, DeadAfter: 10 * time.Second, Address: lb.Addr().String()}
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
		mine := &store.Environment{IntegrationID: in.ID, IntegrationName: "app", ProjectID: 42, Name: "mine", Slug: "mine",
			Host: "mine--app", Kind: "branch", State: store.StateActive}
		x := &store.Environment{IntegrationID: in.ID, IntegrationName: "app", ProjectID: 42, Name: "x", Slug: "x",
			Host: "x--app", Kind: "branch", State: store.StateActive}
		for _, e := range []*store.Environment{mine, x} {
			if err := store.SaveEnvironment(ctx, s.DB, e); err != nil {
				t.Fatal(err)
			}
		}
		if err := store.SetEnvironmentOwner(ctx, s.DB, x.ID, b.ID()); err != nil {
			t.Fatal(err)
		}
		if err := store.SetEnvironmentOwner(ctx, s.DB, mine.ID, a.ID()); err != nil {
			t.Fatal(err)
		}

		// Each replica's routes answer with what is on its own disk, and
		// say whose credentials and client they saw.
		second := make(chan struct{})
		routes := func(name string) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.HasPrefix(r.URL.Path, "/events/applog/") {
					w.Header().Set("Content-Type", "text/event-stream")
					fmt.Fprintf(w, "data: %s line 1\n\n", name)
					w.(http.Flusher).Flush()
					select { // the second line comes only once the first was seen
					case <-second:
					case <-r.Context().Done():
						return
					case <-time.After(10 * time.Second):
					}
					fmt.Fprintf(w, "data: %s line 2\n\n", name)
					return
				}
				fmt.Fprintf(w, "%s output of %s; auth %q; client %s; relay headers %v", name, r.URL.RequestURI(),
					r.Header.Get("Authorization"), r.RemoteAddr, hasRelayHeaders(r.Header))
			})
		}
		srvB := &http.Server{Handler: &AppLogs{Relays: &Relays{R: b, Box: box}, Next: routes("B")}}
		go srvB.Serve(lb)
		defer srvB.Close()
		srvA := httptest.NewServer(&AppLogs{Relays: &Relays{R: a, Box: box}, Next: routes("A")})
		defer srvA.Close()

		get := func(url string, header map[string]string) (int, string) {
			t.Helper()
			req, _ := http.NewRequest(http.MethodGet, url, nil)
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
		logsOf := func(id int64) string { return fmt.Sprintf("/api/v1/environments/%d/logs?offset=5", id) }

		t.Run("environment:logs at a replica that does not run the environment is answered by its owner, which checks the client's token", func(t *testing.T) {
			code, body := get(srvA.URL+logsOf(x.ID), map[string]string{"Authorization": "Bearer t0ken"})
			want := fmt.Sprintf("B output of %s; auth %q; client 127.0.0.1:0; relay headers false", logsOf(x.ID), "Bearer t0ken")
			if code != 200 || body != want {
				t.Fatalf("through A: %d %q, want %q", code, body, want)
			}
		})
		t.Run("an environment this replica runs is read from its own disk", func(t *testing.T) {
			if code, body := get(srvA.URL+logsOf(mine.ID), nil); code != 200 || !strings.HasPrefix(body, "A output") {
				t.Fatalf("own environment: %d %q", code, body)
			}
		})
		t.Run("other routes are never relayed", func(t *testing.T) {
			if code, body := get(fmt.Sprintf("%s/api/v1/environments/%d", srvA.URL, x.ID), nil); code != 200 || !strings.HasPrefix(body, "A output") {
				t.Fatalf("environment get: %d %q", code, body)
			}
		})
		t.Run("the dashboard's live output streams from the owner as it writes it", func(t *testing.T) {
			resp, err := http.Get(fmt.Sprintf("%s/events/applog/%d?from=0", srvA.URL, x.ID))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			lines := make(chan string, 8)
			go func() {
				sc := bufio.NewScanner(resp.Body)
				for sc.Scan() {
					if sc.Text() != "" {
						lines <- sc.Text()
					}
				}
				close(lines)
			}()
			next := func() string {
				select {
				case l := <-lines:
					return l
				case <-time.After(10 * time.Second):
					return "(nothing within 10s)"
				}
			}
			if l := next(); l != "data: B line 1" {
				t.Fatalf("first event %q, want B's first line before B ends the stream", l)
			}
			close(second)
			if l := next(); l != "data: B line 2" {
				t.Fatalf("second event %q", l)
			}
		})
		t.Run("a client posing as a replica at the owner is refused", func(t *testing.T) {
			code, body := get("http://"+lb.Addr().String()+logsOf(x.ID), map[string]string{"X-Glenv-Replica-Signature": "forged",
				"X-Glenv-Replica-Client": "10.0.0.1", "X-Glenv-Replica-At": fmt.Sprint(time.Now().Unix())})
			if code != http.StatusForbidden || strings.Contains(body, "output") {
				t.Fatalf("forged relay: %d %q", code, body)
			}
		})
		t.Run("a relay signed for one environment's logs does not read another's", func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "http://"+lb.Addr().String()+logsOf(mine.ID), nil)
			(&Relays{R: a, Box: box}).Sign(req, "10.0.0.1")
			h := map[string]string{}
			for k := range req.Header {
				h[k] = req.Header.Get(k)
			}
			if code, body := get("http://"+lb.Addr().String()+logsOf(x.ID), h); code != http.StatusForbidden {
				t.Fatalf("relay signed for %d used for %d: %d %q", mine.ID, x.ID, code, body)
			}
		})
	})
}

func hasRelayHeaders(h http.Header) bool {
	for k := range h {
		if strings.HasPrefix(k, "X-Glenv-Replica-") {
			return true
		}
	}
	return false
}
