package runtime

import (
	"testing"
	"time"
)

func TestRestartPolicy(t *testing.T) {
	t.Parallel()
	p := RestartPolicy{}.withDefaults()
	for _, tc := range []struct {
		name     string
		failures int
		up       time.Duration
		want     int
		wait     time.Duration
		giveUp   bool
	}{
		{"the first crash waits the base delay", 0, 3 * time.Second, 1, time.Second, false},
		{"a second crash in a row waits twice as long", 1, 0, 2, 2 * time.Second, false},
		{"a third waits four times as long", 2, 0, 3, 4 * time.Second, false},
		{"the wait is capped at a minute", 7, 0, 8, time.Minute, false},
		{"the tenth crash in a row gives up", 9, 0, 10, 0, true},
		{"a crash just short of a minute up still counts", 5, 59 * time.Second, 6, 32 * time.Second, false},
		{"a minute up starts the count over", 9, time.Minute, 0, time.Second, false},
		{"an hour up starts the count over", 4, time.Hour, 0, time.Second, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, wait, giveUp := p.afterExit(tc.failures, tc.up)
			if n != tc.want || giveUp != tc.giveUp || !giveUp && wait != tc.wait {
				t.Fatalf("afterExit(%d, %s) = %d, %s, %v; want %d, %s, %v", tc.failures, tc.up, n, wait, giveUp, tc.want, tc.wait, tc.giveUp)
			}
		})
	}
	t.Run("the defaults are 1s, 1m, 1m and 10", func(t *testing.T) {
		if want := (RestartPolicy{time.Second, time.Minute, time.Minute, 10}); p != want {
			t.Fatalf("defaults %+v, want %+v", p, want)
		}
	})
	t.Run("a huge count does not overflow the wait", func(t *testing.T) {
		big := RestartPolicy{Delay: time.Second, MaxDelay: time.Minute, StableAfter: time.Minute, Limit: 1000}
		if _, wait, _ := big.afterExit(500, 0); wait != time.Minute {
			t.Fatalf("wait %s, want 1m", wait)
		}
	})
}
