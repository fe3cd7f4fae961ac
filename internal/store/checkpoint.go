package store

import (
	"context"
	"database/sql"
	"os"
	"sync"
	"time"
)

// SQLite's WAL is copied back into the database file by a checkpoint. By
// default the connection whose commit pushes the WAL past 1,000 pages runs
// it, inside that commit: with glenv's one writer, an acknowledgement then
// waits for the checkpoint's copying and fsyncs (profiling: half the commit
// time; p99 at 500 deliveries/s 34–38 ms with it, 14–24 ms without). So
// the writer's automatic checkpoint is off (wal_autocheckpoint(0) in its
// DSN) and this connection of its own checkpoints in the background, which
// WAL mode allows alongside the writer and the readers.

// Thresholds of the background checkpoint, as WAL file sizes.
const (
	// checkpointAt is SQLite's own default (1,000 pages of 4 KiB).
	checkpointAt = 4 << 20
	// restartAt is a WAL that passive checkpoints could not bring back:
	// the writer starts the WAL again from its start only when a write
	// begins with every frame checkpointed, which writes back to back (or a
	// reader on an old snapshot) can keep from happening. The next
	// checkpoint then waits for the writer and readers (RESTART), so the
	// file does not grow without bound; the passive ones before it left
	// it little to copy, so writers wait briefly.
	restartAt = 4 * checkpointAt
	// walSizeLimit is the size a reset WAL is truncated back to
	// (journal_size_limit in the writer's DSN).
	walSizeLimit = restartAt
)

// checkpointer runs PRAGMA wal_checkpoint on its own connection: once a
// second while the WAL changes, and at once when it has grown by
// checkpointAt since the last checkpoint. A WAL that was checkpointed is
// rewritten from its start and keeps its size, so a change of size is
// growth, and a change of time alone is reuse.
type checkpointer struct {
	db       *sql.DB
	wal      string // path of the WAL file
	interval time.Duration
	every    time.Duration
	at       int64
	stop     chan struct{}
	done     chan struct{}
	once     sync.Once
	closeErr error
	// ran, when set, hears of every checkpoint (tests wait on it).
	ran func(started time.Time, mode string, log, done int, err error)
}

func startCheckpointer(dsn, dbPath string) (*checkpointer, error) {
	c, err := newCheckpointer(dsn, dbPath)
	if err != nil {
		return nil, err
	}
	go c.loop()
	return c, nil
}

// newCheckpointer opens the checkpoint connection; go c.loop() starts it.
func newCheckpointer(dsn, dbPath string) (*checkpointer, error) {
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	db.SetConnMaxIdleTime(0)
	return &checkpointer{db: db, wal: dbPath + "-wal", interval: 100 * time.Millisecond, every: time.Second,
		at: checkpointAt, stop: make(chan struct{}), done: make(chan struct{})}, nil
}

func (c *checkpointer) loop() {
	defer close(c.done)
	t := time.NewTicker(c.interval)
	defer t.Stop()
	var lastSize int64
	var lastMod, lastRun time.Time
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		fi, err := os.Stat(c.wal)
		if err != nil || fi.ModTime().Equal(lastMod) {
			continue // no WAL yet, or nothing written since the last checkpoint
		}
		grown := fi.Size()-lastSize >= c.at
		if !grown && time.Since(lastRun) < c.every {
			continue
		}
		mode := "PASSIVE"
		if fi.Size() >= restartAt {
			mode = "RESTART"
		}
		lastRun = time.Now()
		if c.checkpoint(mode) {
			// Writes during the checkpoint changed the time again: they
			// are caught at the next look.
			lastMod, lastSize = fi.ModTime(), fi.Size()
		}
	}
}

// checkpoint runs one checkpoint and reports whether it copied the whole
// WAL; a busy database or a reader still on old frames is simply tried
// again at the next look.
func (c *checkpointer) checkpoint(mode string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var busy, log, done int
	started := time.Now()
	err := c.db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(`+mode+`)`).Scan(&busy, &log, &done)
	if c.ran != nil {
		c.ran(started, mode, log, done, err)
	}
	return err == nil && busy == 0 && log == done
}

// close stops the loop (a checkpoint under way finishes first) and closes
// the connection; it may be called again.
func (c *checkpointer) close() error {
	c.once.Do(func() {
		close(c.stop)
		<-c.done
		c.closeErr = c.db.Close()
	})
	return c.closeErr
}
