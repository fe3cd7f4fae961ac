package main_test

import (
	"database/sql"
	"path/filepath"
	"testing"
)

// feedbackQuiet waits until glenv has no GitLab feedback job left to run
// (none waiting, scheduled, retrying or running): all it was going to tell
// GitLab is told. Tests that check nothing more arrives wait for this, not
// for time to pass.
func (g *glenv) feedbackQuiet(t *testing.T) {
	t.Helper()
	db := g.openDB(t)
	waitFor(t, g, "feedback jobs all done", func() bool {
		var n int
		err := db.QueryRow(`SELECT COUNT(*) FROM river_job WHERE kind = 'feedback_sync'
			AND state IN ('available', 'pending', 'retryable', 'running', 'scheduled')`).Scan(&n)
		return err == nil && n == 0
	})
}

// openDB opens the server's database beside it, for reading.
func (g *glenv) openDB(t *testing.T) *sql.DB {
	t.Helper()
	driver, dsn := "pgx", g.dbURL
	if dsn == "" {
		driver, dsn = "sqlite", "file:"+filepath.Join(g.dataDir, "glenv.db")+"?_pragma=busy_timeout(5000)&_pragma=query_only(1)"
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
