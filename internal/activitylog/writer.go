package activitylog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/glenv/glenv/internal/store"
)

// Options tune the writers of a Logs; zero values take the defaults.
type Options struct {
	// FlushSize flushes as soon as this many bytes wait (default 64 KiB).
	FlushSize int
	// FlushInterval flushes what waits at least this often (default 200ms).
	FlushInterval time.Duration
	// MaxBuffer bounds what one writer holds in memory; lines past it are
	// dropped until the next flush (default 1 MiB).
	MaxBuffer int
	// MaxSize keeps each log within this many bytes, its tail (0 = no cap;
	// the server passes --activity-log-max-size).
	MaxSize int64
	// FlushTimeout bounds one flush, and Close's final one (default 10s).
	FlushTimeout time.Duration
	Logger       *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.FlushSize <= 0 {
		o.FlushSize = 64 << 10
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = 200 * time.Millisecond
	}
	if o.MaxBuffer <= 0 {
		o.MaxBuffer = 1 << 20
	}
	o.MaxBuffer = max(o.MaxBuffer, o.FlushSize)
	if o.FlushTimeout <= 0 {
		o.FlushTimeout = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Logs makes writers for activities' logs in one store.
type Logs struct {
	st   *store.Store
	opts Options
}

// New returns Logs writing to st.
func New(st *store.Store, opts Options) *Logs {
	return &Logs{st: st, opts: opts.withDefaults()}
}

// Writer is one activity's log being written. Line never blocks on the
// database; Close flushes what is left. A Writer is safe for concurrent use.
type Writer struct {
	l  *Logs
	id int64

	mu      sync.Mutex
	buf     strings.Builder
	pending string // a flush that failed, written before buf next time
	// pendingDrops is the count in the drop marker pending ends with (0: none).
	pendingDrops int
	dropping     bool // buffer was full: drop until the next flush takes it
	dropped      int  // lines dropped since the last flush took the buffer
	closed       bool

	kick    chan struct{} // buffer reached FlushSize
	flushes chan chan error
	closing chan struct{}
	done    chan struct{}
	err     error // the final flush's failure, for Close

	sinceCap int64 // bytes written since the log was last capped
}

// Writer starts a writer for activity id's log. Call Close when the activity
// is done, before marking it complete, so a follower that sees it complete
// has seen the whole log.
func (l *Logs) Writer(id int64) *Writer {
	w := &Writer{l: l, id: id, kick: make(chan struct{}, 1), flushes: make(chan chan error),
		closing: make(chan struct{}), done: make(chan struct{})}
	go w.run()
	return w
}

// Line appends text to the log as it is (callers end lines with "\n"). It
// returns at once: when the buffer is full it drops the text and the log
// later shows how many lines were dropped there. After Close it does
// nothing.
func (w *Writer) Line(text string) {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	if w.dropping || w.buf.Len()+len(w.pending)+len(text) > w.l.opts.MaxBuffer {
		w.dropping = true
		w.dropped++
		w.mu.Unlock()
		return
	}
	w.buf.WriteString(text)
	full := w.buf.Len() >= w.l.opts.FlushSize
	w.mu.Unlock()
	if full {
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
}

// Write lets a Writer stand where an io.Writer is wanted (a process's
// output); it never fails.
func (w *Writer) Write(p []byte) (int, error) {
	w.Line(string(p))
	return len(p), nil
}

// Close flushes what is buffered and stops the writer. It waits for the
// final flush at most until ctx ends (the flush goes on, bounded by
// FlushTimeout). It returns an error when that flush failed: its lines
// are lost.
func (w *Writer) Close(ctx context.Context) error {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.closing)
	}
	w.mu.Unlock()
	select {
	case <-w.done:
		return w.err
	case <-ctx.Done():
		return fmt.Errorf("close log of activity %d: %w", w.id, ctx.Err())
	}
}

// Flush stores what is buffered now and waits for it (at most until ctx
// ends), for a caller that wants its lines visible before it goes on.
func (w *Writer) Flush(ctx context.Context) error {
	reply := make(chan error, 1)
	select {
	case w.flushes <- reply:
	case <-w.done:
		return w.err
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (w *Writer) run() {
	defer close(w.done)
	t := time.NewTicker(w.l.opts.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-w.kick:
		case <-t.C:
		case reply := <-w.flushes:
			reply <- w.flush()
			continue
		case <-w.closing:
			w.err = w.finalFlush()
			return
		}
		_ = w.flush()
	}
}

// dropMarker stands in the log for n lines dropped there.
func dropMarker(n int) string {
	return fmt.Sprintf("[… %d lines dropped: glenv could not store the log as fast as it was written …]\n", n)
}

// take moves what waits out of the buffer, ending with the marker for lines
// dropped after it, and says how many lines that final marker counts. Data
// given back by a failed flush that ended with a marker, followed by
// nothing but more drops, gets one marker with the sum: a long outage does
// not pile up markers.
func (w *Writer) take() (data string, tailDrops int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	data, tailDrops = w.pending, w.pendingDrops
	if w.buf.Len() > 0 {
		data += w.buf.String()
		tailDrops = 0
	}
	if w.dropped > 0 {
		if tailDrops > 0 {
			data = strings.TrimSuffix(data, dropMarker(tailDrops))
		}
		tailDrops += w.dropped
		data += dropMarker(tailDrops)
		w.dropped, w.dropping = 0, false
	}
	w.pending, w.pendingDrops = "", 0
	w.buf.Reset()
	return data, tailDrops
}

// giveBack keeps data that failed to flush, ahead of what came since.
func (w *Writer) giveBack(data string, tailDrops int) {
	w.mu.Lock()
	w.pending, w.pendingDrops = data, tailDrops
	w.mu.Unlock()
}

func (w *Writer) flush() error {
	data, tailDrops := w.take()
	if data == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), w.l.opts.FlushTimeout)
	defer cancel()
	err := w.save(ctx, data)
	if errors.Is(err, store.ErrNotFound) {
		// The activity is gone (retention forgot it): nobody can read
		// these lines any more, and retrying would never succeed.
		w.l.opts.Logger.Debug("activity log: the activity is gone; dropping its late lines", "activity", w.id, "bytes", len(data))
		return nil
	}
	if err != nil {
		w.giveBack(data, tailDrops)
		w.l.opts.Logger.Warn("activity log: flush failed; keeping the lines to retry", "activity", w.id, "bytes", len(data), "err", err)
		return err
	}
	return nil
}

// finalFlush retries until FlushTimeout: nothing comes after it.
func (w *Writer) finalFlush() error {
	deadline := time.Now().Add(w.l.opts.FlushTimeout)
	wait := 50 * time.Millisecond
	for {
		err := w.flush()
		if err == nil {
			return nil
		}
		if time.Now().Add(wait).After(deadline) {
			return fmt.Errorf("activity %d: the end of its log could not be stored: %w", w.id, err)
		}
		time.Sleep(wait) // backoff between retries against a failing database, not synchronisation
		wait = min(2*wait, time.Second)
	}
}

// save appends data as chunks of at most FlushSize and, once enough has
// been written, cuts the log's head to MaxSize, in one short transaction
// that lets urgent writes (webhook acknowledgements) go first.
func (w *Writer) save(ctx context.Context, data string) error {
	pieces := split(store.CleanLog(data), w.l.opts.FlushSize)
	return w.l.st.TxDeferrable(ctx, func(tx *sql.Tx) error {
		for _, p := range pieces {
			if _, err := store.AppendLog(ctx, tx, w.id, p); err != nil {
				return fmt.Errorf("append to the log of activity %d: %w", w.id, err)
			}
		}
		w.sinceCap += int64(len(data))
		// Capping on every flush would cost a query each time; a quarter of
		// the cap between checks keeps the log within 1.25 × MaxSize.
		if max := w.l.opts.MaxSize; max > 0 && w.sinceCap > max/4 {
			if _, err := store.CapLog(ctx, tx, w.id, max); err != nil {
				return fmt.Errorf("cap the log of activity %d: %w", w.id, err)
			}
			w.sinceCap = 0
		}
		return nil
	})
}

// split cuts valid UTF-8 text into pieces of at most size bytes (a rune
// longer than what is left starts the next piece; one wider than size goes
// whole), so that no chunk is larger than FlushSize however much piled up
// between flushes: the log cap drops whole chunks, and keeps whole the one
// it cuts through.
func split(text string, size int) []string {
	var out []string
	for len(text) > size {
		n := size
		for n > 0 && !utf8.RuneStart(text[n]) {
			n--
		}
		if n == 0 { // one rune wider than size: it goes whole
			for n = size; n < len(text) && !utf8.RuneStart(text[n]); n++ {
			}
		}
		out = append(out, text[:n])
		text = text[n:]
	}
	if text != "" || len(out) == 0 {
		out = append(out, text)
	}
	return out
}
