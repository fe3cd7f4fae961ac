package proxy

import (
	"sync"
	"time"
)

// watchdog starts watching the client of each front exchange that lasts
// longer than watchAfter (frontConn.watchClient). It is one ticker for the
// whole Front, running while exchanges come, where each request used to
// arm and stop a timer of its own: a timer that becomes the earliest of
// its P's timers wakes another thread to poll for it
// (runtime.wakeNetPoller), and under bench/proxy's paced load about one
// request in four paid that thread wakeup on this 2-core machine. The
// ticker costs one wakeup per watchAfter at most, however many requests
// pass meanwhile. An exchange is watched between watchAfter and twice
// that after it began.
type watchdog struct {
	mu      sync.Mutex
	due     map[*frontConn]time.Time // exchanges not yet watched, and when each began
	ticking bool
	onStop  func() // tests: the ticker stopped
}

// watchdogQuiet is how many ticks in a row with no exchange in progress
// stop the ticker (100 ms); the next exchange starts it again.
const watchdogQuiet = 20

func newWatchdog() *watchdog { return &watchdog{due: map[*frontConn]time.Time{}} }

// add has fc's client watched if its exchange, beginning now, lasts.
func (w *watchdog) add(fc *frontConn) {
	now := time.Now()
	w.mu.Lock()
	w.due[fc] = now
	start := !w.ticking
	w.ticking = true
	w.mu.Unlock()
	if start {
		go w.run()
	}
}

// remove forgets fc's exchange (it ended, watched or not).
func (w *watchdog) remove(fc *frontConn) {
	w.mu.Lock()
	delete(w.due, fc)
	w.mu.Unlock()
}

func (w *watchdog) run() {
	t := time.NewTicker(watchAfter)
	defer t.Stop()
	var late []*frontConn
	quiet := 0
	for now := range t.C {
		w.mu.Lock()
		if len(w.due) == 0 {
			if quiet++; quiet >= watchdogQuiet {
				w.ticking = false
				onStop := w.onStop
				w.mu.Unlock()
				if onStop != nil {
					onStop()
				}
				return
			}
		} else {
			quiet = 0
		}
		for fc, began := range w.due {
			if now.Sub(began) >= watchAfter {
				late = append(late, fc)
				delete(w.due, fc)
			}
		}
		w.mu.Unlock()
		for _, fc := range late {
			go fc.watchClient() // it checks that fc's exchange still runs
		}
		clear(late)
		late = late[:0]
	}
}
