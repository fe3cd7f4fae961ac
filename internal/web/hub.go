package web

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/glenv/glenv/internal/store"
)

// Hub is the change feed of environment states. jobs.Environments tells it
// of a change after the commit (Changed), and it reads the database every
// PollInterval for changes made by another replica; each change reaches
// every subscriber once.
//
// A subscriber's buffer is bounded: one too far behind is dropped (its
// channel closed), so a slow browser never holds the feed or a deploy up;
// it reconnects and resumes from its Last-Event-ID.
type Hub struct {
	store *store.Store
	log   *slog.Logger
	// PollInterval is how often the database is read (default 1 s).
	PollInterval time.Duration

	pokes chan int64

	mu     sync.Mutex
	subs   map[*Sub]struct{}
	sent   map[int64]time.Time // environment → the updated_at last published, within the overlap
	cursor time.Time
}

// SubBuffer is how many changes a subscriber may fall behind before it is dropped.
const SubBuffer = 64

// overlap is how far back each poll reads again: a transaction that
// stamped updated_at before another but committed after it is still seen.
const overlap = 5 * time.Second

// Sub is one subscriber (one open event stream).
type Sub struct {
	C chan store.Environment
}

// NewHub returns a hub on st; Run starts it.
func NewHub(st *store.Store, log *slog.Logger) *Hub {
	return &Hub{store: st, log: log, PollInterval: time.Second, pokes: make(chan int64, 1024),
		subs: map[*Sub]struct{}{}, sent: map[int64]time.Time{}, cursor: time.Now().Add(-overlap)}
}

// Changed is told that an environment's state changed and is committed.
// It never blocks: when its queue is full, the next poll finds the change.
func (h *Hub) Changed(envID int64) {
	select {
	case h.pokes <- envID:
	default:
	}
}

// Subscribe opens a subscription; Unsubscribe closes it.
func (h *Hub) Subscribe() *Sub {
	s := &Sub{C: make(chan store.Environment, SubBuffer)}
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	return s
}

// Unsubscribe ends s (it may have been dropped already).
func (h *Hub) Unsubscribe(s *Sub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[s]; ok {
		delete(h.subs, s)
		close(s.C)
	}
}

// Subscribers is how many streams are open.
func (h *Hub) Subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// Run publishes changes until ctx ends.
func (h *Hub) Run(ctx context.Context) {
	t := time.NewTicker(h.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case id := <-h.pokes:
			if h.Subscribers() == 0 {
				continue // nobody to tell: no read per change of every delivery
			}
			e, err := store.GetEnvironmentAny(ctx, h.store.Reader(), id)
			if err != nil {
				h.log.Debug("dashboard feed: read environment", "environment_id", id, "err", err)
				continue
			}
			h.publish(e)
		case <-t.C:
			if h.Subscribers() == 0 {
				h.rest()
				continue
			}
			h.poll(ctx)
		}
	}
}

// poll reads environments updated since the cursor (with overlap).
func (h *Hub) poll(ctx context.Context) {
	h.mu.Lock()
	since := h.cursor.Add(-overlap)
	h.mu.Unlock()
	envs, err := store.EnvironmentsUpdatedSince(ctx, h.store.Reader(), since, 1000)
	if err != nil {
		h.log.Debug("dashboard feed: poll", "err", err)
		return
	}
	for _, e := range envs {
		h.publish(e)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, e := range envs {
		if e.UpdatedAt.After(h.cursor) {
			h.cursor = e.UpdatedAt
		}
	}
	// Only changes within the overlap can be seen again: forget the rest,
	// so sent stays as small as one overlap's changes.
	for id, at := range h.sent {
		if at.Before(h.cursor.Add(-2 * overlap)) {
			delete(h.sent, id)
		}
	}
}

// rest keeps the cursor at the overlap while nobody subscribes, so an
// idle dashboard costs no query a second per replica (each read every
// environment changed in the overlap: a whole burst of deliveries'), and a
// subscriber who arrives still gets what changed within it.
func (h *Hub) rest() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cursor = time.Now().Add(-overlap)
	clear(h.sent)
}

// publish sends e to every subscriber, once per updated_at.
func (h *Hub) publish(e store.Environment) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if at, ok := h.sent[e.ID]; ok && !e.UpdatedAt.After(at) {
		return
	}
	h.sent[e.ID] = e.UpdatedAt
	for s := range h.subs {
		select {
		case s.C <- e:
		default:
			// Too far behind: dropped; the browser reconnects and resumes.
			delete(h.subs, s)
			close(s.C)
		}
	}
}
