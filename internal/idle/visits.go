package idle

import (
	"context"
	"database/sql"
	"log/slog"
	"sync"
	"time"

	"github.com/glenv/glenv/internal/store"
)

// Visits is the last counted request per environment host, kept in memory
// on the request path (a map write under a mutex) and written to the
// database by Flush, at most once per environment per flush interval.
// Only hosts of existing environments are recorded (the proxy records
// after it found a backend or the environment), and entries written and
// older than keepFlushed are dropped, so the map holds at most the
// environments visited recently.
type Visits struct {
	now func() time.Time

	mu   sync.Mutex
	last map[string]visit
}

type visit struct {
	at    time.Time
	dirty bool // not written yet
}

// keepFlushed is how long a written entry stays: long enough that an idle
// pass that read the database just before a flush still sees it here.
const keepFlushed = 5 * time.Minute

// NewVisits returns an empty record with the clock now (time.Now when nil).
func NewVisits(now func() time.Time) *Visits {
	if now == nil {
		now = time.Now
	}
	return &Visits{now: now, last: map[string]visit{}}
}

// Seen records a counted request to host now.
func (v *Visits) Seen(host string) {
	at := v.now()
	v.mu.Lock()
	v.last[host] = visit{at: at, dirty: true}
	v.mu.Unlock()
}

// Last is the last counted request to host this process still remembers
// (zero when none).
func (v *Visits) Last(host string) time.Time {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.last[host].at
}

// Flush writes the requests not written yet; a failed write keeps them for
// the next flush.
func (v *Visits) Flush(ctx context.Context, st *store.Store) error {
	now := v.now()
	batch := map[string]time.Time{}
	v.mu.Lock()
	for host, e := range v.last {
		switch {
		case e.dirty:
			batch[host] = e.at
		case now.Sub(e.at) > keepFlushed:
			delete(v.last, host)
		}
	}
	v.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	err := st.Tx(ctx, func(tx *sql.Tx) error { return store.RecordRequests(ctx, tx, batch) })
	if err != nil {
		return err
	}
	v.mu.Lock()
	for host, at := range batch {
		if e, ok := v.last[host]; ok && e.at.Equal(at) {
			v.last[host] = visit{at: at}
		}
	}
	v.mu.Unlock()
	return nil
}

// Run flushes every interval until ctx ends, then once more.
func (v *Visits) Run(ctx context.Context, st *store.Store, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := v.Flush(fctx, st); err != nil {
				log.Warn("record last requests", "err", err)
			}
			cancel()
			return
		case <-t.C:
			if err := v.Flush(ctx, st); err != nil && ctx.Err() == nil {
				log.Warn("record last requests", "err", err)
			}
		}
	}
}
