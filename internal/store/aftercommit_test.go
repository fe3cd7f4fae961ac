package store_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"

	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/store/storetest"
)

func TestAfterCommit(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		var ran []string
		t.Run("what follows a commit runs once it committed", func(t *testing.T) {
			err := s.Tx(ctx, func(tx *sql.Tx) error {
				s.AfterCommit(tx, func() { ran = append(ran, "committed") })
				if len(ran) != 0 {
					t.Fatal("ran inside the transaction")
				}
				return nil
			})
			if err != nil || len(ran) != 1 {
				t.Fatalf("err %v, ran %v; want one run after the commit", err, ran)
			}
		})
		t.Run("what follows a commit never runs after a rollback", func(t *testing.T) {
			err := s.Tx(ctx, func(tx *sql.Tx) error {
				s.AfterCommit(tx, func() { ran = append(ran, "rolled back") })
				return errors.New("fail")
			})
			if err == nil || len(ran) != 1 {
				t.Fatalf("err %v, ran %v; want the rollback's function forgotten", err, ran)
			}
		})
		t.Run("a later transaction runs only its own", func(t *testing.T) {
			if err := s.Tx(ctx, func(tx *sql.Tx) error { return nil }); err != nil || len(ran) != 1 {
				t.Fatalf("err %v, ran %v", err, ran)
			}
		})
	})
}
