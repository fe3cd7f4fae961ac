package main

import (
	"context"
	"database/sql"
	"fmt"
	"syscall"
	"time"
)

// Before each measurement every target's database is brought to the same
// state: its WAL copied back and restarted (SQLite; PostgreSQL: a
// CHECKPOINT), and the machine's dirty pages written to the disk (sync).
// Without it a measurement inherits the previous one's leftovers: glenv
// with processing on clears its backlog after its burst, writing as much
// WAL again, and the checkpoint and the kernel's writeback of that ran
// through whichever target was measured next; the bare commit alone spread
// 4,713–10,083 acknowledgements a second within one run. Nothing of the
// measurement itself is left out: a checkpoint or writeback a target's own
// burst causes still falls in its window.

// quiescer brings the databases of a run to rest.
type quiescer struct {
	sqlite []*sql.DB // a plain connection to each SQLite file
	pg     *sql.DB   // the PostgreSQL server's admin pool, or nil
	// took is how long each call took, printed with the report.
	took []time.Duration
}

func newQuiescer(pg *sql.DB, files ...string) *quiescer {
	q := &quiescer{pg: pg}
	for _, f := range files {
		if f == "" {
			continue
		}
		// Not through store.Open: its own checkpointer would then work
		// glenv's WAL too. One connection, used only between measurements.
		db, err := sql.Open("sqlite", "file:"+f+"?_pragma=busy_timeout(10000)")
		must(err)
		db.SetMaxOpenConns(1)
		q.sqlite = append(q.sqlite, db)
	}
	return q
}

// rest checkpoints every database and syncs the disk.
func (q *quiescer) rest() {
	t0 := time.Now()
	ctx := context.Background()
	for _, db := range q.sqlite {
		// RESTART: everything copied, and the next writer starts the WAL
		// from its beginning, over the file's own blocks (glenv keeps the
		// file's size, see internal/store/checkpoint.go). busy is 1 when
		// a reader or writer kept it from finishing.
		var busy, logged, copied int
		must(db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(RESTART)`).Scan(&busy, &logged, &copied))
		if busy != 0 {
			fmt.Printf("quiesce: a checkpoint could not finish (WAL %d frames, %d copied)\n", logged, copied)
		}
	}
	if q.pg != nil {
		_, err := q.pg.ExecContext(ctx, `CHECKPOINT`)
		must(err)
	}
	syscall.Sync()
	q.took = append(q.took, time.Since(t0))
}

func (q *quiescer) close() {
	for _, db := range q.sqlite {
		db.Close()
	}
}
