package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/glenv/glenv/internal/secret"
	"github.com/glenv/glenv/internal/store"
)

// Service holds what authentication needs; its zero clock is time.Now.
type Service struct {
	Store     *store.Store
	Box       *secret.Box
	PublicURL string
	// Admins are host/username pairs (--admins, GLENV_ADMINS) made admins
	// when they sign in.
	Admins []string
	Log    *slog.Logger
	// HTTP is the client for GitLab's OAuth and API endpoints.
	HTTP *http.Client
	// Now is glenv's clock (tests move it).
	Now func() time.Time
	// EnvURL is where an environment is served (private previews hand
	// people over to it).
	EnvURL func(store.Environment) string

	initOnce sync.Once
	owner    string   // this replica's name in refresh leases
	locks    sync.Map // identity id → *sync.Mutex
	audits   atomic.Int64
	accessMu sync.Mutex
	access   map[string]accessEntry // private previews: host label → rule
	jobs     jobTokens              // CI job token verdicts and verification limits
}

func (s *Service) init() {
	s.initOnce.Do(func() {
		s.owner = randomHex(8)
		if s.Log == nil {
			s.Log = slog.Default()
		}
		if s.HTTP == nil {
			s.HTTP = &http.Client{Timeout: 20 * time.Second}
		}
		if s.Now == nil {
			s.Now = time.Now
		}
	})
}

func (s *Service) now() time.Time { s.init(); return s.Now().UTC() }

// Errors of authentication; messages say what to do.
var (
	ErrNoCredentials = errors.New("sign in at /auth/gitlab?host=<gitlab host>, or send Authorization: Bearer <token> (glenv --api-token / GLENV_API_TOKEN)")
	ErrBadToken      = errors.New("invalid or revoked API token: create a new one with glenv token:create")
	ErrTokenExpired  = errors.New("API token expired: create a new one with glenv token:create")
	ErrBadSession    = errors.New("your session ended or was revoked: sign in again at /auth/gitlab")
)

// SessionCookie is the browser session's cookie.
const SessionCookie = "glenv_session"

// TokenValue finds an API token the way GitLab's API guard does: the
// PRIVATE-TOKEN header or an Authorization: Bearer header (query parameters
// are the caller's choice: see Authenticate's query argument). /api/v4
// looks wider, body and job tokens included: see V4Authenticate.
func TokenValue(r *http.Request, query bool) string {
	if v := r.Header.Get("PRIVATE-TOKEN"); v != "" {
		return v
	}
	if v := bearerHeader(r); v != "" {
		return v
	}
	if query {
		for _, key := range []string{"private_token", "access_token"} {
			if v := r.URL.Query().Get(key); v != "" {
				return v
			}
		}
	}
	return ""
}

// Authenticate resolves the caller of r from an API token (also from the
// private_token / access_token query parameters when query is set, as
// GitLab's /api/v4 accepts them) or the glenv_session cookie.
func (s *Service) Authenticate(ctx context.Context, r *http.Request, query bool) (Principal, error) {
	s.init()
	if v := TokenValue(r, query); v != "" {
		return s.tokenPrincipal(ctx, v)
	}
	if c, err := r.Cookie(SessionCookie); err == nil && c.Value != "" {
		sess, err := store.GetSession(ctx, s.Store.Reader(), c.Value)
		if errors.Is(err, store.ErrNotFound) {
			return Principal{}, ErrBadSession
		}
		if err != nil {
			return Principal{}, err
		}
		p, err := s.userPrincipal(ctx, sess.UserID, KindSession)
		if err != nil {
			return p, err
		}
		p.Session = &sess
		return p, nil
	}
	return Principal{}, ErrNoCredentials
}

func (s *Service) tokenPrincipal(ctx context.Context, value string) (Principal, error) {
	t, err := store.Authenticate(ctx, s.Store.Reader(), value)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return Principal{}, ErrBadToken
	case errors.Is(err, store.ErrExpired):
		return Principal{}, ErrTokenExpired
	case err != nil:
		return Principal{}, err
	}
	if now := s.now(); now.Sub(t.LastUsedAt) > time.Minute {
		if err := store.TouchAPIToken(ctx, s.Store.DB, t.ID, now); err != nil {
			s.Log.Warn("record token use", "token", t.ID, "err", err)
		}
	}
	var p Principal
	if t.UserID != 0 {
		if p, err = s.userPrincipal(ctx, t.UserID, KindToken); err != nil {
			if errors.Is(err, ErrBadSession) {
				return p, ErrBadToken
			}
			return p, err
		}
		// A user's token has at most the user's rights: admin only while
		// the user is one and the token was made as admin.
		p.Admin = p.Admin && t.Role == store.RoleAdmin
	} else {
		tree, err := s.tree(ctx)
		if err != nil {
			return p, err
		}
		p = Principal{Kind: KindToken, Name: "token:" + t.Name, Admin: t.Role == store.RoleAdmin, tree: tree}
		if !p.Admin {
			// glenv's own member tokens kept what they could do before
			// spaces: everything but administration.
			p.Grants = []store.Grant{{Space: Root, Role: "write"}}
		}
	}
	p.Kind, p.TokenID, p.Scope = KindToken, t.ID, t.Scope
	if p.Scope == "" {
		p.Scope = store.ScopeAPI
	}
	return p, nil
}

func (s *Service) userPrincipal(ctx context.Context, userID int64, kind string) (Principal, error) {
	q := s.Store.Reader()
	u, err := store.GetUser(ctx, q, userID)
	if errors.Is(err, store.ErrNotFound) {
		return Principal{}, ErrBadSession
	}
	if err != nil {
		return Principal{}, err
	}
	grants, err := store.GrantsOf(ctx, q, userID)
	if err != nil {
		return Principal{}, err
	}
	tree, err := s.tree(ctx)
	if err != nil {
		return Principal{}, err
	}
	name := u.Username
	if ids, err := store.IdentitiesOf(ctx, q, userID); err == nil && len(ids) > 0 {
		name = ids[0].Host + "/" + ids[0].Username
	}
	return Principal{Kind: kind, Name: name, UserID: u.ID, Admin: u.IsAdmin, Scope: store.ScopeAPI, Grants: grants, tree: tree}, nil
}

func (s *Service) tree(ctx context.Context) (Tree, error) {
	spaces, err := store.ListSpaces(ctx, s.Store.Reader())
	if err != nil {
		return nil, fmt.Errorf("load spaces: %w", err)
	}
	return NewTree(spaces), nil
}

// Tree returns the spaces as they are now.
func (s *Service) Tree(ctx context.Context) (Tree, error) { return s.tree(ctx) }

// CheckCSRF refuses a write made with a session cookie unless it carries the
// session's CSRF token (X-CSRF-Token) or comes from glenv's own origin.
// Token callers are not exposed to CSRF: browsers do not send their header.
func (s *Service) CheckCSRF(p Principal, r *http.Request) error {
	if p.Kind != KindSession || r.Method == http.MethodGet || r.Method == http.MethodHead || r.Method == http.MethodOptions {
		return nil
	}
	if v := r.Header.Get("X-CSRF-Token"); v != "" && subtle.ConstantTimeCompare([]byte(v), []byte(p.Session.CSRF)) == 1 {
		return nil
	}
	if o := r.Header.Get("Origin"); o != "" && o == origin(s.PublicURL) {
		return nil
	}
	return errors.New("a write with a session cookie needs the X-CSRF-Token header (csrf_token from GET /api/v1/me) or an Origin of " + origin(s.PublicURL))
}

func origin(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return u
	}
	host, _, _ := strings.Cut(rest, "/")
	return scheme + "://" + host
}

// RemoteAddr is where a request came from, for the audit trail.
func RemoteAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// Audit records a change made by p.
func (s *Service) Audit(ctx context.Context, r *http.Request, p Principal, action, target, detail string) {
	actor := p.Name
	if actor == "" {
		actor = "system"
	}
	e := store.AuditEvent{Actor: actor, Action: action, Target: target, Detail: detail}
	if r != nil {
		e.RemoteAddr = RemoteAddr(r)
	}
	if err := store.InsertAuditEvent(ctx, s.Store.DB, e); err != nil {
		s.Log.Error("audit", "action", action, "target", target, "err", err)
	}
	if s.audits.Add(1)%pruneEvery == 0 {
		s.prune(ctx)
	}
}

const (
	// AuditRetention is how long the audit trail keeps an event.
	AuditRetention = 400 * 24 * time.Hour
	pruneEvery     = 500
)

// prune drops audit events past their retention and stale cached GitLab
// memberships, so neither grows without bound (sessions, sign-in states and
// tickets are pruned as new ones are written).
func (s *Service) prune(ctx context.Context) {
	now := s.now()
	if _, err := store.PruneAuditEvents(ctx, s.Store.DB, now.Add(-AuditRetention)); err != nil {
		s.Log.Warn("prune audit events", "err", err)
	}
	if err := store.PruneMemberships(ctx, s.Store.DB, now.Add(-MembershipTTL)); err != nil {
		s.Log.Warn("prune cached memberships", "err", err)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}
