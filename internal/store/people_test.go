package store_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/store/storetest"
)

func TestPeopleSpacesGrantsAndTickets(t *testing.T) {
	ctx := context.Background()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		if _, err := store.GetSpace(ctx, s.Reader(), "root"); err != nil {
			t.Fatalf("root space missing: %v", err)
		}
		if _, err := store.CreateSpace(ctx, s.DB, store.Space{Name: "web", Parent: "root", Inherit: true}); err != nil {
			t.Fatal(err)
		}
		if _, err := store.CreateSpace(ctx, s.DB, store.Space{Name: "web", Parent: "root"}); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("duplicate space: %v", err)
		}
		u, err := store.CreateUser(ctx, s.DB, store.User{Username: "dev", Name: "Dev"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := store.SaveIdentity(ctx, s.DB, store.Identity{UserID: u.ID, Host: "gitlab.example.com", GitLabUserID: 7, Username: "dev",
			AccessSealed: "a", RefreshSealed: "r", ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if got, err := store.FindUser(ctx, s.Reader(), "gitlab.example.com/dev"); err != nil || got.ID != u.ID {
			t.Fatalf("find by host/username: %v %+v", err, got)
		}
		if err := store.PutGrant(ctx, s.DB, store.Grant{UserID: u.ID, Space: "web", Role: "read"}); err != nil {
			t.Fatal(err)
		}
		if err := store.PutGrant(ctx, s.DB, store.Grant{UserID: u.ID, Space: "web", Role: "write"}); err != nil {
			t.Fatal(err)
		}
		if gs, _ := store.GrantsOf(ctx, s.Reader(), u.ID); len(gs) != 1 || gs[0].Role != "write" {
			t.Fatalf("a second grant in a space replaces the first: %+v", gs)
		}
		if c, i, g, err := store.SpaceUsage(ctx, s.Reader(), "web"); err != nil || c != 0 || i != 0 || g != 1 {
			t.Fatalf("usage %d %d %d %v", c, i, g, err)
		}

		// A ticket works once and only on its host.
		if err := store.PutEnvTicket(ctx, s.DB, "t1", u.ID, "main--app", time.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if _, err := store.TakeEnvTicket(ctx, s.DB, "t1", "other--app"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("ticket on another host: %v", err)
		}
		if err := store.PutEnvTicket(ctx, s.DB, "t2", u.ID, "main--app", time.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if id, err := store.TakeEnvTicket(ctx, s.DB, "t2", "main--app"); err != nil || id != u.ID {
			t.Fatalf("ticket: %d %v", id, err)
		}
		if _, err := store.TakeEnvTicket(ctx, s.DB, "t2", "main--app"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("ticket used twice: %v", err)
		}

		// Removing a user takes their sessions, identities, grants and tokens.
		if _, err := store.CreateSession(ctx, s.DB, "cookie", store.Session{UserID: u.ID, CSRF: "x", ExpiresAt: time.Now().Add(time.Hour)}, ""); err != nil {
			t.Fatal(err)
		}
		tokV := store.NewTokenValue()
		if _, err := store.CreateUserToken(ctx, s.DB, store.APIToken{Name: "t", Role: store.RoleMember, UserID: u.ID}, tokV); err != nil {
			t.Fatal(err)
		}
		if err := s.Tx(ctx, func(tx *sql.Tx) error { return store.DeleteUser(ctx, tx, u.ID) }); err != nil {
			t.Fatal(err)
		}
		if _, err := store.GetSession(ctx, s.Reader(), "cookie"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("session of a removed user: %v", err)
		}
		if _, err := store.Authenticate(ctx, s.Reader(), tokV); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("token of a removed user: %v", err)
		}
		if err := store.InsertAuditEvent(ctx, s.DB, store.AuditEvent{Actor: "a", Action: "x", Target: "y"}); err != nil {
			t.Fatal(err)
		}
		if evs, err := store.ListAuditEvents(ctx, s.Reader(), 0, 10); err != nil || len(evs) != 1 {
			t.Fatalf("audit: %v %+v", err, evs)
		}
	})
}
