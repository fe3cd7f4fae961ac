package webhook

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/store/storetest"
)

var pushHeaders = map[string]string{"X-Gitlab-Token": secret, "X-Gitlab-Event": "Push Hook", "Content-Type": "application/json"}

// within runs fn on its own goroutine and fails the test when it has not
// returned by the deadline: every wait in these tests ends.
func within[T any](t *testing.T, d time.Duration, what string, fn func() T) T {
	t.Helper()
	out := make(chan T, 1)
	go func() { out <- fn() }()
	select {
	case v := <-out:
		return v
	case <-time.After(d):
		t.Fatalf("%s did not finish within %v", what, d)
		panic("unreachable")
	}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestAnEscapedNULIsStoredAndReadBackAsReceived(t *testing.T) {
	// PostgreSQL text cannot hold a NUL byte, but `\u0000` in JSON is six
	// printable characters: the body is kept exactly as GitLab sent it.
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		r, _, jobs := newReceiverOn(t, s)
		body := `{"object_kind":"push","ref":"refs/heads/main","commits":[{"id":"a","message":"strip \u0000 from input\n"}]}`
		w := post(r, "/hooks/gitlab/app", pushHeaders, strings.NewReader(body))
		if w.Code != http.StatusAccepted {
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
		var stored string
		if err := s.Reader().QueryRowContext(context.Background(), `SELECT body FROM delivery_bodies`).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		if stored != body || *jobs != 1 {
			t.Fatalf("stored body %q (jobs %d), want %q", stored, *jobs, body)
		}
	})
}

func TestAnUnknownIntegrationIsAnsweredExactlyLikeAWrongToken(t *testing.T) {
	r, s, _ := newReceiver(t)
	wrong := post(r, "/hooks/gitlab/app", map[string]string{"X-Gitlab-Token": "guess", "X-Gitlab-Event": "Push Hook"}, strings.NewReader(`{}`))
	unknown := post(r, "/hooks/gitlab/zzz", map[string]string{"X-Gitlab-Token": "guess", "X-Gitlab-Event": "Push Hook"}, strings.NewReader(`{}`))
	if wrong.Code != unknown.Code || strings.ReplaceAll(unknown.Body.String(), "zzz", "app") != wrong.Body.String() {
		t.Fatalf("wrong token: %d %s\nunknown integration: %d %s", wrong.Code, wrong.Body, unknown.Code, unknown.Body)
	}
	if fmt.Sprint(wrong.Header()) != fmt.Sprint(unknown.Header()) {
		t.Fatalf("headers differ: %v vs %v", wrong.Header(), unknown.Header())
	}
	if count(t, s) != 0 {
		t.Fatal("a refused delivery was stored")
	}
}

func TestMetricsLabelOnlyIntegrationsThatExist(t *testing.T) {
	reg := prometheus.NewRegistry()
	r := NewReceiver(Options{Secrets: fixedSecrets{}, Persist: func(ctx context.Context, b []*store.Delivery, q []bool) ([]bool, error) {
		return make([]bool, len(b)), nil
	}, Log: quiet(), Registerer: reg})
	t.Cleanup(r.Close)
	mux := http.NewServeMux()
	mux.Handle("/hooks/gitlab/{integration}", r)
	methods := []string{"GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "PROPFIND"}
	for i := 0; i < 20000; i++ {
		req := httptest.NewRequest(methods[i%len(methods)], fmt.Sprintf("/hooks/gitlab/probe-%d", i), strings.NewReader(`{}`))
		mux.ServeHTTP(httptest.NewRecorder(), req)
	}
	post(r, "/hooks/gitlab/app", pushHeaders, strings.NewReader(`{}`)) // one real one is labelled
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]bool{}
	series := 0
	for _, f := range families {
		for _, m := range f.GetMetric() {
			series++
			for _, l := range m.GetLabel() {
				if l.GetName() == "integration" {
					labels[l.GetValue()] = true
				}
			}
		}
	}
	if series > 10 || len(labels) != 2 || !labels["_unknown"] || !labels["app"] {
		t.Fatalf("20,000 requests to made-up integrations made %d series with integration labels %v; want only _unknown and app", series, labels)
	}
}

// blockingPersist stands for a hung database. With honour set it returns
// when its context ends, as pgx and SQLite do; without, it ignores the
// context until released, like a driver stuck in a system call.
type blockingPersist struct {
	honour  bool
	entered chan struct{} // one value per call that started
	release chan struct{}
}

func newBlockingPersist(honour bool) *blockingPersist {
	return &blockingPersist{honour: honour, entered: make(chan struct{}, 100), release: make(chan struct{})}
}

func (b *blockingPersist) persist(ctx context.Context, batch []*store.Delivery, queue []bool) ([]bool, error) {
	b.entered <- struct{}{}
	if b.honour {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-b.release:
		}
	} else {
		<-b.release
	}
	return make([]bool, len(batch)), nil
}

var shortLimits = Limits{Answer: 400 * time.Millisecond, Flush: 200 * time.Millisecond}

func TestAHungDatabaseIsAnswered503BeforeGitLabGivesUp(t *testing.T) {
	for _, honour := range []bool{true, false} {
		t.Run(fmt.Sprintf("driver honours its context: %v", honour), func(t *testing.T) {
			db := newBlockingPersist(honour)
			r := NewReceiver(Options{Secrets: fixedSecrets{}, Persist: db.persist, Log: quiet(), Limits: shortLimits})
			w := within(t, 5*time.Second, "a delivery to a hung database", func() *httptest.ResponseRecorder {
				return post(r, "/hooks/gitlab/app", pushHeaders, strings.NewReader(`{"object_kind":"push"}`))
			})
			if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "does not retry") {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			// The shutdown does not hang on the database either.
			within(t, 5*time.Second, "Close with a hung database", func() bool { r.Close(); return true })
			close(db.release)
		})
	}
}

func TestADeliveryAnswered503IsNotStoredLater(t *testing.T) {
	// The first batch hangs past the deadline; the delivery queued behind
	// it was answered 503 and must not be committed once the database
	// comes back.
	db := newBlockingPersist(false)
	var mu sync.Mutex
	var stored []string
	persist := func(ctx context.Context, batch []*store.Delivery, queue []bool) ([]bool, error) {
		dups, err := db.persist(ctx, batch, queue)
		mu.Lock()
		defer mu.Unlock()
		for _, d := range batch {
			stored = append(stored, d.IdempotencyKey)
		}
		return dups, err
	}
	r := NewReceiver(Options{Secrets: fixedSecrets{}, Persist: persist, Flushers: 1, Log: quiet(), Limits: shortLimits})
	first := make(chan int, 1)
	go func() {
		first <- post(r, "/hooks/gitlab/app", map[string]string{"X-Gitlab-Token": secret, "Idempotency-Key": "first"}, strings.NewReader(`{}`)).Code
	}()
	within(t, 5*time.Second, "the first flush", func() struct{} { <-db.entered; return struct{}{} })
	second := within(t, 5*time.Second, "the queued delivery", func() int {
		return post(r, "/hooks/gitlab/app", map[string]string{"X-Gitlab-Token": secret, "Idempotency-Key": "second"}, strings.NewReader(`{}`)).Code
	})
	if second != http.StatusServiceUnavailable {
		t.Fatalf("queued behind a hung batch: %d, want 503", second)
	}
	close(db.release)
	within(t, 5*time.Second, "the first delivery's answer", func() int { return <-first })
	within(t, 5*time.Second, "the drain", func() bool { r.Close(); return true })
	mu.Lock()
	defer mu.Unlock()
	for _, k := range stored {
		if k == "second" {
			t.Fatalf("the delivery answered 503 was stored: %v", stored)
		}
	}
}

func TestALateRequestDuringASlowDrainIsRefusedWithoutPanic(t *testing.T) {
	db := newBlockingPersist(true)
	r := NewReceiver(Options{Secrets: fixedSecrets{}, Persist: db.persist, Log: quiet(),
		Limits: Limits{Answer: 5 * time.Second, Flush: 5 * time.Second}})
	inflight := make(chan int, 1)
	go func() { inflight <- post(r, "/hooks/gitlab/app", pushHeaders, strings.NewReader(`{}`)).Code }()
	within(t, 5*time.Second, "the in-flight flush", func() struct{} { <-db.entered; return struct{}{} })
	closed := make(chan struct{})
	go func() { r.Close(); close(closed) }()
	// Late requests while Close waits for the slow batch: each is answered,
	// none panics on the closed queue.
	var wg sync.WaitGroup
	codes := make([]int, 50)
	for i := range codes {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			codes[i] = post(r, "/hooks/gitlab/app", pushHeaders, strings.NewReader(`{}`)).Code
		}(i)
	}
	// The slow batch ends while the late requests are arriving: waiting for
	// them first would run the in-flight request past its own answer
	// deadline on a loaded machine, which is not what this test is about.
	close(db.release)
	within(t, 10*time.Second, "the late requests", func() bool { wg.Wait(); return true })
	if c := within(t, 10*time.Second, "the in-flight request", func() int { return <-inflight }); c != http.StatusAccepted {
		t.Fatalf("the delivery handed over before the drain: %d, want 202", c)
	}
	within(t, 10*time.Second, "Close", func() bool { <-closed; return true })
	for _, c := range codes {
		if c != http.StatusServiceUnavailable && c != http.StatusAccepted {
			t.Fatalf("late request answered %d", c)
		}
	}
	if w := post(r, "/hooks/gitlab/app", pushHeaders, strings.NewReader(`{}`)); w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "shutting down") {
		t.Fatalf("after Close: %d %s", w.Code, w.Body)
	}
}

// stalledBody is a request body that reports its first read and then
// waits until released.
type stalledBody struct {
	started chan struct{}
	once    sync.Once
	release chan struct{}
}

func (b *stalledBody) Read(p []byte) (int, error) {
	b.once.Do(func() { close(b.started) })
	<-b.release
	return 0, io.EOF
}

func TestBodiesInMemoryAreBounded(t *testing.T) {
	r, s, _ := newReceiver(t)
	push := fixture(t, "push.json")
	r.lim.WaitForMemory = 100 * time.Millisecond
	r.memory.Acquire(context.Background(), r.lim.InFlightBytes-MaxBody) // room for exactly one largest body
	// An unsized body takes room for the largest one while it arrives.
	slow := &stalledBody{started: make(chan struct{}), release: make(chan struct{})}
	first := make(chan int, 1)
	go func() {
		req := httptest.NewRequest(http.MethodPost, "/hooks/gitlab/app", slow)
		req.ContentLength = -1
		for k, v := range pushHeaders {
			req.Header.Set(k, v)
		}
		mux := http.NewServeMux()
		mux.Handle("/hooks/gitlab/{integration}", r)
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, req)
		first <- w.Code
	}()
	within(t, 5*time.Second, "the first body", func() struct{} { <-slow.started; return struct{}{} })
	w := within(t, 5*time.Second, "a delivery with no room", func() *httptest.ResponseRecorder {
		return post(r, "/hooks/gitlab/app", pushHeaders, bytes.NewReader(push))
	})
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Fatalf("no room for a body: %d %v %s, want 503 with Retry-After", w.Code, w.Header(), w.Body)
	}
	close(slow.release)
	within(t, 5*time.Second, "the first request", func() int { return <-first })
	if w := post(r, "/hooks/gitlab/app", pushHeaders, bytes.NewReader(push)); w.Code != http.StatusAccepted {
		t.Fatalf("once the room is free: %d %s", w.Code, w.Body)
	}
	if count(t, s) != 1 {
		t.Fatalf("stored %d deliveries, want 1", count(t, s))
	}
}

// TestPrepareRunsBeforeTheGroupCommit: Options.Prepare (the store's body
// encoding) sees each accepted delivery once, with its body, before the
// batch it joins is persisted; a refused request is not prepared.
func TestPrepareRunsBeforeTheGroupCommit(t *testing.T) {
	var mu sync.Mutex
	prepared := map[*store.Delivery]string{}
	var unprepared []string
	r := NewReceiver(Options{Secrets: fixedSecrets{}, Log: quiet(),
		Prepare: func(d *store.Delivery) {
			mu.Lock()
			defer mu.Unlock()
			prepared[d] = d.Body
		},
		Persist: func(ctx context.Context, b []*store.Delivery, q []bool) ([]bool, error) {
			mu.Lock()
			defer mu.Unlock()
			for _, d := range b {
				if body, ok := prepared[d]; !ok || body != d.Body {
					unprepared = append(unprepared, d.Body)
				}
			}
			return make([]bool, len(b)), nil
		}})
	t.Cleanup(r.Close)
	for i := range 3 {
		if w := post(r, "/hooks/gitlab/app", pushHeaders, strings.NewReader(fmt.Sprintf(`{"n":%d}`, i))); w.Code != http.StatusAccepted {
			t.Fatalf("delivery %d: %d %s", i, w.Code, w.Body)
		}
	}
	post(r, "/hooks/gitlab/app", map[string]string{"X-Gitlab-Token": "guess", "X-Gitlab-Event": "Push Hook"}, strings.NewReader(`{"refused":1}`))
	mu.Lock()
	defer mu.Unlock()
	if len(unprepared) > 0 || len(prepared) != 3 {
		t.Errorf("persisted without preparation: %q; prepared %d deliveries, want the 3 accepted", unprepared, len(prepared))
	}
}
