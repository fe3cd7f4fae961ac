package data

import (
	"context"
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
		s.pg, err = StartPostgres(ctx, s.Dir, s.Path)
	}
	if err != nil {
		s.pg = nil
	}
	return s.pg, err
}

// Ensure creates db if missing and returns its URL.
func (s *Services) Ensure(ctx context.Context, db string) (string, error) {
	pg, err := s.get(ctx)
	if err != nil {
		return "", err
	}
	return pg.Ensure(ctx, db)
}

// Clone replaces db by a copy of from and returns its URL.
func (s *Services) Clone(ctx context.Context, db, from string) (string, error) {
	pg, err := s.get(ctx)
	if err != nil {
		return "", err
	}
	return pg.Clone(ctx, db, from)
}

// Drop removes db and its role. With no server configured and none ever
// created in Dir there is nothing to drop.
func (s *Services) Drop(ctx context.Context, db string) error {
	if s.URL == "" {
		if _, err := os.Stat(filepath.Join(s.Dir, "pgdata", "PG_VERSION")); err != nil {
			return nil
		}
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
