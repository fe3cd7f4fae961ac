package proxy

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/glenv/glenv/internal/store"
)

// wakeWorld is a proxy in front of one paused environment whose app never
// comes up, recording wakes and counted visits.
type wakeWorld struct {
	srv    *httptest.Server
	p      *Proxy
	mu     sync.Mutex
	wakes  int
	visits []string
}

func (w *wakeWorld) Seen(host string) { w.mu.Lock(); w.visits = append(w.visits, host); w.mu.Unlock() }

func newWakeWorld(t *testing.T, wait time.Duration) *wakeWorld {
	t.Helper()
	w := &wakeWorld{}
	env := store.Environment{ID: 3, Name: "feature", IntegrationName: "app", State: store.StatePaused, Ref: "feature"}
	p := New(Options{EnvDomain: "localhost", Backends: backends{}, WakeWait: wait, Visits: w,
		Lookup: func(_ context.Context, host string) (store.Environment, error) {
			if host != "feature--app" {
				return store.Environment{}, store.ErrNotFound
			}
			w.mu.Lock()
			defer w.mu.Unlock()
			if w.wakes > 0 {
				env.State = store.StateBuilding
			}
			return env, nil
		},
		Wake: func(_ context.Context, id int64) (bool, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			if id != env.ID {
				t.Errorf("woke %d, want %d", id, env.ID)
			}
			w.wakes++
			return true, nil
		}})
	w.p = p
	w.srv = httptest.NewServer(p)
	t.Cleanup(w.srv.Close)
	return w
}

func (w *wakeWorld) get(t *testing.T, ua, accept string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, w.srv.URL+"/", nil)
	req.Host = "feature--app.localhost"
	req.Header.Set("User-Agent", ua)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestABotDoesNotWakeAPausedEnvironment(t *testing.T) {
	w := newWakeWorld(t, time.Millisecond)
	resp, body := w.get(t, "facebookexternalhit/1.1", "text/html")
	if resp.StatusCode != http.StatusServiceUnavailable || w.wakes != 0 || len(w.visits) != 0 {
		t.Fatalf("bot: %d, %d wakes, visits %v: %q", resp.StatusCode, w.wakes, w.visits, body)
	}
}

// An API client's request waits up to WakeWait for the app and is then
// answered 503 with Retry-After; a browser gets the waking page at once.
func TestAWakingEnvironmentAnswersAPIClients503WithRetryAfterAfterTheBound(t *testing.T) {
	w := newWakeWorld(t, 50*time.Millisecond)
	resp, body := w.get(t, "curl/8.5.0", "*/*")
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || w.wakes != 1 {
		t.Fatalf("API client: %d Retry-After %q, %d wakes: %q", resp.StatusCode, resp.Header.Get("Retry-After"), w.wakes, body)
	}
	// Still waking: a browser sees the waking page and no second wake.
	resp, body = w.get(t, "Mozilla/5.0", "text/html")
	if resp.StatusCode != http.StatusServiceUnavailable || w.wakes != 1 || !strings.Contains(body, "Waking up") {
		t.Fatalf("browser while waking: %d, %d wakes: %q", resp.StatusCode, w.wakes, body)
	}
	if len(w.visits) != 2 {
		t.Fatalf("counted visits %v, want both", w.visits)
	}
}
