package data

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// needPostgres skips where PostgreSQL is not installed, except under CI,
// where it must be.
func needPostgres(t *testing.T) {
	t.Helper()
	if _, err := findPGBin("initdb", "/usr/local/bin:/usr/bin"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
}

func TestRoleConnectionLimit(t *testing.T) {
	for _, tc := range []struct {
		name               string
		requested, ceiling int
		want               int
		err                string
	}{
		{"nothing asked gets the ceiling", 0, 30, 30, ""},
		{"nothing configured is the default", 0, 0, DefaultConnectionLimit, ""},
		{"a smaller limit is kept", 5, 30, 5, ""},
		{"the ceiling itself may be asked for", 30, 30, 30, ""},
		{"more than the ceiling is refused, naming the flag", 31, 30, 0, "above this glenv's ceiling of 30 connections per database (--services-database-connection-limit)"},
		{"a negative limit is refused", -1, 30, 0, "must be at least 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := roleLimit(tc.requested, tc.ceiling)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("want an error with %q, got %d %v", tc.err, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %d %v, want %d", got, err, tc.want)
			}
		})
	}
}

func TestTwoHundredConnectionsFromOneEnvironmentStopAtItsLimitAndOthersStillConnect(t *testing.T) {
	p := startPostgres(t)
	ctx := t.Context()
	greedy, err := p.Ensure(ctx, "g1_main", 0)
	if err != nil {
		t.Fatal(err)
	}
	other, err := p.Ensure(ctx, "g2_main", 0)
	if err != nil {
		t.Fatal(err)
	}
	var open []*pgx.Conn
	defer func() {
		for _, c := range open {
			c.Close(context.Background())
		}
	}()
	refused := 0
	for range 200 {
		c, err := pgx.Connect(ctx, greedy)
		if err != nil {
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != "53300" || !strings.Contains(pgErr.Message, "too many connections for role") {
				t.Fatalf("want too many connections for role, got %v", err)
			}
			refused++
			continue
		}
		open = append(open, c)
	}
	if len(open) != DefaultConnectionLimit || refused != 200-DefaultConnectionLimit {
		t.Fatalf("%d connections held, %d refused; want %d held", len(open), refused, DefaultConnectionLimit)
	}
	if s, err := query(t, other, `SELECT 'another environment connects'`); err != nil {
		t.Fatalf("another environment cannot connect: %v", err)
	} else if s == "" {
		t.Fatal("empty answer")
	}
	t.Run("a clone keeps the limit it is asked for", func(t *testing.T) {
		if _, err := p.Clone(ctx, "g3_main", "g2_main", 3); err != nil {
			t.Fatal(err)
		}
		if n, err := query(t, p.URL("g3_main"), `SELECT rolconnlimit::text FROM pg_roles WHERE rolname = current_user`); err != nil || n != "3" {
			t.Fatalf("limit %q %v", n, err)
		}
	})
}

func TestTenMergeRequestsCloneTheirParentsDatabaseAtOnce(t *testing.T) {
	p := startPostgres(t)
	ctx := t.Context()
	if _, err := p.Ensure(ctx, "g1_main", 0); err != nil {
		t.Fatal(err)
	}
	if err := p.Exec(ctx, "g1_main", `CREATE TABLE people (name text); INSERT INTO people VALUES ('ada'); ALTER TABLE people OWNER TO g1_main`); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 10)
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = p.Clone(ctx, "g"+strconv.Itoa(100+i)+"_main", "g1_main", 0)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("clone %d: %v", i, err)
			continue
		}
		url := p.URL("g" + strconv.Itoa(100+i) + "_main")
		if owner, err := query(t, url, `SELECT tableowner::text FROM pg_tables WHERE tablename = 'people'`); err != nil || owner != "g"+strconv.Itoa(100+i)+"_main" {
			t.Errorf("clone %d: people belongs to %q (%v)", i, owner, err)
		}
	}
	if owner, err := query(t, p.URL("g1_main"), `SELECT pg_get_userbyid(datdba)::text FROM pg_database WHERE datname = 'g1_main'`); err != nil || owner != "g1_main" {
		t.Fatalf("the parent's database belongs to %q (%v)", owner, err)
	}
}

// postmasterPID is the services PostgreSQL's main process.
func postmasterPID(t *testing.T, dir string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "pgdata", "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.SplitN(string(b), "\n", 2)[0])
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func TestTheServicesPostgreSQLKilledDuringACloneComesBackAndLeavesNoRole(t *testing.T) {
	needPostgres(t)
	dir := filepath.Join(t.TempDir(), "postgresql")
	if os.Geteuid() == 0 {
		t.Cleanup(func() { _ = os.RemoveAll(filepath.Dir(dir)) })
	}
	s := &Services{Dir: dir, Path: "/usr/local/bin:/usr/bin"}
	t.Cleanup(func() { _ = s.Close() })
	ctx := t.Context()
	if err := s.Ready(ctx); err != nil {
		t.Fatalf("a server not started yet is not a reason to be unready: %v", err)
	}
	if _, err := s.Ensure(ctx, "g1_main", 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	pg := s.pg
	killed := make(chan int, 1)
	pg.beforeCopy = func(db string) {
		pid := postmasterPID(t, dir)
		_ = syscall.Kill(pid, syscall.SIGKILL)
		killed <- pid
		// The role exists now; let the server die before the copy.
		for syscall.Kill(pid, 0) == nil {
			time.Sleep(10 * time.Millisecond)
		}
	}
	_, err := s.Clone(ctx, "g2_main", "g1_main", 0)
	if err == nil {
		t.Fatal("a clone whose server was killed succeeded")
	}
	select {
	case <-killed:
	case <-time.After(10 * time.Second):
		t.Fatal("the hook never ran")
	}
	pg.beforeCopy = nil
	if err := s.Ready(ctx); err == nil || !strings.Contains(err.Error(), "services PostgreSQL") {
		t.Fatalf("Ready right after the kill: %v", err)
	}
	deadline := time.Now().Add(90 * time.Second)
	for s.Ready(ctx) != nil {
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "postgresql.log"))
			t.Fatalf("PostgreSQL did not come back: %v\n%s", s.Ready(ctx), tail(string(log), 2000))
		}
		time.Sleep(100 * time.Millisecond)
	}
	roles, err := query(t, pg.admin, `SELECT count(*)::text FROM pg_roles WHERE rolname = 'g2_main'`)
	if err != nil || roles != "0" {
		t.Fatalf("the failed clone's role is left: %s %v", roles, err)
	}
	if dbs, err := pg.Databases(ctx, "g2_"); err != nil || len(dbs) != 0 {
		t.Fatalf("the failed clone's database is left: %v %v", dbs, err)
	}
	url, err := s.Clone(ctx, "g2_main", "g1_main", 0)
	if err != nil {
		t.Fatalf("the next clone: %v", err)
	}
	if _, err := query(t, url, `SELECT 'works'`); err != nil {
		t.Fatal(err)
	}
}
