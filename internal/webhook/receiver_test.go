package webhook

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/store/storetest"
)

const secret = "s3cret-webhook-token"

type fixedSecrets struct{}

func (fixedSecrets) WebhookSecret(ctx context.Context, name string) (int64, string, error) {
	switch name {
	case "app":
		return 1, secret, nil
	case "nosecret":
		return 2, "", nil
	}
	return 0, "", store.ErrNotFound
}

// newReceiver returns a receiver on a real SQLite store whose persist step
// stores deliveries and counts the jobs it would enqueue.
func newReceiver(t testing.TB) (*Receiver, *store.Store, *int) {
	return newReceiverOn(t, storetest.Open(t, storetest.Backends()[0]))
}

func newReceiverOn(t testing.TB, s *store.Store) (*Receiver, *store.Store, *int) {
	jobs := new(int)
	var mu sync.Mutex
	persist := func(ctx context.Context, batch []*store.Delivery, queue []bool) ([]bool, error) {
		dups := make([]bool, len(batch))
		err := s.Tx(ctx, func(tx *sql.Tx) error {
			for i, d := range batch {
				dup, err := store.InsertDelivery(ctx, tx, d)
				if err != nil {
					return err
				}
				dups[i] = dup
				if queue[i] && !dup {
					mu.Lock()
					*jobs++
					mu.Unlock()
				}
			}
			return nil
		})
		return dups, err
	}
	r := New(fixedSecrets{}, persist, 2, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	t.Cleanup(r.Close)
	return r, s, jobs
}

func post(r http.Handler, path string, hdr map[string]string, body io.Reader) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, path, body)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	mux := http.NewServeMux()
	mux.Handle("/hooks/gitlab/{integration}", r)
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, req)
	return w
}

func fixture(t testing.TB, name string) []byte {
	b, err := os.ReadFile(filepath.Join("testdata", "webhooks", name)) // copies of GitLab's examples (gitlab/webhooks)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func count(t testing.TB, s *store.Store) int {
	var n int
	if err := s.Reader().QueryRowContext(context.Background(), `SELECT COUNT(*) FROM deliveries`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestReceiverRules(t *testing.T) {
	push := fixture(t, "push.json")
	good := map[string]string{"X-Gitlab-Token": secret, "X-Gitlab-Event": "Push Hook", "Content-Type": "application/json"}
	with := func(k, v string) map[string]string {
		h := map[string]string{}
		for a, b := range good {
			h[a] = b
		}
		if v == "" {
			delete(h, k)
		} else {
			h[k] = v
		}
		return h
	}
	tests := []struct {
		name     string
		path     string
		hdr      map[string]string
		body     []byte
		want     int
		stored   int
		jobs     int
		contains string
	}{
		{"a push is stored with its job and answered 202", "/hooks/gitlab/app", good, push, 202, 1, 1, `"accepted"`},
		{"a missing token is 401 and stores nothing", "/hooks/gitlab/app", with("X-Gitlab-Token", ""), push, 401, 0, 0, "X-Gitlab-Token"},
		{"a wrong token is 401 and stores nothing", "/hooks/gitlab/app", with("X-Gitlab-Token", "nope"), push, 401, 0, 0, "validate"},
		{"a token differing in one byte is 401", "/hooks/gitlab/app", with("X-Gitlab-Token", secret[:len(secret)-1]+"X"), push, 401, 0, 0, ""},
		{"malformed JSON is 400 and stores nothing", "/hooks/gitlab/app", good, []byte(`{"object_kind":`), 400, 0, 0, "JSON"},
		{"a JSON array is 400", "/hooks/gitlab/app", good, []byte(`[1,2]`), 400, 0, 0, "JSON object"},
		{"invalid UTF-8 is 400", "/hooks/gitlab/app", good, []byte("{\"a\":\"\xff\"}"), 400, 0, 0, "UTF-8"},
		{"an escaped NUL in a commit message is stored as received", "/hooks/gitlab/app", good, []byte(`{"object_kind":"push","commits":[{"message":"fix \\u0000 and \u0000"}]}`), 202, 1, 1, `"accepted"`},
		{"an unknown integration is 401 like a wrong token and stores nothing", "/hooks/gitlab/nope", good, push, 401, 0, 0, "X-Gitlab-Token"},
		{"an integration without a secret refuses a missing token", "/hooks/gitlab/nosecret", with("X-Gitlab-Token", ""), push, 401, 0, 0, "X-Gitlab-Token"},
		{"an integration without a secret refuses an empty token header", "/hooks/gitlab/nosecret", with("X-Gitlab-Token", " "), push, 401, 0, 0, "X-Gitlab-Token"},
		{"a pipeline event is recorded without a job", "/hooks/gitlab/app", with("X-Gitlab-Event", "Pipeline Hook"), fixture(t, "pipeline.json"), 202, 1, 0, "no effect"},
		{"an unknown event is recorded without a job", "/hooks/gitlab/app", with("X-Gitlab-Event", "Emoji Hook"), []byte(`{"object_kind":"emoji"}`), 202, 1, 0, "recorded"},
		{"a missing event header is recorded without a job", "/hooks/gitlab/app", with("X-Gitlab-Event", ""), push, 202, 1, 0, "recorded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, s, jobs := newReceiver(t)
			w := post(r, tt.path, tt.hdr, bytes.NewReader(tt.body))
			if w.Code != tt.want {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.want, w.Body)
			}
			if got := count(t, s); got != tt.stored {
				t.Errorf("stored %d deliveries, want %d", got, tt.stored)
			}
			if *jobs != tt.jobs {
				t.Errorf("enqueued %d jobs, want %d", *jobs, tt.jobs)
			}
			if !strings.Contains(w.Body.String(), tt.contains) {
				t.Errorf("body %s does not mention %q", w.Body, tt.contains)
			}
		})
	}
}

func TestRecordedHeadersNeverHoldTheToken(t *testing.T) {
	r, s, _ := newReceiver(t)
	post(r, "/hooks/gitlab/app", map[string]string{"X-Gitlab-Token": secret, "X-Gitlab-Event": "Push Hook", "Idempotency-Key": "k"}, bytes.NewReader(fixture(t, "push.json")))
	var headers string
	s.Reader().QueryRowContext(context.Background(), `SELECT headers FROM deliveries`).Scan(&headers)
	if strings.Contains(headers, secret) || !strings.Contains(headers, "Idempotency-Key") {
		t.Fatalf("headers = %s", headers)
	}
}

func TestSameIdempotencyKeyHasNoSecondEffectWhateverItsBody(t *testing.T) {
	r, s, jobs := newReceiver(t)
	h := map[string]string{"X-Gitlab-Token": secret, "X-Gitlab-Event": "Push Hook", "Idempotency-Key": "3a427872-00df"}
	if w := post(r, "/hooks/gitlab/app", h, bytes.NewReader(fixture(t, "push.json"))); w.Code != 202 {
		t.Fatal(w.Code)
	}
	w := post(r, "/hooks/gitlab/app", h, bytes.NewReader(fixture(t, "push_branch_created.json")))
	if w.Code != 200 || !strings.Contains(w.Body.String(), "duplicate") {
		t.Fatalf("duplicate answered %d %s", w.Code, w.Body)
	}
	if *jobs != 1 || count(t, s) != 2 {
		t.Fatalf("jobs %d, deliveries %d: want 1 job, 2 recorded deliveries", *jobs, count(t, s))
	}
}

func TestBodiesOverTheLimitAre413(t *testing.T) {
	r, s, _ := newReceiver(t)
	h := map[string]string{"X-Gitlab-Token": secret, "X-Gitlab-Event": "Push Hook"}
	// Declared too large: refused before reading anything.
	req := httptest.NewRequest(http.MethodPost, "/hooks/gitlab/app", errReader{})
	req.ContentLength = MaxBody + 1
	for k, v := range h {
		req.Header.Set(k, v)
	}
	mux := http.NewServeMux()
	mux.Handle("/hooks/gitlab/{integration}", r)
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, req)
	if w.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("declared oversize: %d", w.Code)
	}
	// Streamed without a length: refused once the limit is crossed; the rest is not read.
	src := &countingReader{limit: 40 << 20}
	w2 := post(r, "/hooks/gitlab/app", h, src)
	if w2.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("streamed oversize: %d", w2.Code)
	}
	if src.read > MaxBody+64<<10 {
		t.Fatalf("read %d bytes of a 40 MB body; it should stop at the 25 MB limit", src.read)
	}
	if count(t, s) != 0 {
		t.Fatal("an oversize body was stored")
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("must not be read") }

type countingReader struct{ read, limit int }

func (c *countingReader) Read(p []byte) (int, error) {
	if c.read >= c.limit {
		return 0, io.EOF
	}
	n := len(p)
	if c.read+n > c.limit {
		n = c.limit - c.read
	}
	for i := range p[:n] {
		p[i] = ' '
	}
	c.read += n
	return n, nil
}

func TestConcurrentDeliveriesAreGroupCommittedAndAllStored(t *testing.T) {
	r, s, jobs := newReceiver(t)
	body := fixture(t, "push.json")
	var wg sync.WaitGroup
	codes := make([]int, 200)
	for i := range codes {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			h := map[string]string{"X-Gitlab-Token": secret, "X-Gitlab-Event": "Push Hook", "Idempotency-Key": fmt.Sprintf("k-%d", i%150)}
			codes[i] = post(r, "/hooks/gitlab/app", h, bytes.NewReader(body)).Code
		}(i)
	}
	wg.Wait()
	accepted, dup := 0, 0
	for _, c := range codes {
		switch c {
		case 202:
			accepted++
		case 200:
			dup++
		default:
			t.Fatalf("status %d", c)
		}
	}
	if accepted != 150 || dup != 50 || *jobs != 150 || count(t, s) != 200 {
		t.Fatalf("accepted %d dup %d jobs %d stored %d; want 150/50/150/200", accepted, dup, *jobs, count(t, s))
	}
}

// FuzzWebhook: random bodies and headers never panic, never get a 5xx, and
// an unauthenticated or malformed request never changes anything.
func FuzzWebhook(f *testing.F) {
	for _, name := range []string{"push.json", "merge_request_open.json", "tag_push.json", "pipeline.json"} {
		f.Add(fixture(f, name), "Push Hook", secret, "key")
	}
	f.Add([]byte(`{`), "Merge Request Hook", secret, "")
	f.Add([]byte(`{"object_kind":"push","ref":5}`), "Push Hook", "wrong", "k")
	f.Add([]byte("\x00\xff"), "", "", "")
	// An in-memory persist: under -fuzz every package is coverage-instrumented,
	// and the SQLite engine instrumented is too slow to fuzz through.
	var mu sync.Mutex
	stored := 0
	persist := func(ctx context.Context, batch []*store.Delivery, queue []bool) ([]bool, error) {
		mu.Lock()
		defer mu.Unlock()
		stored += len(batch)
		return make([]bool, len(batch)), nil
	}
	r := New(fixedSecrets{}, persist, 2, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	f.Cleanup(r.Close)
	count := func() int { mu.Lock(); defer mu.Unlock(); return stored }
	f.Fuzz(func(t *testing.T, body []byte, event, token, key string) {
		start := time.Now()
		before := count()
		w := post(r, "/hooks/gitlab/app", map[string]string{"X-Gitlab-Token": token, "X-Gitlab-Event": event, "Idempotency-Key": key}, bytes.NewReader(body))
		if w.Code >= 500 {
			t.Fatalf("status %d for body %q: %s", w.Code, body, w.Body)
		}
		if d := time.Since(start); d > 200*time.Millisecond {
			t.Fatalf("took %v for event %q token %q", d, event, token)
		}
		after := count()
		if w.Code >= 400 && after != before {
			t.Fatalf("a refused request (%d) stored a delivery", w.Code)
		}
		if token != secret && w.Code != 401 {
			t.Fatalf("a wrong token got %d", w.Code)
		}
	})
}
