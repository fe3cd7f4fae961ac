package auth

import (
	"context"

	"github.com/glenv/glenv/internal/store"
)

// Principal kinds.
const (
	KindToken   = "token"
	KindSession = "session"
	KindJob     = "job"
)

// Principal is who is calling, with everything a role decision needs.
type Principal struct {
	Kind string `json:"kind"`
	// Name says who for the audit trail: host/username, or token:<name>.
	Name   string `json:"name"`
	UserID int64  `json:"user_id,omitempty"`
	// Admin is a glenv admin: the user's flag or an admin token of glenv.
	Admin bool `json:"admin"`
	// Scope is api or read_api; sessions have api.
	Scope  string        `json:"scope"`
	Grants []store.Grant `json:"grants"`
	// TokenID is the API token used (KindToken).
	TokenID int64 `json:"token_id,omitempty"`
	// JobProjectID is the GitLab project of a CI job token (KindJob), on
	// the GitLab at JobBaseURL.
	JobProjectID int64  `json:"job_project_id,omitempty"`
	JobBaseURL   string `json:"-"`
	// JobUserID is the GitLab user the job runs as (KindJob): its rights
	// are that user's (V4AllowMaintainer reads their access level).
	JobUserID int64 `json:"-"`
	// Session is the browser session (KindSession), for the CSRF check.
	Session *store.Session `json:"-"`
	tree    Tree
	// jobToken is a CI job token, from a header, a parameter or
	// Authorization: Bearer, not verified yet (V4Allow verifies it).
	jobToken string
}

// Action is what a caller wants to do.
type Action int

const (
	// ActRead sees integrations, environments, activities and logs.
	ActRead Action = iota
	// ActWrite redeploys, activates, deactivates, syncs and deletes environments.
	ActWrite
	// ActAdmin manages integrations and the space's members and sees secrets.
	ActAdmin
)

func (a Action) needs() Role { return Role(a) + 1 }

func (a Action) String() string { return a.needs().String() }

// Role is the principal's role in space from glenv's own grants (GitLab
// membership comes on top, per integration: see Access.CanIntegration).
func (p Principal) Role(space string) Role {
	switch {
	case p.Kind == KindJob:
		return None
	case p.Admin:
		if _, ok := p.tree[space]; ok || p.tree == nil {
			return Admin
		}
		return None
	}
	return Resolve(p.tree, p.Grants, space)
}

// Can is the one place role checks land: may p do action in space? A
// read_api token never writes.
func Can(p Principal, action Action, space string) bool {
	if action != ActRead && p.Scope == store.ScopeReadAPI {
		return false
	}
	return p.Role(space) >= action.needs()
}

// WithTree returns p resolving roles over t.
func (p Principal) WithTree(t Tree) Principal { p.tree = t; return p }

type ctxKey struct{}

// WithPrincipal stores p in ctx.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// From returns the principal of a request.
func From(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(ctxKey{}).(Principal)
	return p, ok
}
