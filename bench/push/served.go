package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/glenv/glenv/bench/internal/benchkit"
)

// How the bench sees that a push is served. Polling the environment every
// 2 ms through glenv's proxy (waitServed) is a load of its own: the bench's
// client, glenv's proxy, pasta and the old app (Python) answer 500
// requests a second on the same two cores while the new app starts, and
// the strict floor's start is timed with none of that running. So the
// goal's figure is taken with a detector that loads nothing while the new
// app starts: glenv writes the environment's state.json (its new SHA) by
// rename right before it switches traffic (internal/runtime/switch.go),
// the bench learns of that rename from inotify (a blocked read, no
// polling), and then sends ONE request through glenv's proxy; "served" is
// when that request returned the new commit, an upper bound of when glenv
// served it. Should the request beat the switch, it is sent again at once;
// confirms counts the requests. It often does: the proxy's swap follows the
// rename after the old app's supervision stopped (switch.go), and in 19 of
// 30 pushes (two runs, load 6–10) the old app answered the first request,
// in 2–5 ms, which the figure then holds on top of glenv's.
// Pushes alternate between the two detectors, so both figures come from
// the same run.

// switchWatch reports renames into an environment's runtime directory.
type switchWatch struct {
	fd     int
	state  string // the environment's state.json
	events chan struct{}
}

// watchSwitches watches dir (runtime/envs/<id> in glenv's data directory).
func watchSwitches(tb *benchkit.TB, dir string) *switchWatch {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	tb.Must(err)
	_, err = unix.InotifyAddWatch(fd, dir, unix.IN_MOVED_TO|unix.IN_CLOSE_WRITE)
	tb.Must(err)
	w := &switchWatch{fd: fd, state: filepath.Join(dir, "state.json"), events: make(chan struct{}, 1)}
	go func() {
		buf := make([]byte, 4096)
		for {
			if _, err := unix.Read(fd, buf); err != nil && err != unix.EINTR {
				return // closed
			}
			select {
			case w.events <- struct{}{}:
			default:
			}
		}
	}()
	return w
}

func (w *switchWatch) close() { unix.Close(w.fd) }

// sha is the SHA the environment's state.json names now.
func (w *switchWatch) sha() string {
	b, err := os.ReadFile(w.state)
	if err != nil {
		return ""
	}
	var st struct {
		SHA string `json:"sha"`
	}
	_ = json.Unmarshal(b, &st)
	return st.SHA
}

// waitSwitched returns once state.json names sha, then confirms through
// glenv's proxy that version is served and returns when the confirming
// request returned, and how many requests that took.
func (g *glenv) waitSwitched(tb *benchkit.TB, sha, version string, deadline time.Time) (time.Time, int) {
	for g.watch.sha() != sha {
		select {
		case <-g.watch.events:
		case <-time.After(time.Until(deadline)):
			tb.Fatalf("state.json never named %s; last deploy log:\n%s", sha, g.lastLog(tb))
		}
	}
	seen := time.Now()
	missed := ""
	c := &http.Client{Timeout: 5 * time.Second}
	for n := 1; ; n++ {
		t0 := time.Now()
		ok, what := g.askVersion(c, version)
		if ok {
			served := time.Now()
			g.polls = append(g.polls, fmt.Sprintf("switch seen %s, confirmed by request %d sent %s, took %s", seen.UTC().Format("15:04:05.000"),
				n, t0.UTC().Format("15:04:05.000"), served.Sub(t0).Round(100*time.Microsecond)))
			if missed != "" {
				g.polls = append(g.polls, "answered before the switch: "+missed)
			}
			if g.showLog {
				// The next request's time, for comparison (-log only).
				t1 := time.Now()
				g.pollOnce()
				g.polls = append(g.polls, fmt.Sprintf("the next request took %s", time.Since(t1).Round(100*time.Microsecond)))
			}
			return served, n
		}
		missed += fmt.Sprintf("[%s +%s %s]", t0.UTC().Format("15:04:05.000"), time.Since(t0).Round(100*time.Microsecond), what)
		if time.Now().After(deadline) {
			tb.Fatalf("switched to %s, but the proxy never served %q (last: %s)", sha, version, what)
		}
		if n >= 3 {
			time.Sleep(pollEvery) // not right behind the rename: poll as waitServed does
		}
	}
}
