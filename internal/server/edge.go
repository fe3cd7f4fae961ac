package server

import (
	"io"
	"net/http"
	"sync/atomic"
	"time"
)

// controlPlaneBodyWithin bounds how long a request to glenv itself may take
// to send its body: a client that drips one byte at a time would otherwise
// hold a connection and a goroutine for as long as it likes. Environment
// traffic is not bounded here (uploads to apps are the app's business), and
// the webhook receiver sets its own, shorter deadline.
const controlPlaneBodyWithin = 30 * time.Second

// bodyDeadline gives a request's body d to arrive. The deadline is lifted
// once the body has been read, so answers that stream for long (logs with
// --follow) are not cut. A handler that answers without reading the body
// (a refused token, say) closes the connection instead of letting net/http
// wait for the unread body before it answers.
func bodyDeadline(d time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		rc := http.NewResponseController(w)
		b := &deadlineBody{ReadCloser: r.Body}
		if err := rc.SetReadDeadline(time.Now().Add(d)); err == nil {
			b.lift = func() { _ = rc.SetReadDeadline(time.Time{}) }
		}
		r.Body = b
		next.ServeHTTP(&closeIfUnread{ResponseWriter: w, body: b}, r)
	})
}

type deadlineBody struct {
	io.ReadCloser
	eof  atomic.Bool
	lift func()
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && !b.eof.Swap(true) && b.lift != nil {
		b.lift()
	}
	return n, err
}

// closeIfUnread marks the answer Connection: close when the body was not
// read to its end by the time the answer starts.
type closeIfUnread struct {
	http.ResponseWriter
	body    *deadlineBody
	started bool
}

func (c *closeIfUnread) WriteHeader(code int) {
	if !c.started {
		c.started = true
		if !c.body.eof.Load() {
			c.Header().Set("Connection", "close")
		}
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *closeIfUnread) Write(p []byte) (int, error) {
	if !c.started {
		c.WriteHeader(http.StatusOK)
	}
	return c.ResponseWriter.Write(p)
}

// Flush keeps streaming answers streaming through the wrapper.
func (c *closeIfUnread) Flush() {
	if !c.started {
		c.WriteHeader(http.StatusOK)
	}
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection (deadlines).
func (c *closeIfUnread) Unwrap() http.ResponseWriter { return c.ResponseWriter }
