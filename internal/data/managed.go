package data

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// managed is a PostgreSQL server glenv runs itself in its data dir:
//
//	<dir>/pgdata    the cluster (initdb)
//	<dir>/password  the superuser's password (0600)
//	<dir>/port      the port it listens on (127.0.0.1)
//
// PostgreSQL refuses to run as root; when glenv is root the server runs as
// the postgres system user, and because glenv's data dir is private to
// root, it sees its directory through a bind mount at /run/glenv-postgresql
// (bubblewrap) instead of through the data dir.
type managed struct {
	dir    string
	pgdata string
	log    *slog.Logger
	launch func() (*exec.Cmd, error) // starts postgres, its output appended to postgresql.log

	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{} // closed when cmd exited
	err      error         // cmd's exit, once done
	down     string        // why the server is not serving; "" when it is
	quit     chan struct{} // closed by stop
	finished chan struct{} // closed when supervise returned
}

const rootMount = "/run/glenv-postgresql"

// StartPostgres starts (after creating it on first use) the services
// PostgreSQL in dir. path is where to look for initdb and postgres
// besides Debian's /usr/lib/postgresql/*/bin.
func StartPostgres(ctx context.Context, dir, path string) (*Postgres, error) {
	return StartPostgresLogged(ctx, dir, path, nil)
}

// StartPostgresLogged is StartPostgres telling log (nil: slog.Default)
// when the server exits and is started again: glenv supervises it,
// restarting it with backoff (1s, 2s, 4s … up to 1m) until it is stopped.
func StartPostgresLogged(ctx context.Context, dir, path string, log *slog.Logger) (*Postgres, error) {
	if log == nil {
		log = slog.Default()
	}
	initdb, err := findPGBin("initdb", path)
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL for services: %w", err)
	}
	postgres, err := findPGBin("postgres", path)
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL for services: %w", err)
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, err
	}
	asRoot := os.Geteuid() == 0
	var uid, gid int
	var bwrap string
	if asRoot {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, errors.New("PostgreSQL for services: glenv runs as root and PostgreSQL refuses root; create the postgres system user (the postgresql package does), run glenv as another user, or pass --services-database-url")
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
		if bwrap, err = exec.LookPath("bwrap"); err != nil {
			bwrap = "/usr/bin/bwrap"
			if !isExec(bwrap) {
				return nil, errors.New("PostgreSQL for services: as root, glenv hands its private directory to the postgres user through bubblewrap; install the bubblewrap package, or pass --services-database-url")
			}
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	// seen is how the postgres processes see dir.
	seen := dir
	run := func(name string, args ...string) *exec.Cmd {
		cmd := exec.Command(name, args...)
		cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C.UTF-8", "LANG=C.UTF-8"}
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
		if asRoot {
			all := append([]string{"--dev-bind", "/", "/", "--bind", dir, rootMount, "--die-with-parent", "--",
				"setpriv", "--reuid=" + strconv.Itoa(uid), "--regid=" + strconv.Itoa(gid), "--init-groups", "--", name}, args...)
			cmd = exec.Command(bwrap, all...)
			cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C.UTF-8", "LANG=C.UTF-8"}
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
		}
		return cmd
	}
	if asRoot {
		seen = rootMount
		if err := ChownTree(dir, uid, gid); err != nil {
			return nil, err
		}
	}
	pwFile := filepath.Join(dir, "password")
	if _, err := os.Stat(filepath.Join(dir, "pgdata", "PG_VERSION")); err != nil {
		_ = os.RemoveAll(filepath.Join(dir, "pgdata"))
		pw := make([]byte, 24)
		_, _ = rand.Read(pw)
		if err := os.WriteFile(pwFile, []byte(hex.EncodeToString(pw)), 0o600); err != nil {
			return nil, err
		}
		if asRoot {
			_ = os.Chown(pwFile, uid, gid)
		}
		out, err := run(initdb, "--pgdata="+seen+"/pgdata", "--username=glenv", "--pwfile="+seen+"/password",
			"--auth-local=scram-sha-256", "--auth-host=scram-sha-256", "--encoding=UTF8", "--locale=C", "--no-sync").CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("PostgreSQL for services: initdb: %v: %s", err, strings.TrimSpace(string(out)))
		}
	}
	pw, err := os.ReadFile(pwFile)
	if err != nil {
		return nil, err
	}
	port := 0
	if b, err := os.ReadFile(filepath.Join(dir, "port")); err == nil {
		port, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	if port == 0 || !portFree(port) {
		if port, err = freePort(); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, "port"), []byte(strconv.Itoa(port)), 0o600); err != nil {
			return nil, err
		}
	}
	logPath := filepath.Join(dir, "postgresql.log")
	m := &managed{dir: dir, pgdata: filepath.Join(dir, "pgdata"), log: log, quit: make(chan struct{}), finished: make(chan struct{}),
		launch: func() (*exec.Cmd, error) {
			stopLeftover(filepath.Join(dir, "pgdata"))
			cmd := run(postgres, "-D", seen+"/pgdata", "-c", "listen_addresses=127.0.0.1", "-c", "port="+strconv.Itoa(port),
				"-c", "unix_socket_directories="+seen, "-c", "max_connections=200", "-c", "logging_collector=off")
			logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
			if err != nil {
				return nil, err
			}
			defer logFile.Close() // the child has its own copy
			cmd.Stdout, cmd.Stderr = logFile, logFile
			if err := cmd.Start(); err != nil {
				return nil, fmt.Errorf("PostgreSQL for services: start postgres: %w", err)
			}
			return cmd, nil
		}}
	admin := (&url.URL{Scheme: "postgres", User: url.UserPassword("glenv", string(pw)),
		Host: "127.0.0.1:" + strconv.Itoa(port), Path: "/postgres", RawQuery: "sslmode=disable"}).String()
	p := &Postgres{admin: admin, host: "127.0.0.1", port: strconv.Itoa(port), key: pw, managed: m}
	p.pgDump, _ = findPGBin("pg_dump", path)
	p.pgRest, _ = findPGBin("pg_restore", path)
	if err := m.start(); err != nil {
		return nil, err
	}
	if err := m.accepting(ctx, p); err != nil {
		close(m.finished)
		_ = m.stop()
		if errors.Is(err, errExited) {
			log, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("PostgreSQL for services exited at start (%v): %s", m.exitErr(), tail(string(log), 800))
		}
		return nil, err
	}
	go m.supervise(p)
	return p, nil
}

// stopLeftover stops a server a previous glenv left running (it was killed
// before it could stop it), which would keep the cluster locked.
func stopLeftover(pgdata string) {
	b, err := os.ReadFile(filepath.Join(pgdata, "postmaster.pid"))
	if err != nil {
		return
	}
	pid, _ := strconv.Atoi(strings.SplitN(string(b), "\n", 2)[0])
	comm, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if pid <= 0 || err != nil || strings.TrimSpace(string(comm)) != "postgres" {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGINT)
	for range 300 {
		if syscall.Kill(pid, 0) != nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func portFree(port int) bool {
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
