package runtime_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/glenv/glenv/internal/data"
	"github.com/glenv/glenv/internal/runtime"
)

// servicesPostgres runs the services PostgreSQL glenv manages, in a temp
// dir; under CI it must start.
func servicesPostgres(t *testing.T) *data.Postgres {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "postgresql")
	pg, err := data.StartPostgres(t.Context(), dir, "/usr/local/bin:/usr/bin")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip("no PostgreSQL for services here: ", err)
	}
	t.Cleanup(func() { pg.Close(); os.RemoveAll(dir) })
	return pg
}

func TestAnEnvironmentsConnectionsStopAtItsLimitWhileAnotherEnvironmentConnects(t *testing.T) {
	t.Parallel()
	pg := servicesPostgres(t)
	w := newWorld(t, runtime.Options{Databases: pg})
	requireSandbox(t, w.rt)
	psql, _ := filepath.Glob("/usr/lib/postgresql/*/bin/psql")
	if len(psql) == 0 {
		t.Fatal("psql is not installed (package postgresql-client)")
	}
	other := w.env(41, "mr-41", "mr")
	var logs strings.Builder
	sha := w.commitProbe(t, "mr-41", "quiet", "", "services:\n  postgresql: [main]\n")
	if err := w.rt.Deploy(t.Context(), w.request(other, sha, &logs)); err != nil {
		t.Fatalf("deploy: %v\n%s", err, logs.String())
	}

	greedy := w.env(40, "mr-40", "mr")
	sha = w.commitProbe(t, "mr-40", "conns", "", "services:\n  postgresql:\n    - {name: main, connection_limit: 5}\n",
		"PSQL", psql[len(psql)-1], "CONNS", "50", "LIMIT", "5")
	logs.Reset()
	if err := w.rt.Deploy(t.Context(), w.request(greedy, sha, &logs)); err != nil {
		t.Fatalf("deploy: %v\n%s", err, logs.String())
	}
	if got := w.attacking(t, greedy); !strings.Contains(got, "held=5 refused=45") {
		t.Fatalf("the probe reports %q, want 5 connections held and 45 refused", got)
	}
	c, err := pgx.Connect(t.Context(), pg.URL("g41_main"))
	if err != nil {
		t.Fatalf("another environment cannot connect while one holds its limit: %v", err)
	}
	defer c.Close(t.Context())
	if err := c.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
}
