package web

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/glenv/glenv/internal/activitylog"
	"github.com/glenv/glenv/internal/auth"
	"github.com/glenv/glenv/internal/store"
)

// writeTimeout is how long one event may take to reach a browser: a
// client that reads no faster is dropped and resumes on reconnect.
const writeTimeout = 10 * time.Second

// events writes one Server-Sent Events stream.
type events struct {
	rw http.ResponseWriter
	rc *http.ResponseController
}

func startEvents(rw http.ResponseWriter) *events {
	h := rw.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	rw.WriteHeader(http.StatusOK)
	e := &events{rw: rw, rc: http.NewResponseController(rw)}
	_ = e.flush()
	return e
}

// send writes one event: data may hold newlines (each line its own data:
// field, joined again by the browser).
func (e *events) send(name, id, data string) error {
	var b bytes.Buffer
	if id != "" {
		fmt.Fprintf(&b, "id: %s\n", id)
	}
	if name != "" {
		fmt.Fprintf(&b, "event: %s\n", name)
	}
	for _, line := range strings.Split(data, "\n") {
		b.WriteString("data: ")
		b.WriteString(strings.TrimSuffix(line, "\r"))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	return e.write(b.Bytes())
}

// heartbeat is a comment line: it keeps proxies from closing a quiet
// stream and finds a browser that went away.
func (e *events) heartbeat() error { return e.write([]byte(": heartbeat\n\n")) }

func (e *events) write(p []byte) error {
	_ = e.rc.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := e.rw.Write(p); err != nil {
		return err
	}
	return e.flush()
}

func (e *events) flush() error { return e.rc.Flush() }

type streamFunc func(rw http.ResponseWriter, q *request)

// stream authenticates an event stream (no sign-in redirect: an
// EventSource cannot follow one into GitLab).
func (w *Web) stream(h streamFunc) http.HandlerFunc {
	return func(rw http.ResponseWriter, r *http.Request) {
		p, err := w.Auth.Authenticate(r.Context(), r, false)
		if err != nil {
			http.Error(rw, "sign in first: "+err.Error(), http.StatusUnauthorized)
			return
		}
		h(rw, &request{r: r.WithContext(auth.WithPrincipal(r.Context(), p)), p: p, w: w})
	}
}

// lastEventID is where a stream resumes: the browser's Last-Event-ID on a
// reconnect, else the page's ?from=.
func lastEventID(r *http.Request) (int64, error) {
	v := r.Header.Get("Last-Event-ID")
	if v == "" {
		v = r.URL.Query().Get("from")
	}
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("Last-Event-ID / from: %q must be a number ≥ 0", v)
	}
	return n, nil
}

// activityLogEvents streams an activity's log from the last offset the
// browser has (the same pages `activity:log --follow` reads), then an
// "end" event with the activity's final state. Each event's id is the
// offset after it, so a reconnect resumes without a line twice or missed.
func (w *Web) activityLogEvents(rw http.ResponseWriter, q *request) {
	a, ok := w.readableActivityStream(rw, q)
	if !ok {
		return
	}
	offset, err := lastEventID(q.r)
	if err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	ev := startEvents(rw)
	poll := time.NewTicker(w.LogPoll)
	defer poll.Stop()
	beat := time.NewTicker(w.Heartbeat)
	defer beat.Stop()
	for {
		// The state is read before the log: a writer is closed before its
		// activity completes, so an empty page after a final state is the end.
		state, err := activityState(q.ctx(), w.Store, a.ID)
		if err != nil {
			return
		}
		part, err := activitylog.Read(q.ctx(), w.Store.Reader(), a.ID, offset)
		if err != nil {
			return
		}
		if part.Text != "" {
			if ev.send("log", strconv.FormatInt(part.Next, 10), template.HTMLEscapeString(part.Text)) != nil {
				return
			}
			offset = part.Next
			continue
		}
		if finished(state) {
			_ = ev.send("end", strconv.FormatInt(offset, 10), stateBadge(state))
			return
		}
		select {
		case <-q.ctx().Done():
			return
		case <-poll.C:
		case <-beat.C:
			if ev.heartbeat() != nil {
				return
			}
		}
	}
}

func (w *Web) readableActivityStream(rw http.ResponseWriter, q *request) (store.Activity, bool) {
	id, err := strconv.ParseInt(q.r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		http.Error(rw, "id: must be a positive number", http.StatusBadRequest)
		return store.Activity{}, false
	}
	a, err := store.GetActivity(q.ctx(), w.Store.Reader(), id)
	if err != nil {
		http.Error(rw, fmt.Sprintf("activity %d: %v", id, err), http.StatusNotFound)
		return a, false
	}
	if !q.can(auth.ActRead, w.integrationOf(q.ctx(), a.IntegrationName)) {
		http.Error(rw, fmt.Sprintf("activity %d needs the read role on its integration", id), http.StatusForbidden)
		return a, false
	}
	return a, true
}

// appLogEvents streams an environment's app output from an offset.
func (w *Web) appLogEvents(rw http.ResponseWriter, q *request) {
	id, err := strconv.ParseInt(q.r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		http.Error(rw, "id: must be a positive number", http.StatusBadRequest)
		return
	}
	e, err := store.GetEnvironmentByID(q.ctx(), w.Store.Reader(), id)
	if err != nil {
		http.Error(rw, fmt.Sprintf("environment %d: %v", id, err), http.StatusNotFound)
		return
	}
	if !q.can(auth.ActRead, w.integrationOf(q.ctx(), e.IntegrationName)) {
		http.Error(rw, fmt.Sprintf("environment %d needs the read role on its integration", id), http.StatusForbidden)
		return
	}
	offset, err := lastEventID(q.r)
	if err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	ev := startEvents(rw)
	poll := time.NewTicker(w.LogPoll)
	defer poll.Stop()
	beat := time.NewTicker(w.Heartbeat)
	defer beat.Stop()
	for {
		if w.AppLog != nil {
			if page := readFrom(w.AppLog(id), offset, 256<<10); len(page) > 0 {
				offset += int64(len(page))
				if ev.send("applog", strconv.FormatInt(offset, 10), template.HTMLEscapeString(string(page))) != nil {
					return
				}
				continue
			}
		}
		select {
		case <-q.ctx().Done():
			return
		case <-poll.C:
		case <-beat.C:
			if ev.heartbeat() != nil {
				return
			}
		}
	}
}

// environmentEvents streams state changes of the environments the caller
// may read: for each, "env-<id>" carries the list's row and
// "env-<id>-state" the state badge (htmx swaps them in place). Event ids
// are updated_at in microseconds; a reconnect first gets what changed
// since its Last-Event-ID.
func (w *Web) environmentEvents(rw http.ResponseWriter, q *request) {
	since, err := lastEventID(q.r)
	if err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	if w.Hub == nil {
		http.Error(rw, "live updates are off", http.StatusServiceUnavailable)
		return
	}
	sub := w.Hub.Subscribe()
	defer w.Hub.Unsubscribe(sub)
	ev := startEvents(rw)
	readable := map[string]bool{}
	ins := map[string]store.Integration{}
	send := func(e store.Environment) bool {
		ok, done := readable[e.IntegrationName]
		if !done {
			in := w.integrationOf(q.ctx(), e.IntegrationName)
			ok = q.can(auth.ActRead, in)
			readable[e.IntegrationName], ins[e.IntegrationName] = ok, in
		}
		if !ok {
			return true
		}
		return w.sendEnvironment(ev, q, e, ins[e.IntegrationName]) == nil
	}
	if since > 0 {
		missed, err := store.EnvironmentsUpdatedSince(q.ctx(), w.Store.Reader(), time.UnixMicro(since+1), 500)
		if err != nil {
			return
		}
		for _, e := range missed {
			if !send(e) {
				return
			}
		}
	}
	beat := time.NewTicker(w.Heartbeat)
	defer beat.Stop()
	for {
		select {
		case <-q.ctx().Done():
			return
		case e, open := <-sub.C:
			if !open {
				return // dropped for being slow: the browser reconnects and resumes
			}
			if !send(e) {
				return
			}
		case <-beat.C:
			if ev.heartbeat() != nil {
				return
			}
		}
	}
}

func (w *Web) sendEnvironment(ev *events, q *request, e store.Environment, in store.Integration) error {
	var last *store.Activity
	if acts, err := store.LastActivities(q.ctx(), w.Store.Reader(), []int64{e.ID}); err == nil {
		if a, ok := acts[e.ID]; ok {
			last = &a
		}
	}
	var b bytes.Buffer
	if err := w.pages["environments"].ExecuteTemplate(&b, "envrow", w.row(e, in, last)); err != nil {
		return err
	}
	id := strconv.FormatInt(e.UpdatedAt.UnixMicro(), 10)
	if err := ev.send(fmt.Sprintf("env-%d", e.ID), id, b.String()); err != nil {
		return err
	}
	return ev.send(fmt.Sprintf("env-%d-state", e.ID), id, stateBadge(e.State))
}

// stateBadge is the HTML of a state.
func stateBadge(state string) string {
	s := template.HTMLEscapeString(state)
	return `<span class="state state-` + s + `" data-state="` + s + `">` + s + `</span>`
}
