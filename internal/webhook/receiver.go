// Package webhook receives GitLab's webhook deliveries: it verifies the
// secret in constant time, bounds and checks the body, deduplicates on
// Idempotency-Key, and makes each accepted delivery durable together with its
// processing job before answering 202. It makes no GitLab call and decides
// nothing about environments.
package webhook

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

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

// Receiver is the http.Handler for /hooks/gitlab/{integration}.
type Receiver struct {
	secrets Secrets
	commit  *committer
	log     *slog.Logger
	cache   sync.Map // name → cached
	ttl     time.Duration
	metric  *prometheus.CounterVec
}

type cached struct {
	id      int64
	secret  string
	expires time.Time
}

// New builds a receiver that persists through persist (see Persist) with
// flushers batches committing at once.
func New(secrets Secrets, persist Persist, flushers int, log *slog.Logger, reg prometheus.Registerer) *Receiver {
	r := &Receiver{secrets: secrets, commit: newCommitter(persist, flushers), log: log, ttl: 2 * time.Second,
		metric: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "glenv_webhook_deliveries_total",
			Help: "Webhook requests by outcome (accepted, duplicate, ignored, unauthorized, too_large, bad_request, unknown_integration, error).",
		}, []string{"integration", "outcome"})}
	if reg != nil {
		reg.MustRegister(r.metric)
	}
	return r
}

// Close stops the group committer after the in-flight batch.
func (r *Receiver) Close() { r.commit.close() }

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
	_ = json.NewEncoder(w).Encode(a)
}

// ServeHTTP handles one delivery. The integration name is the last path element.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	name := req.PathValue("integration")
	outcome := "error"
	defer func() { r.metric.WithLabelValues(metricName(name, outcome), outcome).Inc() }()
	if req.Method != http.MethodPost {
		outcome = "bad_request"
		w.Header().Set("Allow", "POST")
		reply(w, http.StatusMethodNotAllowed, answer{Status: "rejected", Message: "webhooks are delivered with POST"})
		return
	}
	integ, err := r.lookup(req.Context(), name)
	if errors.Is(err, store.ErrNotFound) {
		outcome = "unknown_integration"
		reply(w, http.StatusNotFound, answer{Status: "rejected", Message: fmt.Sprintf("no integration named %q: check the hook URL (glenv integration:list)", name)})
		return
	}
	if err != nil {
		r.log.Error("webhook: look up integration", "integration", name, "err", err)
		reply(w, http.StatusServiceUnavailable, answer{Status: "error", Message: "glenv cannot read its database; GitLab may retry"})
		return
	}
	token := req.Header.Get("X-Gitlab-Token")
	if subtle.ConstantTimeCompare([]byte(token), []byte(integ.secret)) != 1 {
		outcome = "unauthorized"
		reply(w, http.StatusUnauthorized, answer{Status: "rejected", Message: "X-Gitlab-Token does not match the integration's webhook secret: run `glenv integration:validate " + name + "` to re-install the hook"})
		return
	}
	if req.ContentLength > MaxBody {
		outcome = "too_large"
		reply(w, http.StatusRequestEntityTooLarge, answer{Status: "rejected", Message: "body exceeds GitLab's 25 MB webhook limit"})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, MaxBody))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		outcome = "too_large"
		reply(w, http.StatusRequestEntityTooLarge, answer{Status: "rejected", Message: "body exceeds GitLab's 25 MB webhook limit"})
		return
	}
	if err != nil {
		outcome = "bad_request"
		reply(w, http.StatusBadRequest, answer{Status: "rejected", Message: "could not read the body: " + err.Error()})
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
		Headers:        recordedHeaders(req.Header), Body: string(body), Status: store.DeliveryAccepted,
	}
	queue := handled[event]
	if !queue {
		d.Status = store.DeliveryProcessed
		d.Result = fmt.Sprintf("event %q has no effect on environments: recorded only", event)
	}
	dup, err := r.commit.submit(req.Context(), d, queue)
	if err != nil {
		r.log.Error("webhook: store delivery", "integration", name, "err", err)
		reply(w, http.StatusServiceUnavailable, answer{Status: "error", Message: "glenv could not store the delivery; it was not accepted"})
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

// checkBody returns why body is not a delivery glenv can store, or "".
func checkBody(body []byte) string {
	if !utf8.Valid(body) {
		return "body is not UTF-8 JSON"
	}
	// json.Valid checks without building anything; bodies reach 25 MB.
	if trimmed := bytes.TrimLeft(body, " \t\r\n"); len(trimmed) == 0 || trimmed[0] != '{' || !json.Valid(body) {
		return "body is not a JSON object: send GitLab's webhook payload as JSON"
	}
	if strings.Contains(string(body), `\u0000`) {
		// PostgreSQL text cannot hold NUL; no GitLab payload carries one.
		return "body contains a NUL character"
	}
	return ""
}

var keep = []string{"Content-Type", "User-Agent", "X-Gitlab-Event", "X-Gitlab-Instance", "X-Gitlab-Webhook-UUID", "X-Gitlab-Event-UUID", "Idempotency-Key"}

// recordedHeaders keeps the delivery headers worth showing; never X-Gitlab-Token.
func recordedHeaders(h http.Header) string {
	out := map[string]string{}
	for _, k := range keep {
		if v := h.Get(k); v != "" {
			out[k] = limit(v, 500)
		}
	}
	b, _ := json.Marshal(out)
	return string(b)
}

func limit(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// metricName bounds label cardinality: names of unknown integrations are not labels.
func metricName(name string, outcome string) string {
	if outcome == "unknown_integration" || len(name) > 36 {
		return "_unknown"
	}
	return name
}
