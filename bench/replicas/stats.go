package main

import (
	"database/sql"
	"fmt"
	"sort"
	"strings"
	"time"
)

// dbStats is what PostgreSQL's statistics views count for the round's
// database: transactions, and per table the rows written and read and the
// scans that read them. Backends report them at most once a second
// (PostgreSQL 15's pgstat), so a reading waits that long first. They
// count the bench's own queries too: its wait for the jobs seq-scans
// river_job ten times a second once the burst is acknowledged.
type dbStats struct {
	commits int64
	tables  map[string][6]int64 // seq_scan, seq_tup_read, idx_scan, idx_tup_fetch, n_tup_ins, n_tup_upd+del
}

func readStats(db *sql.DB) dbStats {
	time.Sleep(1500 * time.Millisecond)
	s := dbStats{tables: map[string][6]int64{}}
	db.QueryRow(`SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()`).Scan(&s.commits)
	rows, err := db.Query(`SELECT relname, COALESCE(seq_scan, 0), COALESCE(seq_tup_read, 0), COALESCE(idx_scan, 0),
		COALESCE(idx_tup_fetch, 0), n_tup_ins, n_tup_upd + n_tup_del FROM pg_stat_user_tables`)
	if err != nil {
		return s
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var v [6]int64
		if rows.Scan(&name, &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) == nil {
			s.tables[name] = v
		}
	}
	return s
}

// printStats prints the work per delivery between two readings, the
// tables that did most of it first.
func printStats(label string, a, b dbStats, n int) {
	per := func(v int64) float64 { return float64(v) / float64(n) }
	fmt.Printf("  %s: %.2f transactions/delivery; per delivery by table (seq scans, rows they read, index scans, rows inserted, updated+deleted):\n",
		label, per(b.commits-a.commits))
	type row struct {
		name string
		d    [6]int64
		work int64
	}
	var rs []row
	for name, v := range b.tables {
		var d [6]int64
		for i := range d {
			d[i] = v[i] - a.tables[name][i]
		}
		if w := d[0] + d[1] + d[2] + d[4] + d[5]; w > 0 {
			rs = append(rs, row{name, d, d[1] + d[2] + d[4] + d[5]})
		}
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].work > rs[j].work })
	var parts []string
	for i, r := range rs {
		if i == 8 {
			break
		}
		parts = append(parts, fmt.Sprintf("%s %.2f/%.1f/%.2f/%.2f/%.2f", r.name, per(r.d[0]), per(r.d[1]), per(r.d[2]), per(r.d[4]), per(r.d[5])))
	}
	fmt.Printf("    %s\n", strings.Join(parts, "; "))
}
