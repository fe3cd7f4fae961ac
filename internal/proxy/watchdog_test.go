package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The watchdog watches the clients of all slow exchanges at once, its
// ticker stops once no exchange is in progress, and the next slow
// exchanges start it again and are watched again: nothing ticks on an
// idle Front, and nothing slow goes unwatched.
func TestTheWatchdogStopsWhenIdleAndWatchesAgain(t *testing.T) {
	const n = 4
	var watchedNow atomic.Int64
	allWatched := make(chan struct{}, 1)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			select {
			case <-allWatched:
				allWatched <- struct{}{} // for the other slow requests of the round
			case <-time.After(10 * time.Second):
				http.Error(w, "not every client was watched", http.StatusInternalServerError)
				return
			}
		}
		io.WriteString(w, "answer to "+r.URL.Path)
	}))
	defer app.Close()
	p := New(Options{EnvDomain: "localhost", Backends: backends{"main--app": strings.TrimPrefix(app.URL, "http://")}})
	p.onWatch = func() {
		if watchedNow.Add(1) == n {
			allWatched <- struct{}{}
		}
	}
	f, addr := startFrontOf(t, p, nil)
	stopped := make(chan struct{}, 1)
	f.watchdog.mu.Lock()
	f.watchdog.onStop = func() { stopped <- struct{}{} }
	f.watchdog.mu.Unlock()

	for round := range 2 {
		watchedNow.Store(0)
		select {
		case <-allWatched: // the last round's token
		default:
		}
		answers := make(chan string, n)
		for range n {
			go func() {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					answers <- err.Error()
					return
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(20 * time.Second))
				io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: main--app.localhost\r\n\r\n")
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil {
					answers <- err.Error()
					return
				}
				body, _ := io.ReadAll(resp.Body)
				answers <- resp.Status + " " + string(body)
			}()
		}
		for range n {
			if got := <-answers; got != "200 OK answer to /slow" {
				t.Fatalf("round %d: %q", round, got)
			}
		}
		select {
		case <-stopped:
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: the watchdog still ticks with no exchange in progress", round)
		}
		f.watchdog.mu.Lock()
		ticking, due := f.watchdog.ticking, len(f.watchdog.due)
		f.watchdog.mu.Unlock()
		if ticking || due != 0 {
			t.Fatalf("round %d: stopped, yet ticking %v with %d exchanges due", round, ticking, due)
		}
	}
}
