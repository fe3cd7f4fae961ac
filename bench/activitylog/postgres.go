package main

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
)

type sqlTx = sql.Tx

// freshPostgres creates an empty database on the server at base and returns
// its URL and a func that drops it.
func freshPostgres(base string) (string, func()) {
	admin, err := sql.Open("pgx", base)
	must(err)
	var rnd [6]byte
	rand.Read(rnd[:])
	name := "glenv_bench_" + hex.EncodeToString(rnd[:])
	_, err = admin.Exec(`CREATE DATABASE ` + name)
	must(err)
	u, err := url.Parse(base)
	must(err)
	u.Path = "/" + name
	return u.String(), func() {
		admin.Exec(`DROP DATABASE IF EXISTS ` + name + ` WITH (FORCE)`)
		admin.Close()
	}
}
