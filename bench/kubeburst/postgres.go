package main

import (
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
)

// freshPostgres creates an empty database on GLENV_TEST_DATABASE_URL's
// server and returns its URL and a function that drops it.
func freshPostgres() (string, func()) {
	base := os.Getenv("GLENV_TEST_DATABASE_URL")
	a, err := sql.Open("pgx", base)
	tb.Must(err)
	defer a.Close()
	name := fmt.Sprintf("glenv_bench_kubeburst_%d", time.Now().UnixNano())
	_, err = a.Exec("CREATE DATABASE " + name)
	tb.Must(err)
	u, err := url.Parse(base)
	tb.Must(err)
	u.Path = "/" + name
	return u.String(), func() {
		if a, err := sql.Open("pgx", base); err == nil {
			a.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
			a.Close()
		}
	}
}
