package data

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
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
	// ConnectionLimit is the default and the ceiling of each role's
	// CONNECTION LIMIT (0: DefaultConnectionLimit).
	ConnectionLimit int

	mu        sync.Mutex
	leftovers map[string]bool // half-made databases to drop once the server answers (value: with the role)

	beforeCopy func(db string) // tests: called when a clone's role is made, before the copy
}

// DefaultConnectionLimit is how many connections an environment's role
// may hold when nothing else is configured: a tenth of the 200 the
// PostgreSQL glenv runs allows, so one environment cannot take them all.
const DefaultConnectionLimit = 20

// catalogLock is the advisory lock (in the admin URL's database, shared by
// every glenv using this server) that serialises changes to the shared
// catalogs: PostgreSQL fails concurrent REASSIGN OWNED and ALTER DATABASE …
// OWNER on the same parent with "tuple concurrently updated".
const catalogLock = 0x676c656e76 // "glenv"

// withCatalogLock runs f holding catalogLock on c.
func withCatalogLock(ctx context.Context, c *pgx.Conn, f func() error) error {
	if _, err := c.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(catalogLock)); err != nil {
		return fmt.Errorf("take the catalog lock: %w", err)
	}
	defer c.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, int64(catalogLock))
	return f()
}

// roleLimit is the CONNECTION LIMIT of a role whose .glenv.yml asked for
// requested (0: nothing asked), under a server-wide ceiling that is also
// the default.
func roleLimit(requested, ceiling int) (int, error) {
	if ceiling <= 0 {
		ceiling = DefaultConnectionLimit
	}
	switch {
	case requested < 0:
		return 0, fmt.Errorf("services.postgresql connection_limit %d: must be at least 1", requested)
	case requested == 0:
		return ceiling, nil
	case requested > ceiling:
		return 0, fmt.Errorf("services.postgresql connection_limit %d: above this glenv's ceiling of %d connections per database (--services-database-connection-limit); ask for at most %d", requested, ceiling, ceiling)
	}
	return requested, nil
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

// ensureRole creates or updates db's role; created tells whether it is new.
func (p *Postgres) ensureRole(ctx context.Context, c *pgx.Conn, db string, limit int) (created bool, err error) {
	err = withCatalogLock(ctx, c, func() error {
		var exists bool
		if err := c.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)`, db).Scan(&exists); err != nil {
			return err
		}
		verb := "CREATE"
		if exists {
			verb = "ALTER"
		}
		created = !exists
		// Literals cannot be parameters here; the password is hex, the limit a number.
		_, err := c.Exec(ctx, fmt.Sprintf(`%s ROLE %s LOGIN PASSWORD '%s' CONNECTION LIMIT %d`, verb, ident(db), p.password(db), limit))
		return err
	})
	return created, err
}

func dbExists(ctx context.Context, c *pgx.Conn, db string) (bool, error) {
	var exists bool
	err := c.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, db).Scan(&exists)
	return exists, err
}

// admin connects as the admin role, after dropping what failed clones
// left while the server did not answer.
func (p *Postgres) adminConn(ctx context.Context) (*pgx.Conn, error) {
	c, err := p.connect(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("connect to the services PostgreSQL: %w", err)
	}
	if err := p.dropLeftovers(ctx, c); err != nil {
		c.Close(context.WithoutCancel(ctx))
		return nil, err
	}
	return c, nil
}

// Ensure creates db (and its role) if missing and returns its URL. Its role
// may hold connLimit connections (0: ConnectionLimit).
func (p *Postgres) Ensure(ctx context.Context, db string, connLimit int) (url string, err error) {
	if !dbNameRE.MatchString(db) {
		return "", fmt.Errorf("database name %q: use lower-case letters, digits and _", db)
	}
	limit, err := roleLimit(connLimit, p.ConnectionLimit)
	if err != nil {
		return "", err
	}
	c, err := p.adminConn(ctx)
	if err != nil {
		return "", err
	}
	defer c.Close(context.WithoutCancel(ctx))
	createdRole, err := p.ensureRole(ctx, c, db, limit)
	if err != nil {
		return "", fmt.Errorf("role %s: %w", db, err)
	}
	exists, err := dbExists(ctx, c, db)
	if err == nil && !exists {
		if _, err = c.Exec(ctx, fmt.Sprintf(`CREATE DATABASE %s OWNER %s`, ident(db), ident(db))); err == nil {
			_, err = c.Exec(ctx, fmt.Sprintf(`REVOKE CONNECT, TEMPORARY ON DATABASE %s FROM PUBLIC`, ident(db)))
		}
		if err != nil {
			// A database that may be half-made goes, and the role with it
			// when this call made it.
			p.undo(ctx, db, createdRole)
			return "", fmt.Errorf("create database %s: %w", db, err)
		}
	}
	if err != nil {
		return "", err
	}
	return p.URL(db), nil
}

// Drop removes db and its role; missing ones are fine.
func (p *Postgres) Drop(ctx context.Context, db string) error {
	if !dbNameRE.MatchString(db) {
		return fmt.Errorf("database name %q: use lower-case letters, digits and _", db)
	}
	c, err := p.adminConn(ctx)
	if err != nil {
		return err
	}
	defer c.Close(context.WithoutCancel(ctx))
	return p.drop(ctx, c, db, true)
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

// Ready says why the server cannot serve a deploy now, or nil.
func (p *Postgres) Ready(ctx context.Context) error {
	if p.managed != nil {
		if why := p.managed.Down(); why != "" {
			return fmt.Errorf("the services PostgreSQL is down: %s; glenv is starting it again (see %s)", why, filepath.Join(p.managed.dir, "postgresql.log"))
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	c, err := p.connect(ctx, "")
	if err != nil {
		return fmt.Errorf("the services PostgreSQL does not answer: %w", err)
	}
	return c.Close(ctx)
}
