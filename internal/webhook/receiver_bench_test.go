package webhook

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/glenv/glenv/internal/store"
)

// BenchmarkReceiverAck measures what the receiver does for one accepted
// 8 KB push beyond the group commit: the secret check, the headers, the
// body's read and checks, the delivery's fields, the metric and the answer.
// Its persist step only numbers the deliveries, so the figure is glenv's
// HTTP-side cost of an acknowledgement (bench/ack measures it with the
// database). cpu-ns/op is this process's CPU per delivery.
func BenchmarkReceiverAck(b *testing.B) {
	body := push8K(b)
	var n int64
	persist := func(ctx context.Context, batch []*store.Delivery, queue []bool) ([]bool, error) {
		for _, d := range batch {
			n++
			d.ID = n
		}
		return make([]bool, len(batch)), nil
	}
	r := New(fixedSecrets{}, persist, 1, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	b.Cleanup(r.Close)
	hdr := http.Header{}
	hdr.Set("Content-Type", "application/json")
	hdr.Set("User-Agent", "GitLab/17.5.0")
	hdr.Set("X-Gitlab-Event", "Push Hook")
	hdr.Set("X-Gitlab-Token", secret)
	hdr.Set("X-Gitlab-Instance", "https://gitlab.example.com")
	hdr.Set("X-Gitlab-Webhook-UUID", "2a1f5d8e-6a3c-4f0e-9d8b-1c2d3e4f5a6b")
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	i := 0
	cpuLoop(b, func() {
		i++
		req := httptest.NewRequest(http.MethodPost, "/hooks/gitlab/app", bytes.NewReader(body))
		req.Header = hdr.Clone()
		req.Header.Set("X-Gitlab-Event-UUID", fmt.Sprint("e-", i))
		req.Header.Set("Idempotency-Key", fmt.Sprint("k-", i))
		req.SetPathValue("integration", "app")
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		if w.Code != http.StatusAccepted {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
	})
}
