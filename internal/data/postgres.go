package data

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Postgres creates, clones and drops environments' databases on one
// PostgreSQL server. Every database has a login role of the same name that
// owns it and alone may connect to it, with a password derived from the
// admin URL, so a database's URL stays the same across redeploys without
// glenv storing it.
type Postgres struct {
	admin   string // URL with a role that may create databases and roles
	host    string
	port    string
	key     []byte
	pgDump  string
	pgRest  string
	managed *managed // the server glenv runs, if it does

	mu sync.Mutex
}

var errInUse = errors.New("template database in use")

var dbNameRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// OpenPostgres uses an existing server (--services-database-url). The URL's
// role needs CREATEDB and CREATEROLE (or superuser).
func OpenPostgres(ctx context.Context, adminURL string, binPath string) (*Postgres, error) {
	u, err := url.Parse(adminURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		return nil, fmt.Errorf("--services-database-url: must be a postgres://user:password@host:port/db URL")
	}
	p := &Postgres{admin: adminURL, host: u.Hostname(), port: u.Port(), key: []byte(adminURL)}
	if p.port == "" {
		p.port = "5432"
	}
	p.pgDump, _ = findPGBin("pg_dump", binPath)
	p.pgRest, _ = findPGBin("pg_restore", binPath)
	conn, err := p.connect(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("--services-database-url: connect to %s: %w", redactURL(adminURL), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return p, nil
}

func (p *Postgres) connect(ctx context.Context, db string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(p.admin)
	if err != nil {
		return nil, err
	}
	if db != "" {
		cfg.Database = db
	}
	return pgx.ConnectConfig(ctx, cfg)
}

func (p *Postgres) password(db string) string {
	m := hmac.New(sha256.New, p.key)
	m.Write([]byte("glenv database role " + db))
	return hex.EncodeToString(m.Sum(nil))[:32]
}

// URL is how an app reaches db.
func (p *Postgres) URL(db string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(db, p.password(db)), Host: net.JoinHostPort(p.host, p.port), Path: "/" + db, RawQuery: "sslmode=disable"}
	return u.String()
}

func ident(s string) string { return pgx.Identifier{s}.Sanitize() }

func (p *Postgres) ensureRole(ctx context.Context, c *pgx.Conn, db string) error {
	var exists bool
	if err := c.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)`, db).Scan(&exists); err != nil {
		return err
	}
	verb := "CREATE"
	if exists {
		verb = "ALTER"
	}
	// Password literals cannot be parameters; the password is hex.
	_, err := c.Exec(ctx, fmt.Sprintf(`%s ROLE %s LOGIN PASSWORD '%s'`, verb, ident(db), p.password(db)))
	return err
}

func dbExists(ctx context.Context, c *pgx.Conn, db string) (bool, error) {
	var exists bool
	err := c.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, db).Scan(&exists)
	return exists, err
}

// Ensure creates db (and its role) if missing and returns its URL.
func (p *Postgres) Ensure(ctx context.Context, db string) (string, error) {
	if !dbNameRE.MatchString(db) {
		return "", fmt.Errorf("database name %q: use lower-case letters, digits and _", db)
	}
	c, err := p.connect(ctx, "")
	if err != nil {
		return "", err
	}
	defer c.Close(context.WithoutCancel(ctx))
	if err := p.ensureRole(ctx, c, db); err != nil {
		return "", fmt.Errorf("role %s: %w", db, err)
	}
	exists, err := dbExists(ctx, c, db)
	if err != nil {
		return "", err
	}
	if !exists {
		if _, err := c.Exec(ctx, fmt.Sprintf(`CREATE DATABASE %s OWNER %s`, ident(db), ident(db))); err != nil {
			return "", fmt.Errorf("create database %s: %w", db, err)
		}
		if _, err := c.Exec(ctx, fmt.Sprintf(`REVOKE CONNECT, TEMPORARY ON DATABASE %s FROM PUBLIC`, ident(db))); err != nil {
			return "", err
		}
	}
	return p.URL(db), nil
}

// Clone replaces db by a copy of from: CREATE DATABASE … TEMPLATE, which
// needs from to have no other connections, else pg_dump | pg_restore.
// Objects of the copy are given to db's role.
func (p *Postgres) Clone(ctx context.Context, db, from string) (string, error) {
	if !dbNameRE.MatchString(db) || !dbNameRE.MatchString(from) {
		return "", fmt.Errorf("database names %q, %q: use lower-case letters, digits and _", db, from)
	}
	c, err := p.connect(ctx, "")
	if err != nil {
		return "", err
	}
	defer c.Close(context.WithoutCancel(ctx))
	exists, err := dbExists(ctx, c, from)
	if err != nil {
		return "", err
	}
	if !exists {
		c.Close(ctx)
		return p.Ensure(ctx, db)
	}
	if _, err := c.Exec(ctx, fmt.Sprintf(`DROP DATABASE IF EXISTS %s WITH (FORCE)`, ident(db))); err != nil {
		return "", fmt.Errorf("drop old database %s: %w", db, err)
	}
	if err := p.ensureRole(ctx, c, db); err != nil {
		return "", fmt.Errorf("role %s: %w", db, err)
	}
	var version int
	var size int64
	var busy bool
	_ = c.QueryRow(ctx, `SELECT current_setting('server_version_num')::int, pg_database_size($1),
		EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = $1)`, from).Scan(&version, &size, &busy)
	strategy := ""
	if version >= 150000 && size > 64<<20 {
		// FILE_COPY copies the files after a checkpoint; the default
		// WAL_LOG writes every block to the WAL: quicker for small
		// databases, much slower for big ones.
		strategy = " STRATEGY FILE_COPY"
	}
	err = errInUse
	if !busy {
		// PostgreSQL waits 5 s for sessions to leave the template before it
		// gives up, so a database known to be in use goes straight to the dump.
		_, err = c.Exec(ctx, fmt.Sprintf(`CREATE DATABASE %s OWNER %s TEMPLATE %s%s`, ident(db), ident(db), ident(from), strategy))
	}
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		if err := p.takeOwnership(ctx, db, from); err != nil {
			return "", err
		}
	case errors.Is(err, errInUse) || errors.As(err, &pgErr) && pgErr.Code == "55006": // object_in_use: the parent's app is connected
		if err := p.dumpRestore(ctx, c, db, from); err != nil {
			return "", err
		}
	default:
		return "", fmt.Errorf("create database %s from template %s: %w", db, from, err)
	}
	if _, err := c.Exec(ctx, fmt.Sprintf(`REVOKE CONNECT, TEMPORARY ON DATABASE %s FROM PUBLIC`, ident(db))); err != nil {
		return "", err
	}
	return p.URL(db), nil
}

// takeOwnership gives the copy's objects (owned by the parent's role) to
// db's role. REASSIGN OWNED also moves the parent's database, which is put
// back in the same transaction.
func (p *Postgres) takeOwnership(ctx context.Context, db, from string) error {
	c, err := p.connect(ctx, db)
	if err != nil {
		return err
	}
	defer c.Close(context.WithoutCancel(ctx))
	var roleExists bool
	if err := c.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)`, from).Scan(&roleExists); err != nil || !roleExists {
		return err
	}
	tx, err := c.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	for _, q := range []string{
		fmt.Sprintf(`REASSIGN OWNED BY %s TO %s`, ident(from), ident(db)),
		fmt.Sprintf(`ALTER DATABASE %s OWNER TO %s`, ident(from), ident(from)),
		fmt.Sprintf(`ALTER DATABASE %s OWNER TO %s`, ident(db), ident(db)),
	} {
		if _, err := tx.Exec(ctx, q); err != nil {
			return fmt.Errorf("give %s's objects to %s: %w", from, db, err)
		}
	}
	return tx.Commit(ctx)
}

// dumpRestore copies from into a new db with pg_dump | pg_restore, the
// objects owned by db's role.
func (p *Postgres) dumpRestore(ctx context.Context, c *pgx.Conn, db, from string) error {
	if p.pgDump == "" || p.pgRest == "" {
		return fmt.Errorf("clone %s: the database is in use, and pg_dump/pg_restore (package postgresql-client) are not installed for the fallback", from)
	}
	if _, err := c.Exec(ctx, fmt.Sprintf(`CREATE DATABASE %s OWNER %s`, ident(db), ident(db))); err != nil {
		return fmt.Errorf("create database %s: %w", db, err)
	}
	cfg, err := pgx.ParseConfig(p.admin)
	if err != nil {
		return err
	}
	// The password goes through the environment, not argv.
	env := []string{"PGHOST=" + cfg.Host, "PGPORT=" + strconv.Itoa(int(cfg.Port)), "PGUSER=" + cfg.User,
		"PGPASSWORD=" + cfg.Password, "PGSSLMODE=prefer", "PGCONNECT_TIMEOUT=10"}
	dump := exec.CommandContext(ctx, p.pgDump, "--format=custom", "--no-owner", "--no-acl", "--dbname="+from)
	restore := exec.CommandContext(ctx, p.pgRest, "--no-owner", "--no-acl", "--role="+db, "--exit-on-error", "--dbname="+db)
	dump.Env, restore.Env = env, env
	pr, pw := io.Pipe()
	dump.Stdout, restore.Stdin = pw, pr
	var dumpErr, restErr strings.Builder
	dump.Stderr, restore.Stderr = &dumpErr, &restErr
	if err := restore.Start(); err != nil {
		return err
	}
	derr := dump.Run()
	pw.CloseWithError(derr)
	rerr := restore.Wait()
	if derr != nil || rerr != nil {
		return fmt.Errorf("clone %s with pg_dump | pg_restore: %v %s %v %s", from, derr, strings.TrimSpace(dumpErr.String()), rerr, strings.TrimSpace(restErr.String()))
	}
	return nil
}

// Drop removes db and its role; missing ones are fine.
func (p *Postgres) Drop(ctx context.Context, db string) error {
	if !dbNameRE.MatchString(db) {
		return fmt.Errorf("database name %q: use lower-case letters, digits and _", db)
	}
	c, err := p.connect(ctx, "")
	if err != nil {
		return err
	}
	defer c.Close(context.WithoutCancel(ctx))
	if _, err := c.Exec(ctx, fmt.Sprintf(`DROP DATABASE IF EXISTS %s WITH (FORCE)`, ident(db))); err != nil {
		return err
	}
	_, err = c.Exec(ctx, fmt.Sprintf(`DROP ROLE IF EXISTS %s`, ident(db)))
	return err
}

// Databases lists the databases whose names start with prefix.
func (p *Postgres) Databases(ctx context.Context, prefix string) ([]string, error) {
	c, err := p.connect(ctx, "")
	if err != nil {
		return nil, err
	}
	defer c.Close(context.WithoutCancel(ctx))
	rows, err := c.Query(ctx, `SELECT datname FROM pg_database WHERE starts_with(datname, $1) ORDER BY 1`, prefix)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// Size is db's size in bytes.
func (p *Postgres) Size(ctx context.Context, db string) (int64, error) {
	c, err := p.connect(ctx, "")
	if err != nil {
		return 0, err
	}
	defer c.Close(context.WithoutCancel(ctx))
	var n int64
	err = c.QueryRow(ctx, `SELECT pg_database_size($1)`, db).Scan(&n)
	return n, err
}

// Exec runs SQL in db as the admin (tests and benchmarks seed data with it).
func (p *Postgres) Exec(ctx context.Context, db, sql string) error {
	c, err := p.connect(ctx, db)
	if err != nil {
		return err
	}
	defer c.Close(context.WithoutCancel(ctx))
	_, err = c.Exec(ctx, sql)
	return err
}

// Close stops the server glenv runs, if it runs one.
func (p *Postgres) Close() error {
	if p.managed != nil {
		return p.managed.stop()
	}
	return nil
}

func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// findPGBin finds a PostgreSQL program in path, then in Debian's
// /usr/lib/postgresql/<version>/bin (newest first).
func findPGBin(name, path string) (string, error) {
	if path == "" {
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	}
	for _, d := range strings.Split(path, ":") {
		if d == "" {
			continue
		}
		if p := d + "/" + name; isExec(p) {
			return p, nil
		}
	}
	entries, _ := os.ReadDir("/usr/lib/postgresql")
	for i := len(entries) - 1; i >= 0; i-- {
		if p := "/usr/lib/postgresql/" + entries[i].Name() + "/bin/" + name; isExec(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found: install the postgresql package (Debian/Ubuntu: apt-get install postgresql), or pass --services-database-url", name)
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}
