package jobs

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"

	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/store/storetest"
)

// completedDrains adds n completed drain jobs, as River keeps them for a
// day after each time the drain caught up and ended.
func completedDrains(t testing.TB, db *sql.DB, n int) {
	t.Helper()
	_, err := db.Exec(`WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i < $1)
		INSERT INTO river_job (args, attempt, created_at, finalized_at, kind, max_attempts, metadata, priority, queue, state, scheduled_at, unique_key, unique_states)
		SELECT '{}', 1, datetime('now'), datetime('now'), 'process_delivery', 25, '{}', 1, 'deliveries', 'completed', datetime('now'), randomblob(16), 253 FROM c`, n)
	if err != nil {
		t.Fatal(err)
	}
}

// TestTheAckLooksForTheDrainAmongLiveJobsOnly: on SQLite the ack's look
// for a drain job (drainWaitingSQLite, in every ack's write transaction)
// takes River's fetching index, which holds the jobs still to run or
// running apart from the completed ones, and finds a live drain among
// thousands of completed ones and none when only completed ones are left.
func TestTheAckLooksForTheDrainAmongLiveJobsOnly(t *testing.T) {
	s := storetest.Open(t, storetest.Backends()[0])
	ctx := context.Background()
	completedDrains(t, s.DB, 2000)
	rows, err := s.DB.QueryContext(ctx, `EXPLAIN QUERY PLAN `+drainWaitingOn(store.SQLite))
	if err != nil {
		t.Fatal(err)
	}
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	rows.Close()
	if p := strings.Join(plan, "; "); !strings.Contains(p, "river_job_prioritized_fetching_index (state=? AND queue=?)") {
		t.Errorf("the ack's drain lookup plans %q, want a search of river_job_prioritized_fetching_index on state and queue", p)
	}
	found := func() bool {
		var one int
		err := s.DB.QueryRowContext(ctx, drainWaitingOn(store.SQLite)).Scan(&one)
		if err != nil && err != sql.ErrNoRows {
			t.Fatal(err)
		}
		return err == nil
	}
	if found() {
		t.Fatal("a drain was found among completed drain jobs only")
	}
	for _, state := range []string{"available", "running", "retryable"} {
		if _, err := s.DB.ExecContext(ctx, `INSERT INTO river_job (args, attempt, created_at, kind, max_attempts, metadata, priority, queue, state, scheduled_at, unique_key, unique_states)
			VALUES ('{}', 0, datetime('now'), 'process_delivery', 25, '{}', 1, 'deliveries', $1, datetime('now'), randomblob(16), 253)`, state); err != nil {
			t.Fatal(err)
		}
		if !found() {
			t.Errorf("a %s drain job among 2,000 completed ones was not found", state)
		}
		if _, err := s.DB.ExecContext(ctx, `DELETE FROM river_job WHERE state = $1`, state); err != nil {
			t.Fatal(err)
		}
	}
}

// BenchmarkDrainLookup is the ack's look for a drain job on SQLite among
// River's completed drain jobs, as it was (kind's index) and as it is.
func BenchmarkDrainLookup(b *testing.B) {
	for _, completed := range []int{0, 10000} {
		for _, q := range []struct{ name, sql string }{{"kind-index", drainWaiting}, {"fetching-index", drainWaitingOn(store.SQLite)}} {
			b.Run(fmt.Sprintf("completed=%d/%s", completed, q.name), func(b *testing.B) {
				s := storetest.Open(b, storetest.Backends()[0])
				completedDrains(b, s.DB, completed)
				for b.Loop() {
					var one int
					if err := s.DB.QueryRow(q.sql).Scan(&one); err != sql.ErrNoRows {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
