// Package idle pauses environments nobody visits (issue 17, --pause-after):
// Visits keeps, per environment host, the last request glenv's proxy
// counted (bots and health checks do not count) and persists it coarsely,
// off the request path; a periodic River job decides who is idle (Decide,
// a pure function) and pauses them through the environments service. It
// never stops processes itself: the state machine and its pause job do.
package idle

import (
	"time"

	"github.com/glenv/glenv/internal/store"
)

// Pause is one decision: pause the environment, idle for IdleFor.
type Pause struct {
	EnvironmentID int64
	IdleFor       time.Duration
}

// Decide returns the active environments to pause at now: those whose
// integration has a pause-after and whose last sign of life — the last
// counted request (persisted, or still only in memory) or, when nobody
// came since, the environment's last change (its deploy) — is at least
// pause-after ago.
func Decide(now time.Time, cands []store.IdleCandidate, inMemory func(host string) time.Time) []Pause {
	var out []Pause
	for _, c := range cands {
		if c.PauseAfter <= 0 {
			continue
		}
		since := latest(c.LastRequest, c.ActiveSince)
		if inMemory != nil {
			since = latest(since, inMemory(c.Host))
		}
		if idleFor := now.Sub(since); idleFor >= c.PauseAfter {
			out = append(out, Pause{EnvironmentID: c.EnvironmentID, IdleFor: idleFor})
		}
	}
	return out
}

func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
