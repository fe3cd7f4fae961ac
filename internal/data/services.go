package data

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
)

// Services is the PostgreSQL behind services.postgresql as glenv serve
// configures it: the server at URL (--services-database-url) or, when URL
// is empty, one glenv runs in Dir, started the first time an app needs a
// database rather than at every start of glenv.
type Services struct {
	URL  string // --services-database-url
	Dir  string // <data-dir>/postgresql for the server glenv runs
	Path string // where to look for initdb, postgres, pg_dump, pg_restore
	// ConnectionLimit is the default and ceiling of each environment's
	// connections to its database (--services-database-connection-limit;
	// 0: DefaultConnectionLimit).
	ConnectionLimit int
	// Logger hears about the server glenv runs: exits and restarts.
	Logger *slog.Logger

	mu sync.Mutex
	pg *Postgres
}

func (s *Services) get(ctx context.Context) (*Postgres, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pg != nil {
		return s.pg, nil
	}
	var err error
	if s.URL != "" {
		s.pg, err = OpenPostgres(ctx, s.URL, s.Path)
	} else {
		s.pg, err = StartPostgresLogged(ctx, s.Dir, s.Path, s.Logger)
	}
	if err != nil {
		s.pg = nil
		return nil, err
	}
	s.pg.ConnectionLimit = s.ConnectionLimit
	return s.pg, nil
}

// Ensure creates db if missing and returns its URL.
func (s *Services) Ensure(ctx context.Context, db string, connLimit int) (string, error) {
	pg, err := s.get(ctx)
	if err != nil {
		return "", err
	}
	return pg.Ensure(ctx, db, connLimit)
}

// Clone replaces db by a copy of from and returns its URL.
func (s *Services) Clone(ctx context.Context, db, from string, connLimit int) (string, error) {
	pg, err := s.get(ctx)
	if err != nil {
		return "", err
	}
	return pg.Clone(ctx, db, from, connLimit)
}

// Databases lists the databases whose names start with prefix; none when
// glenv never made its server.
func (s *Services) Databases(ctx context.Context, prefix string) ([]string, error) {
	if !s.made() {
		return nil, nil
	}
	pg, err := s.get(ctx)
	if err != nil {
		return nil, err
	}
	return pg.Databases(ctx, prefix)
}

// Ready says why the services PostgreSQL cannot serve a deploy now, or nil
// when it can (or is not needed yet: glenv starts its own on first use).
func (s *Services) Ready(ctx context.Context) error {
	s.mu.Lock()
	pg := s.pg
	s.mu.Unlock()
	if pg == nil {
		if s.URL == "" {
			return nil
		}
		// Not opened yet: check the configured server answers.
		var err error
		if pg, err = s.get(ctx); err != nil {
			return err
		}
	}
	return pg.Ready(ctx)
}

// made reports whether there is a server to look at: a configured one, or
// one glenv created in Dir before.
func (s *Services) made() bool {
	if s.URL != "" {
		return true
	}
	_, err := os.Stat(filepath.Join(s.Dir, "pgdata", "PG_VERSION"))
	return err == nil
}

// Drop removes db and its role. With no server configured and none ever
// created in Dir there is nothing to drop.
func (s *Services) Drop(ctx context.Context, db string) error {
	if !s.made() {
		return nil
	}
	pg, err := s.get(ctx)
	if err != nil {
		return err
	}
	return pg.Drop(ctx, db)
}

// Close stops the server glenv runs, if it started one.
func (s *Services) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pg == nil {
		return nil
	}
	err := s.pg.Close()
	s.pg = nil
	return err
}
