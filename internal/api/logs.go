package api

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"

	"github.com/glenv/glenv/internal/activitylog"
	"github.com/glenv/glenv/internal/store"
)

// Logs are read a page at a time from a byte offset (?offset=, default 0):
// the answer is text/plain, and these headers say where to resume and
// whether more can come, so `activity:log --follow` and `environment:logs
// --follow` never read a byte twice nor miss one.
const (
	// HeaderNextOffset is the offset to ask for next.
	HeaderNextOffset = "X-Glenv-Next-Offset"
	// HeaderActivityState is the activity's state when the page was read:
	// once it is complete, failed or cancelled, an empty page is the end.
	HeaderActivityState = "X-Glenv-Activity-State"
)

func offsetParam(r *http.Request) (int64, error) {
	v := r.URL.Query().Get("offset")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%w: offset must be a number of bytes ≥ 0 (the %s of the previous page)", errBadRequest, HeaderNextOffset)
	}
	return n, nil
}

// activityLog answers a page of an activity's log from ?offset=.
func (a *API) activityLog(w http.ResponseWriter, r *http.Request) {
	offset, err := offsetParam(r)
	if err != nil {
		a.fail(w, r, "log", err)
		return
	}
	// The state is read before the log: a writer is closed before its
	// activity completes, so a page read after a final state is the end.
	act, ok := a.activity(w, r)
	if !ok {
		return
	}
	part, err := activitylog.Read(r.Context(), a.Store.Reader(), act.ID, offset)
	if err != nil {
		a.fail(w, r, fmt.Sprintf("log of activity %d", act.ID), err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set(HeaderNextOffset, strconv.FormatInt(part.Next, 10))
	w.Header().Set(HeaderActivityState, act.State)
	_, _ = io.WriteString(w, part.Text)
}

// appLog answers the running app's output from ?offset= (bytes), for
// environment:logs [--follow].
func (a *API) appLog(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		a.fail(w, r, "environment", err)
		return
	}
	env, err := store.GetEnvironmentByID(r.Context(), a.Store.Reader(), id)
	if err != nil {
		a.fail(w, r, fmt.Sprintf("environment %d", id), err)
		return
	}
	offset, err := offsetParam(r)
	if err != nil {
		a.fail(w, r, "log", err)
		return
	}
	if a.AppLogStream != nil {
		a.appLogStream(w, r, env, offset)
		return
	}
	var page []byte
	if a.AppLog != nil {
		page = readFrom(a.AppLog(id), offset, 4<<20)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set(HeaderNextOffset, strconv.FormatInt(offset+int64(len(page)), 10))
	_, _ = w.Write(page)
}

// readFrom reads up to limit bytes of a file from offset; nothing when the
// file does not exist (no app has run yet) or ends before offset.
func readFrom(path string, offset int64, limit int64) []byte {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return nil
	}
	page, _ := io.ReadAll(io.LimitReader(f, limit))
	return page
}

// ErrNoAppLog is an environment with nothing running to read output from:
// its log is empty (environment:logs then shows the deploy log).
var ErrNoAppLog = errors.New("no app runs yet")

// appLogStream answers from AppLogStream. With ?follow=1 the answer is
// the stream itself, flushed as it comes and without HeaderNextOffset
// (it ends when the app's pod does); without, a page from ?offset= of what
// the app wrote so far.
func (a *API) appLogStream(w http.ResponseWriter, r *http.Request, env store.Environment, offset int64) {
	follow := r.URL.Query().Get("follow") == "1"
	rc, err := a.AppLogStream(r.Context(), env, follow)
	if errors.Is(err, ErrNoAppLog) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set(HeaderNextOffset, strconv.FormatInt(offset, 10))
		return
	}
	if err != nil {
		writeErr(w, http.StatusBadGateway, Error{Error: err.Error()})
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if !follow {
		if _, err := io.CopyN(io.Discard, rc, offset); err != nil {
			w.Header().Set(HeaderNextOffset, strconv.FormatInt(offset, 10))
			return // the log is shorter than offset (a new pod): nothing new
		}
		page, _ := io.ReadAll(io.LimitReader(rc, 4<<20))
		w.Header().Set(HeaderNextOffset, strconv.FormatInt(offset+int64(len(page)), 10))
		_, _ = w.Write(page)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	flush := http.NewResponseController(w)
	buf := make([]byte, 32<<10)
	for {
		n, err := rc.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			_ = flush.Flush()
		}
		if err != nil {
			return
		}
	}
}
