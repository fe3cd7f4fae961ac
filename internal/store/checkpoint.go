package store

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
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
//
// A background (PASSIVE) checkpoint copies what was committed when it
// began; under steady writes more has been committed by the time it ends,
// so it never catches up, and the writer starts the WAL again from its
// start only when a write begins with every frame copied. The WAL must be
// reset now and then, and that is the one moment the writer waits: the
// checkpointer copies all it can in the background, then the little
// committed meanwhile on the writer's own connection, between two of its
// transactions (it waits for no reader and sleeps in no busy handler), and
// the writer's next transaction resets the WAL. A RESTART checkpoint, which
// blocks the writer until every reader is done with the WAL and copies the
// whole backlog meanwhile, is kept for a WAL that readers kept from being
// reset that way. (It used to be chosen by the WAL file's size, which the
// file keeps once it has reached it: every checkpoint became a RESTART,
// and at 500 deliveries/s the writer stopped for 65 ms or more every
// second, the whole p99 of an acknowledgement.)

// Thresholds of the checkpointer.
//
// A reset is the writer's one stall, and SQLite makes it cost fsyncs on
// the acknowledgements' path: the writer's pass syncs the WAL and the
// database file when it has frames to copy, and the first commit after
// the reset syncs the WAL's new header (walFrames, "Sync the header",
// whatever the synchronous setting short of OFF). That is 3 fsyncs, 5 ms
// each at the median on the test machine's disk and 26 ms at the 90th
// percentile when other programs write (strace -T during bench/ack). The
// share of acknowledgements such a stall delays is about stall × WAL
// bytes per second / resetAt: at 500 deliveries/s glenv writes ≈ 16 MB of
// WAL a second (31 KB a delivery, ack and processing: strace of bench/ack),
// so at 16 MiB a 20 ms stall met 2 % of the acknowledgements — more than
// the p99 — and at 64 MiB it meets 0.5 %. Measured since (bench/ack
// -stalls, 500 deliveries/s): ≈ 20 MB of WAL a second (5,000 frames), so
// a reset every 3.3 s at 64 MiB, in every 4-second round, and the
// writer's pass of a reset took 22–188 ms when other programs wrote to
// the disk (one device flush costs 10–170 ms there): one reset alone put
// that round's p99 above 10 ms. At 256 MiB a reset comes every 13 s of
// sustained load; below that rate the background checkpoint catches up
// between commits and the WAL restarts at no cost.
const (
	// checkpointAt is how much the WAL file grows between two background
	// checkpoints at most (SQLite's own default: 1,000 pages of 4 KiB).
	checkpointAt = 4 << 20
	// resetAt is how much the WAL may hold (frames × page size, whatever
	// its file's size) before it is reset. Fewer resets cost the writer
	// fewer waits; a page written many times between two checkpoints is
	// copied once.
	resetAt = 256 << 20
	// restartAt is a WAL that resets could not bring back (a reader on an
	// old snapshot at each try): the next checkpoint waits for the writer
	// and the readers (RESTART), so the WAL does not grow without bound.
	restartAt = 2 * resetAt
	// walSizeLimit is the size a reset WAL file is truncated back to
	// (journal_size_limit in the writer's DSN). It is above what the file
	// reaches between two resets, so a reset keeps the file and the WAL is
	// written again over its own blocks: SQLite truncates in the first
	// commit after a reset, an acknowledgement's, and truncating a file
	// whose pages are still being written back waited 6–53 ms there
	// (strace -T). Only a WAL that grew towards restartAt is cut back.
	walSizeLimit = restartAt
)

// checkpointer runs PRAGMA wal_checkpoint on its own connection: once a
// second while the WAL changes, and at once when it has grown by
// checkpointAt since the last checkpoint; and resets the WAL (see above)
// once it holds resetAt.
//
// "The WAL changed" is PRAGMA data_version, not the WAL file's time: a
// commit writes its frames (the file's time changes) before it publishes
// them in the wal-index, so a checkpoint that began between the two copied
// everything but that commit, and the loop, seeing the time it had read,
// took the commit as copied and left it in the WAL until the next write
// (and a file system whose clock ticks coarser than commits arrive hides
// a commit the same way). data_version changes with every commit another
// connection made since this one last looked, whatever the clock.
type checkpointer struct {
	db *sql.DB
	// writer is the store's one writing connection (nil: never reset on
	// it, as in tests of the background checkpoint alone).
	writer   *sql.DB
	wal      string // path of the WAL file
	interval time.Duration
	every    time.Duration
	at       int64
	// resetFrames and restartFrames are resetAt and restartAt in frames.
	resetFrames, restartFrames int
	stop                       chan struct{}
	done                       chan struct{}
	once                       sync.Once
	closeErr                   error
	// ran, when set, hears of every checkpoint (tests wait on it); on
	// names the connection: "background" or "writer".
	ran func(started time.Time, on, mode string, log, done int, err error)
}

func startCheckpointer(dsn, dbPath string, writer *sql.DB) (*checkpointer, error) {
	c, err := newCheckpointer(dsn, dbPath, writer)
	if err != nil {
		return nil, err
	}
	go c.loop()
	return c, nil
}

// newCheckpointer opens the checkpoint connection; go c.loop() starts it.
func newCheckpointer(dsn, dbPath string, writer *sql.DB) (*checkpointer, error) {
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	db.SetConnMaxIdleTime(0)
	page := int64(4096)
	if err := db.QueryRow(`PRAGMA page_size`).Scan(&page); err != nil || page <= 0 {
		page = 4096
	}
	return &checkpointer{db: db, writer: writer, wal: dbPath + "-wal", interval: 100 * time.Millisecond, every: time.Second,
		at: checkpointAt, resetFrames: int(resetAt / page), restartFrames: int(restartAt / page),
		stop: make(chan struct{}), done: make(chan struct{})}, nil
}

func (c *checkpointer) loop() {
	defer close(c.done)
	t := time.NewTicker(c.interval)
	defer t.Stop()
	var lastSize, lastVersion int64
	var lastRun time.Time
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		fi, err := os.Stat(c.wal)
		if err != nil {
			continue // no WAL yet
		}
		version, err := c.dataVersion()
		if err != nil || version == lastVersion {
			continue // nothing committed since the last complete checkpoint began
		}
		grown := fi.Size()-lastSize >= c.at
		if !grown && time.Since(lastRun) < c.every {
			continue
		}
		lastRun = time.Now()
		if c.round() {
			// The round copied every commit made before version was read;
			// commits made since changed it again: they are caught at the
			// next look.
			lastVersion, lastSize = version, fi.Size()
		}
	}
}

// dataVersion is PRAGMA data_version on the checkpoint connection: it
// changes when another connection commits (a checkpoint that met a newer
// wal-index makes it change too, which only costs one more look).
func (c *checkpointer) dataVersion() (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var v int64
	err := c.db.QueryRowContext(ctx, `PRAGMA data_version`).Scan(&v)
	return v, err
}

// round runs one background checkpoint, and resets the WAL when it holds
// resetAt; it reports whether the WAL was copied whole.
func (c *checkpointer) round() bool {
	log, done, busy, err := c.checkpoint(c.db, "background", "PASSIVE")
	if err != nil {
		return false
	}
	switch {
	case log >= c.restartFrames:
		log, done, busy, err = c.checkpoint(c.db, "background", "RESTART")
	case log >= c.resetFrames && c.writer != nil:
		// A second pass copies what was committed during the first, so
		// that the writer's pass has little left to copy.
		if _, _, _, err = c.checkpoint(c.db, "background", "PASSIVE"); err == nil {
			log, done, busy, err = c.checkpoint(c.writer, "writer", "PASSIVE")
		}
	}
	return err == nil && busy == 0 && log == done
}

// checkpoint runs one checkpoint on db; a busy database or a reader still
// on old frames is simply tried again at the next look.
func (c *checkpointer) checkpoint(db *sql.DB, on, mode string) (log, done, busy int, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	started := time.Now()
	err = db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(`+mode+`)`).Scan(&busy, &log, &done)
	if c.ran != nil {
		c.ran(started, on, mode, log, done, err)
	}
	if tracing() {
		traceWriter("checkpoint:"+on+" "+strings.TrimSuffix(c.wal, "-wal"), mode, fmt.Sprintf("log %d done %d busy %d", log, done, busy), started, err)
	}
	return log, done, busy, err
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
