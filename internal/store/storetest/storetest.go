// Package storetest gives tests real databases: a SQLite file in a temp dir
// always, and a fresh PostgreSQL database when GLENV_TEST_DATABASE_URL names a
// server (.ci/run starts a throwaway one). One suite runs on both.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/glenv/glenv/internal/store"
)

// EnvVar names the PostgreSQL server tests may use.
const EnvVar = "GLENV_TEST_DATABASE_URL"

// Backend is a database a test can run on.
type Backend struct {
	Name string // "sqlite" or "postgres"
	// URL returns a fresh, empty database URL for this backend ("" + dataDir for SQLite).
	URL func(t testing.TB) string
}

// Backends lists SQLite, and PostgreSQL when configured.
func Backends() []Backend {
	b := []Backend{{Name: "sqlite", URL: func(t testing.TB) string {
		return "sqlite://" + filepath.Join(t.TempDir(), "glenv.db")
	}}}
	if os.Getenv(EnvVar) != "" {
		b = append(b, Backend{Name: "postgres", URL: FreshPostgres})
	}
	return b
}

// FreshPostgres creates an empty database on the server at GLENV_TEST_DATABASE_URL,
// dropped when the test ends, and returns its URL.
func FreshPostgres(t testing.TB) string {
	base := os.Getenv(EnvVar)
	if base == "" {
		t.Fatalf("%s is not set", EnvVar)
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	var rnd [6]byte
	rand.Read(rnd[:])
	name := "glenv_test_" + hex.EncodeToString(rnd[:])
	if _, err := admin.Exec(`CREATE DATABASE ` + name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		a, err := sql.Open("pgx", base)
		if err != nil {
			return
		}
		defer a.Close()
		a.Exec(`DROP DATABASE IF EXISTS ` + name + ` WITH (FORCE)`)
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// Each runs fn once per backend with an open, migrated store.
func Each(t *testing.T, fn func(t *testing.T, s *store.Store)) {
	for _, b := range Backends() {
		t.Run(b.Name, func(t *testing.T) {
			fn(t, Open(t, b))
		})
	}
}

// Open opens a fresh migrated store on backend b, closed at cleanup.
func Open(t testing.TB, b Backend) *store.Store {
	s, err := store.Open(context.Background(), b.URL(t), t.TempDir())
	if err != nil {
		t.Fatalf("open %s store: %v", b.Name, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Postgres is the PostgreSQL backend, for a test that only means something
// there: without GLENV_TEST_DATABASE_URL it fails under CI=true (CI must
// not skip it silently) and skips elsewhere.
func Postgres(t testing.TB) Backend {
	t.Helper()
	for _, b := range Backends() {
		if b.Name == "postgres" {
			return b
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal(EnvVar + " is not set; CI must run this test on PostgreSQL")
	}
	t.Skip(EnvVar + " is not set")
	return Backend{}
}
