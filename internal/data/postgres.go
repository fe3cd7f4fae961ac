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
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

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

// Clone replaces db by a copy of from: CREATE DATABASE … TEMPLATE, which
// needs from to have no other connections, else pg_dump | pg_restore.
// Objects of the copy are given to db's role. When it fails, db and its
// role are dropped (at once, or as soon as the server answers again):
// nothing half-made stays.
func (p *Postgres) Clone(ctx context.Context, db, from string, connLimit int) (url string, err error) {
	if !dbNameRE.MatchString(db) || !dbNameRE.MatchString(from) {
		return "", fmt.Errorf("database names %q, %q: use lower-case letters, digits and _", db, from)
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
	exists, err := dbExists(ctx, c, from)
	if err != nil {
		return "", err
	}
	if !exists {
		c.Close(ctx)
		return p.Ensure(ctx, db, connLimit)
	}
	if _, err := c.Exec(ctx, fmt.Sprintf(`DROP DATABASE IF EXISTS %s WITH (FORCE)`, ident(db))); err != nil {
		return "", fmt.Errorf("drop old database %s: %w", db, err)
	}
	defer func() {
		if err != nil {
			p.undo(ctx, db, true)
		}
	}()
	if _, err := p.ensureRole(ctx, c, db, limit); err != nil {
		return "", fmt.Errorf("role %s: %w", db, err)
	}
	if p.beforeCopy != nil {
		p.beforeCopy(db)
	}
	var version int
	var size int64
	var busy bool
	if err := c.QueryRow(ctx, `SELECT current_setting('server_version_num')::int, pg_database_size($1),
		EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = $1)`, from).Scan(&version, &size, &busy); err != nil {
		return "", fmt.Errorf("look at database %s: %w", from, err)
	}
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
		if err := p.takeOwnership(ctx, c, db, from); err != nil {
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
// back in the same transaction; all under the catalog lock, taken on the
// admin connection c.
func (p *Postgres) takeOwnership(ctx context.Context, admin *pgx.Conn, db, from string) error {
	c, err := p.connect(ctx, db)
	if err != nil {
		return err
	}
	defer c.Close(context.WithoutCancel(ctx))
	var roleExists bool
	if err := c.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)`, from).Scan(&roleExists); err != nil || !roleExists {
		return err
	}
	return withCatalogLock(ctx, admin, func() error {
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
	})
}

// undo drops a database a failed call may have half-made, and its role
// when dropRole. Without a server to do it on, it is done before the next
// call that reaches one.
func (p *Postgres) undo(ctx context.Context, db string, dropRole bool) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	c, err := p.connect(ctx, "")
	if err == nil {
		defer c.Close(ctx)
		err = p.drop(ctx, c, db, dropRole)
	}
	if err != nil {
		p.mu.Lock()
		if p.leftovers == nil {
			p.leftovers = map[string]bool{}
		}
		p.leftovers[db] = p.leftovers[db] || dropRole
		p.mu.Unlock()
	}
}

// cleanUp drops what failed calls left, now that the server is back.
func (p *Postgres) cleanUp() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := p.adminConn(ctx)
	if err != nil {
		if p.managed != nil {
			p.managed.log.Warn("databases left by failed clones are dropped at the next deploy", "err", err)
		}
		return
	}
	c.Close(ctx)
}

// dropLeftovers drops what failed calls could not clean up.
func (p *Postgres) dropLeftovers(ctx context.Context, c *pgx.Conn) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for db, role := range p.leftovers {
		if err := p.drop(ctx, c, db, role); err != nil {
			return fmt.Errorf("drop %s, left by a clone that failed: %w", db, err)
		}
		delete(p.leftovers, db)
	}
	return nil
}

func (p *Postgres) drop(ctx context.Context, c *pgx.Conn, db string, role bool) error {
	if _, err := c.Exec(ctx, fmt.Sprintf(`DROP DATABASE IF EXISTS %s WITH (FORCE)`, ident(db))); err != nil {
		return err
	}
	if !role {
		return nil
	}
	return withCatalogLock(ctx, c, func() error {
		_, err := c.Exec(ctx, fmt.Sprintf(`DROP ROLE IF EXISTS %s`, ident(db)))
		return err
	})
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
