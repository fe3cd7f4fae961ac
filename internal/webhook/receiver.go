// Package webhook receives GitLab's webhook deliveries: it verifies the
// secret in constant time, bounds and checks the body, deduplicates on
// Idempotency-Key, and makes each accepted delivery durable together with its
// processing job before answering 202. It makes no GitLab call and decides
// nothing about environments.
package webhook

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tidwall/gjson"
	"golang.org/x/sync/semaphore"

	"github.com/glenv/glenv/internal/store"
)

// MaxBody is GitLab's own webhook payload limit (PROTOCOL.md §1.1).
const MaxBody = 25 << 20

// Events whose deliveries are queued for the lifecycle; every other event is
// recorded as processed with no effect.
var handled = map[string]bool{"Push Hook": true, "Tag Push Hook": true, "Merge Request Hook": true}

// Secrets looks up an integration's id and webhook secret by name.
type Secrets interface {
	WebhookSecret(ctx context.Context, integration string) (id int64, secret string, err error)
}

// Limits bound what one request may cost. GitLab waits 10 s for an answer
// (webhook_timeout, config/initializers/1_settings.rb) and never sends a
// failed delivery again (WebHookService#execute rescues HTTP errors,
// app/services/web_hook_service.rb), so every wait ends well before that and
// a 503 says what was lost.
type Limits struct {
	// Answer is the deadline of a whole request (look-up, body, commit).
	Answer time.Duration
	// Flush is the deadline of one group-commit transaction.
	Flush time.Duration
	// InFlightBytes bounds the request bodies held in memory at once.
	InFlightBytes int64
	// WaitForMemory is how long a body waits for room before a 503.
	WaitForMemory time.Duration
}

// DefaultLimits answer within 7 s and hold at most 128 MiB of bodies (five
// bodies of GitLab's maximum size, thousands of ordinary pushes).
var DefaultLimits = Limits{Answer: 7 * time.Second, Flush: 4 * time.Second, InFlightBytes: 128 << 20, WaitForMemory: time.Second}

// Options configure a Receiver.
type Options struct {
	Secrets Secrets
	Persist Persist
	// Flushers is how many batches commit at once (1 for SQLite).
	Flushers   int
	Log        *slog.Logger
	Registerer prometheus.Registerer // nil: no metrics
	Limits     Limits                // zero fields take DefaultLimits
	// Prepare, when set, runs on the request's goroutine before the
	// delivery joins a group commit: the store's encoding of its body
	// (store.PrepareBody), done in parallel and outside SQLite's one
	// write transaction.
	Prepare func(*store.Delivery)
}

// Receiver is the http.Handler for /hooks/gitlab/{integration}.
type Receiver struct {
	secrets Secrets
	prepare func(*store.Delivery)
	commit  *committer
	log     *slog.Logger
	cache   sync.Map // name → cached
	ttl     time.Duration
	metric  *prometheus.CounterVec
	lim     Limits
	memory  *semaphore.Weighted
	// pressure is what AcksIdle reports (pressure.go).
	pressure pressure
}

type cached struct {
	id      int64
	secret  string
	expires time.Time
}

// New builds a receiver that persists through persist (see Persist) with
// flushers batches committing at once, within DefaultLimits.
func New(secrets Secrets, persist Persist, flushers int, log *slog.Logger, reg prometheus.Registerer) *Receiver {
	return NewReceiver(Options{Secrets: secrets, Persist: persist, Flushers: flushers, Log: log, Registerer: reg})
}

// NewReceiver builds a receiver from o.
func NewReceiver(o Options) *Receiver {
	lim := o.Limits
	d := DefaultLimits
	if lim.Answer <= 0 {
		lim.Answer = d.Answer
	}
	if lim.Flush <= 0 {
		lim.Flush = d.Flush
	}
	if lim.InFlightBytes < MaxBody {
		lim.InFlightBytes = max(d.InFlightBytes, MaxBody)
	}
	if lim.WaitForMemory <= 0 {
		lim.WaitForMemory = d.WaitForMemory
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	r := &Receiver{secrets: o.Secrets, prepare: o.Prepare, log: o.Log, ttl: 2 * time.Second,
		lim: lim, memory: semaphore.NewWeighted(lim.InFlightBytes),
		metric: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "glenv_webhook_deliveries_total",
			Help: "Webhook requests by outcome (accepted, duplicate, ignored, unauthorized, too_large, bad_request, unknown_integration, busy, error); integrations that do not exist count as _unknown.",
		}, []string{"integration", "outcome"})}
	r.commit = newCommitter(o.Persist, o.Flushers, lim.Flush, r.pressure.inProgress)
	if o.Registerer != nil {
		o.Registerer.MustRegister(r.metric)
	}
	return r
}

// Close stops taking deliveries and waits, at most a flush deadline and a
// second, for the batches already handed over: a hung database cannot hang
// the shutdown.
func (r *Receiver) Close() {
	if !r.commit.close(r.lim.Flush + time.Second) {
		r.log.Warn("webhook: stopped waiting for the database; deliveries still being committed were answered 503")
	}
}

// Forget drops a cached secret (after an integration is updated or deleted).
func (r *Receiver) Forget(integration string) { r.cache.Delete(integration) }

func (r *Receiver) lookup(ctx context.Context, name string) (cached, error) {
	if v, ok := r.cache.Load(name); ok && time.Now().Before(v.(cached).expires) {
		return v.(cached), nil
	}
	id, secret, err := r.secrets.WebhookSecret(ctx, name)
	if err != nil {
		return cached{}, err
	}
	c := cached{id: id, secret: secret, expires: time.Now().Add(r.ttl)}
	r.cache.Store(name, c)
	return c, nil
}

type answer struct {
	Status     string `json:"status"`
	DeliveryID int64  `json:"delivery_id,omitempty"`
	Message    string `json:"message,omitempty"`
}

func reply(w http.ResponseWriter, code int, a answer) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	if a.Status == "accepted" && a.Message == "" {
		// Every acknowledgement: the bytes json.Encoder writes for it
		// (TestAcceptedAnswerIsWhatJSONEncoderWrote), without an encoder
		// and reflection per delivery.
		var buf [64]byte
		_, _ = w.Write(appendAccepted(buf[:0], a.DeliveryID))
		return
	}
	_ = json.NewEncoder(w).Encode(a)
}

// appendAccepted appends answer{Status: "accepted", DeliveryID: id} as
// json.Encoder encodes it, newline included.
func appendAccepted(b []byte, id int64) []byte {
	b = append(b, `{"status":"accepted"`...)
	if id != 0 { // omitempty
		b = append(b, `,"delivery_id":`...)
		b = strconv.AppendInt(b, id, 10)
	}
	return append(b, '}', '\n')
}

// noRetry ends every 503: GitLab does not send a failed delivery again
// (app/services/web_hook_service.rb); a 5xx also counts towards disabling
// the hook (app/models/concerns/web_hooks/auto_disabling.rb).
const noRetry = " GitLab does not retry webhook deliveries: glenv's periodic reconcile repairs what this event would have done, or redeliver it from the project's Settings → Webhooks → Recent events."

// unknownSecret is compared against when the integration does not exist, so
// that answer takes the same path as a wrong token.
var unknownSecret = []byte(newUnguessable())

// ServeHTTP handles one delivery. The integration name is the last path element.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	name := req.PathValue("integration")
	outcome, known := "error", false
	defer func() {
		// Only integrations that exist are labels: any path would otherwise
		// make a new series.
		label := "_unknown"
		if known {
			label = name
		}
		r.metric.WithLabelValues(label, outcome).Inc()
	}()
	if req.Method != http.MethodPost {
		outcome = "bad_request"
		w.Header().Set("Allow", "POST")
		reply(w, http.StatusMethodNotAllowed, answer{Status: "rejected", Message: "webhooks are delivered with POST"})
		return
	}
	deadline := time.Now().Add(r.lim.Answer)
	ctx, cancel := context.WithDeadline(req.Context(), deadline)
	defer cancel()
	integ, err := r.lookup(ctx, name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		outcome = "unknown_integration"
		integ.secret = string(unknownSecret)
	case err != nil:
		r.log.Error("webhook: look up integration", "integration", name, "err", err)
		reply(w, http.StatusServiceUnavailable, answer{Status: "error", Message: "glenv cannot read its database right now; the delivery was not stored." + noRetry})
		return
	default:
		known = true
	}
	token := req.Header.Get("X-Gitlab-Token")
	// An empty secret would match a missing token; integrations always get
	// one, so an empty one is refused rather than trusted. An unknown
	// integration is answered exactly like a wrong token: the answer must
	// not tell which integrations exist.
	if subtle.ConstantTimeCompare([]byte(token), []byte(integ.secret)) != 1 || integ.secret == "" || !known {
		if known {
			outcome = "unauthorized"
		}
		reply(w, http.StatusUnauthorized, answer{Status: "rejected", Message: "X-Gitlab-Token does not match the integration's webhook secret: check the hook URL and run `glenv integration:validate " + name + "` to re-install the hook"})
		return
	}
	// From here the delivery is an acknowledgement in progress, until its
	// answer is written: only authenticated ones, so strangers cannot hold
	// processing back (and the drain's floor bounds even that).
	r.pressure.enter()
	defer r.pressure.leave()
	if req.ContentLength > MaxBody {
		outcome = "too_large"
		reply(w, http.StatusRequestEntityTooLarge, answer{Status: "rejected", Message: "body exceeds GitLab's 25 MB webhook limit"})
		return
	}
	size := req.ContentLength
	if size < 0 {
		size = MaxBody // unsized (chunked): room for the largest body
	}
	if !r.reserve(ctx, size) {
		outcome = "busy"
		w.Header().Set("Retry-After", "5")
		reply(w, http.StatusServiceUnavailable, answer{Status: "error", Message: "glenv is receiving too many large deliveries at once; the delivery was not stored." + noRetry})
		return
	}
	defer r.memory.Release(size)
	// The body must arrive before the request's deadline; a slow sender
	// does not hold memory and a connection for longer.
	_ = http.NewResponseController(w).SetReadDeadline(deadline)
	// A declared length is read into one buffer of that size plus the
	// bytes.MinRead that Buffer.ReadFrom wants free before each read: with
	// less (it was length + 1) the read of EOF doubled the buffer, copying
	// the body into a second, twice larger one (BenchmarkReceiverAck, with
	// the string copy bodyString saves: 48 → 18.5 KB allocated per 8 KB push,
	// httptest's own request included). An unsized body grows as it comes
	// (its reservation is already the maximum).
	initial := int64(64 << 10)
	if req.ContentLength >= 0 {
		initial = req.ContentLength + bytes.MinRead
	}
	buf := bytes.NewBuffer(make([]byte, 0, initial))
	_, err = buf.ReadFrom(http.MaxBytesReader(w, req.Body, MaxBody))
	body := buf.Bytes()
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		outcome = "too_large"
		reply(w, http.StatusRequestEntityTooLarge, answer{Status: "rejected", Message: "body exceeds GitLab's 25 MB webhook limit"})
		return
	}
	if err != nil {
		outcome = "bad_request"
		reply(w, http.StatusBadRequest, answer{Status: "rejected", Message: "could not read the body before the deadline: " + err.Error()})
		return
	}
	if msg := checkBody(body); msg != "" {
		outcome = "bad_request"
		reply(w, http.StatusBadRequest, answer{Status: "rejected", Message: msg})
		return
	}
	event := strings.TrimSpace(req.Header.Get("X-Gitlab-Event"))
	d := &store.Delivery{
		IntegrationID: integ.id, IntegrationName: name, Event: event,
		IdempotencyKey: limit(req.Header.Get("Idempotency-Key"), 200),
		EventUUID:      limit(req.Header.Get("X-Gitlab-Event-UUID"), 200),
		WebhookUUID:    limit(req.Header.Get("X-Gitlab-Webhook-UUID"), 200),
		Headers:        recordedHeaders(req.Header), Body: bodyString(body), Status: store.DeliveryAccepted,
	}
	queue := handled[event]
	if !queue {
		d.Status = store.DeliveryProcessed
		d.Result = fmt.Sprintf("event %q has no effect on environments: recorded only", event)
	}
	if r.prepare != nil {
		r.prepare(d)
	}
	dup, err := r.commit.submit(ctx, d, queue)
	if err != nil {
		r.log.Error("webhook: store delivery", "integration", name, "err", err)
		msg := "glenv could not store the delivery (its database is slow or unreachable); it was not accepted."
		if errors.Is(err, errClosed) {
			msg = "glenv is shutting down; the delivery was not stored."
		}
		reply(w, http.StatusServiceUnavailable, answer{Status: "error", Message: msg + noRetry})
		return
	}
	switch {
	case dup:
		outcome = "duplicate"
		reply(w, http.StatusOK, answer{Status: "duplicate", DeliveryID: d.ID, Message: "already received under this Idempotency-Key: no effect"})
	case !queue:
		outcome = "ignored"
		reply(w, http.StatusAccepted, answer{Status: "recorded", DeliveryID: d.ID, Message: d.Result})
	default:
		outcome = "accepted"
		reply(w, http.StatusAccepted, answer{Status: "accepted", DeliveryID: d.ID})
	}
}

// reserve takes room for size bytes of body, waiting at most WaitForMemory.
// It tries semaphore.TryAcquire first: with room to spare, as almost
// always, that skips the wait's context and its timer.
func (r *Receiver) reserve(ctx context.Context, size int64) bool {
	if r.memory.TryAcquire(size) {
		return true
	}
	wait, cancel := context.WithTimeout(ctx, r.lim.WaitForMemory)
	defer cancel()
	return r.memory.Acquire(wait, size) == nil
}

func newUnguessable() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x", b)
}

// checkBody returns why body is not a delivery glenv can store, or "".
func checkBody(body []byte) string {
	if !utf8.Valid(body) {
		return "body is not UTF-8 JSON"
	}
	// gjson.ValidBytes checks without building anything (bodies reach 25
	// MB), accepts exactly what json.Valid accepts
	// (FuzzValidatorAgreesWithEncodingJSON) at a quarter of its CPU (8 vs
	// 32 µs per 8 KB: json.Valid was a tenth of an acknowledgement's CPU).
	if trimmed := bytes.TrimLeft(body, " \t\r\n"); len(trimmed) == 0 || trimmed[0] != '{' || !gjson.ValidBytes(body) {
		return "body is not a JSON object: send GitLab's webhook payload as JSON"
	}
	// The validator refuses raw control characters, so the body holds no NUL
	// byte and fits a PostgreSQL text column as received; a "\u0000"
	// escape is six printable characters and is stored as such.
	return ""
}

// keep lists the headers a delivery records, sorted as encoding/json sorts
// a map's keys, so recordedHeaders writes what json.Marshal of that map
// wrote (stored rows and the API keep the same text).
var keep = slices.Sorted(slices.Values([]string{"Content-Type", "User-Agent", "X-Gitlab-Event", "X-Gitlab-Instance",
	"X-Gitlab-Webhook-UUID", "X-Gitlab-Event-UUID", "Idempotency-Key"}))

// recordedHeaders keeps the delivery headers worth showing; never
// X-Gitlab-Token. It writes the JSON object json.Marshal wrote for a map of
// them, byte for byte (TestRecordedHeadersAreWhatJSONMarshalWrote), without
// the map, its sort and reflection: 4 allocations instead of 21 and
// 1.6–1.8 instead of 4.3–5.1 µs of CPU per delivery (BenchmarkRecordedHeaders,
// GitLab's seven headers, load average 12–16).
func recordedHeaders(h http.Header) string {
	b := make([]byte, 0, 512) // GitLab's seven headers take ~300 bytes
	b = append(b, '{')
	for _, k := range keep {
		v := h.Get(k)
		if v == "" {
			continue
		}
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, k...)
		b = append(b, '"', ':')
		b = appendJSONString(b, limit(v, 500))
	}
	b = append(b, '}')
	return bodyString(b)
}

// appendJSONString appends s as encoding/json writes a string: printable
// ASCII other than " \ < > & is written as it is (every header GitLab
// sends); anything else goes through json.Marshal, whose escapes (HTML
// characters, control characters, U+2028/U+2029, invalid UTF-8) are then
// exactly its own.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// bodyString is b as a string without copying it. Only for a slice nothing
// writes to afterwards: the receiver's body buffer and recordedHeaders' own
// are each filled once and then only read. A push's 8 KB body was copied
// once more per delivery by string(body).
func bodyString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}

func limit(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
