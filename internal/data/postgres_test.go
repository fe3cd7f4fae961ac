package data

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// startPostgres runs the services PostgreSQL glenv manages, in a temp dir.
func startPostgres(t *testing.T) *Postgres {
	t.Helper()
	needPostgres(t)
	dir := t.TempDir()
	if os.Geteuid() == 0 {
		// The postgres user must be able to remove what it created.
		t.Cleanup(func() { _ = os.RemoveAll(dir) })
	}
	p, err := StartPostgres(t.Context(), filepath.Join(dir, "postgresql"), "/usr/local/bin:/usr/bin")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func query(t *testing.T, url, sql string) (string, error) {
	t.Helper()
	c, err := pgx.Connect(context.Background(), url)
	if err != nil {
		return "", err
	}
	defer c.Close(context.Background())
	var s string
	err = c.QueryRow(context.Background(), sql).Scan(&s)
	return s, err
}

func TestEnvironmentDatabasesAreClonedFromTheParentAndIsolated(t *testing.T) {
	p := startPostgres(t)
	ctx := t.Context()
	parentURL, err := p.Ensure(ctx, "g1_main", 0)
	if err != nil {
		t.Fatal(err)
	}
	c, err := pgx.Connect(ctx, parentURL)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`CREATE TABLE people (name text)`, `INSERT INTO people VALUES ('ada'), ('grace')`} {
		if _, err := c.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	c.Close(ctx)
	if again, err := p.Ensure(ctx, "g1_main", 0); err != nil || again != parentURL {
		t.Fatalf("Ensure is not stable: %v %q", err, again)
	}

	t.Run("a template clone has the parent's rows and belongs to the child", func(t *testing.T) {
		url, err := p.Clone(ctx, "g2_main", "g1_main", 0)
		if err != nil {
			t.Fatal(err)
		}
		if n, err := query(t, url, `SELECT count(*)::text FROM people`); err != nil || n != "2" {
			t.Fatalf("rows %q %v", n, err)
		}
		if _, err := query(t, url, `INSERT INTO people VALUES ('new') RETURNING name`); err != nil {
			t.Fatalf("the child cannot write its own copy: %v", err)
		}
		if n, _ := query(t, parentURL, `SELECT count(*)::text FROM people`); n != "2" {
			t.Fatalf("the parent changed: %s rows", n)
		}
		if owner, _ := query(t, parentURL, `SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'g1_main'`); owner != "g1_main" {
			t.Fatalf("the parent's database now belongs to %q", owner)
		}
	})
	t.Run("while the parent is in use the clone goes through pg_dump", func(t *testing.T) {
		busy, err := pgx.Connect(ctx, parentURL)
		if err != nil {
			t.Fatal(err)
		}
		defer busy.Close(ctx)
		url, err := p.Clone(ctx, "g3_main", "g1_main", 0)
		if err != nil {
			t.Fatal(err)
		}
		if n, err := query(t, url, `SELECT count(*)::text FROM people`); err != nil || n != "2" {
			t.Fatalf("rows %q %v", n, err)
		}
		if _, err := query(t, url, `INSERT INTO people VALUES ('x') RETURNING name`); err != nil {
			t.Fatalf("the child cannot write its copy: %v", err)
		}
	})
	t.Run("an environment cannot connect to another's database", func(t *testing.T) {
		other := strings.Replace(p.URL("g2_main"), "/g2_main?", "/g1_main?", 1)
		if _, err := query(t, other, `SELECT 1::text`); err == nil || !strings.Contains(err.Error(), "permission denied") {
			t.Fatalf("g2_main's role reached g1_main: %v", err)
		}
	})
	t.Run("drop leaves no database and no role", func(t *testing.T) {
		for _, db := range []string{"g2_main", "g3_main"} {
			if err := p.Drop(ctx, db); err != nil {
				t.Fatal(err)
			}
		}
		dbs, err := p.Databases(ctx, "g")
		if err != nil || len(dbs) != 1 || dbs[0] != "g1_main" {
			t.Fatalf("databases left: %v %v", dbs, err)
		}
		if _, err := query(t, p.URL("g2_main"), `SELECT 1::text`); err == nil {
			t.Fatal("a dropped environment's role can still log in")
		}
		if err := p.Drop(ctx, "g2_main"); err != nil {
			t.Fatalf("dropping twice: %v", err)
		}
	})
}
