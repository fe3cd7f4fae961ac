package webhook

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// marshalledHeaders is what recordedHeaders wrote before it wrote the JSON
// itself: json.Marshal of a map of the kept headers. Stored rows and the API
// show this text, so the new writer must match it byte for byte.
func marshalledHeaders(h http.Header) string {
	out := map[string]string{}
	for _, k := range keep {
		if v := h.Get(k); v != "" {
			out[k] = limit(v, 500)
		}
	}
	b, _ := json.Marshal(out)
	return string(b)
}

func TestRecordedHeadersAreWhatJSONMarshalWrote(t *testing.T) {
	long := strings.Repeat("a", 499) + "é" // cut at 500 inside the rune
	for _, c := range []struct {
		name string
		hdr  map[string]string
	}{
		{"none", nil},
		{"GitLab's", map[string]string{"Content-Type": "application/json", "User-Agent": "GitLab/17.5.0",
			"X-Gitlab-Event": "Push Hook", "X-Gitlab-Instance": "https://gitlab.example.com",
			"X-Gitlab-Webhook-UUID": "2a1f5d8e", "X-Gitlab-Event-UUID": "e-1", "Idempotency-Key": "k-1"}},
		{"one", map[string]string{"X-Gitlab-Event": "Merge Request Hook"}},
		{"the token is never kept", map[string]string{"X-Gitlab-Token": "secret", "X-Gitlab-Event": "Push Hook"}},
		{"HTML characters", map[string]string{"User-Agent": `<a href="x">&</a>`}},
		{"less than", map[string]string{"User-Agent": "a<b"}},
		{"greater than", map[string]string{"User-Agent": "a>b"}},
		{"ampersand", map[string]string{"User-Agent": "a&b"}},
		{"quote", map[string]string{"Idempotency-Key": `k"`}},
		{"backslash", map[string]string{"Idempotency-Key": `k\`}},
		{"DEL", map[string]string{"Idempotency-Key": "k\x7f"}},
		{"control character", map[string]string{"User-Agent": "a\tb\x7f"}},
		{"non-ASCII", map[string]string{"User-Agent": "GitLab ⌘ é"}},
		{"line separators", map[string]string{"User-Agent": "a\u2028b\u2029"}},
		{"invalid UTF-8", map[string]string{"User-Agent": "a\xffb"}},
		{"cut inside a rune", map[string]string{"User-Agent": long}},
		{"long ASCII", map[string]string{"Idempotency-Key": strings.Repeat("k", 600)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range c.hdr {
				h[http.CanonicalHeaderKey(k)] = []string{v}
			}
			if got, want := recordedHeaders(h), marshalledHeaders(h); got != want {
				t.Fatalf("recordedHeaders = %s\njson.Marshal   = %s", got, want)
			}
		})
	}
}

func FuzzRecordedHeaders(f *testing.F) {
	f.Add("Push Hook", "GitLab/17.5.0", "k-1")
	f.Add("<&>", "\u2028", "\xff\xfe")
	f.Fuzz(func(t *testing.T, event, agent, key string) {
		h := http.Header{"X-Gitlab-Event": {event}, "User-Agent": {agent}, "Idempotency-Key": {key}}
		if got, want := recordedHeaders(h), marshalledHeaders(h); got != want {
			t.Fatalf("recordedHeaders = %q\njson.Marshal   = %q", got, want)
		}
	})
}

func TestAcceptedAnswerIsWhatJSONEncoderWrote(t *testing.T) {
	for _, id := range []int64{0, 1, 42, 1 << 40, -1, 1<<63 - 1} {
		var want bytes.Buffer
		_ = json.NewEncoder(&want).Encode(answer{Status: "accepted", DeliveryID: id})
		if got := appendAccepted(nil, id); string(got) != want.String() {
			t.Errorf("id %d: appendAccepted = %q, json.Encoder = %q", id, got, want.String())
		}
	}
}

func BenchmarkRecordedHeaders(b *testing.B) {
	h := http.Header{}
	for k, v := range map[string]string{"Content-Type": "application/json", "User-Agent": "GitLab/17.5.0",
		"X-Gitlab-Event": "Push Hook", "X-Gitlab-Instance": "https://gitlab.example.com",
		"X-Gitlab-Webhook-UUID": "2a1f5d8e-6a3c-4f0e-9d8b-1c2d3e4f5a6b", "X-Gitlab-Event-UUID": "7c1e5d8e-6a3c-4f0e-9d8b-1c2d3e4f5a6b",
		"Idempotency-Key": "9a1f5d8e-6a3c-4f0e-9d8b-1c2d3e4f5a6b", "X-Gitlab-Token": "secret"} {
		h.Set(k, v)
	}
	b.Run("json.Marshal of a map (before)", func(b *testing.B) {
		b.ReportAllocs()
		cpuLoop(b, func() { marshalledHeaders(h) })
	})
	b.Run("recordedHeaders", func(b *testing.B) {
		b.ReportAllocs()
		cpuLoop(b, func() { recordedHeaders(h) })
	})
}
