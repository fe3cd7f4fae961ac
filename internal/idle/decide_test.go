package idle

import (
	"testing"
	"time"

	"github.com/glenv/glenv/internal/store"
)

func TestDecide(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	cand := func(pauseAfter time.Duration, lastRequest, updated time.Time) store.IdleCandidate {
		return store.IdleCandidate{EnvironmentID: 1, Host: "feature--app", PauseAfter: pauseAfter, LastRequest: lastRequest, ActiveSince: updated}
	}
	tests := []struct {
		name     string
		c        store.IdleCandidate
		inMemory time.Time
		want     bool
	}{
		{"no request for pause-after pauses it", cand(4*time.Hour, ago(5*time.Hour), ago(10*time.Hour)), time.Time{}, true},
		{"exactly pause-after pauses it", cand(4*time.Hour, ago(4*time.Hour), ago(10*time.Hour)), time.Time{}, true},
		{"a recent request keeps it running", cand(4*time.Hour, ago(time.Hour), ago(10*time.Hour)), time.Time{}, false},
		{"a request not written yet keeps it running", cand(4*time.Hour, ago(5*time.Hour), ago(10*time.Hour)), ago(time.Minute), false},
		{"never visited counts from its deploy", cand(4*time.Hour, time.Time{}, ago(time.Hour)), time.Time{}, false},
		{"never visited since a deploy long ago pauses it", cand(4*time.Hour, time.Time{}, ago(5*time.Hour)), time.Time{}, true},
		{"a recent deploy counts as life", cand(4*time.Hour, ago(5*time.Hour), ago(time.Minute)), time.Time{}, false},
		{"pause-after off never pauses", cand(0, ago(1000*time.Hour), ago(1000*time.Hour)), time.Time{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := func(host string) time.Time {
				if host != tt.c.Host {
					t.Errorf("asked for %q, want %q", host, tt.c.Host)
				}
				return tt.inMemory
			}
			got := Decide(now, []store.IdleCandidate{tt.c}, mem)
			if (len(got) == 1) != tt.want {
				t.Fatalf("Decide = %+v, want pause %v", got, tt.want)
			}
		})
	}
}
