// Command pgclone measures cloning an environment's PostgreSQL database from
// its parent with glenv's data.Postgres.Clone (template copy, then the
// copy's objects handed to the environment's own role) against a bare
// `CREATE DATABASE … TEMPLATE`, on a ~300 MB database in the same run. It
// starts the PostgreSQL glenv manages (initdb) in a temp dir unless -url
// names a server.
//
//	go run ./bench/pgclone [-size 300] [-rounds 3] [-url postgres://…]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/glenv/glenv/internal/data"
)

func main() {
	sizeMB := flag.Int("size", 300, "database size in MB")
	rounds := flag.Int("rounds", 3, "measurements of each")
	url := flag.String("url", "", "admin URL of a PostgreSQL server (default: start one with initdb)")
	flag.Parse()
	ctx := context.Background()
	var pg *data.Postgres
	var err error
	if *url != "" {
		pg, err = data.OpenPostgres(ctx, *url, "/usr/local/bin:/usr/bin")
	} else {
		dir, derr := os.MkdirTemp("", "bench-pgclone-")
		must(derr)
		defer os.RemoveAll(dir)
		pg, err = data.StartPostgres(ctx, filepath.Join(dir, "postgresql"), "/usr/local/bin:/usr/bin")
	}
	must(err)
	defer pg.Close()

	const parent = "gbench_parent"
	_, err = pg.Ensure(ctx, parent, 0)
	must(err)
	rows := *sizeMB * 1_000_000 / 110
	start := time.Now()
	must(pg.Exec(ctx, parent, `SET ROLE `+parent+`;
		CREATE TABLE IF NOT EXISTS items AS SELECT i AS id, md5(i::text) || md5((i+1)::text) AS payload
		FROM generate_series(1, `+strconv.Itoa(rows)+`) AS i;
		CREATE INDEX IF NOT EXISTS items_id ON items (id);`))
	must(pg.Exec(ctx, parent, `CHECKPOINT`))
	size, err := pg.Size(ctx, parent)
	must(err)
	fmt.Fprintf(os.Stderr, "seeded %d rows (%d MB) in %s\n", rows, size/1_000_000, time.Since(start).Round(time.Millisecond))

	var bare, bareFile, glenv []time.Duration
	for i := range *rounds {
		// Each measurement starts after a checkpoint, so none pays for
		// writing back what the one before it left dirty.
		settle := func() { must(pg.Exec(ctx, "postgres", `CHECKPOINT`)) }
		db := "gbench_bare_" + strconv.Itoa(i)
		settle()
		start := time.Now()
		must(pg.Exec(ctx, "postgres", `CREATE DATABASE `+db+` TEMPLATE `+parent))
		bare = append(bare, time.Since(start))
		must(pg.Drop(ctx, db))

		db = "gbench_file_" + strconv.Itoa(i)
		settle()
		start = time.Now()
		must(pg.Exec(ctx, "postgres", `CREATE DATABASE `+db+` TEMPLATE `+parent+` STRATEGY FILE_COPY`))
		bareFile = append(bareFile, time.Since(start))
		must(pg.Drop(ctx, db))

		db = "gbench_env_" + strconv.Itoa(i)
		settle()
		start = time.Now()
		_, err := pg.Clone(ctx, db, parent, 0)
		must(err)
		glenv = append(glenv, time.Since(start))
		must(pg.Drop(ctx, db))
	}
	b, bf, g := med(bare), med(bareFile), med(glenv)
	fmt.Printf("pgclone: a %d MB database (pg_database_size), median of %d\n", size/1_000_000, *rounds)
	fmt.Printf("  CREATE DATABASE … TEMPLATE (default strategy)  %9s\n", b)
	fmt.Printf("  CREATE DATABASE … TEMPLATE STRATEGY FILE_COPY  %9s\n", bf)
	fmt.Printf("  glenv Postgres.Clone                           %9s\n", g)
	ratio := float64(g) / float64(b)
	fmt.Printf("  glenv / TEMPLATE %.2f× (goal ≤ 1.2×): %s\n", ratio, verdict(ratio <= 1.2))
}

func med(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2].Round(time.Millisecond)
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/pgclone:", err)
		os.Exit(1)
	}
}
