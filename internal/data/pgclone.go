package data

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

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
