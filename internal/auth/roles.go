// Package auth is who may do what in glenv: GitLab hosts people sign in
// with, OAuth sign-in and server-side sessions, API tokens and CI job tokens,
// spaces and roles, roles implied by GitLab membership, private previews and
// the audit trail.
//
// Role decisions are pure functions of the spaces, the grants and the
// principal (Resolve, Can), table-tested without a database; the rest reads
// the store and calls GitLab, never inside a database transaction.
package auth

import (
	"fmt"

	"github.com/glenv/glenv/internal/store"
)

// Role is what someone may do in a space; higher includes lower.
type Role int

const (
	None Role = iota
	Read
	Write
	Admin
)

func (r Role) String() string {
	switch r {
	case Read:
		return "read"
	case Write:
		return "write"
	case Admin:
		return "admin"
	}
	return "none"
}

// ParseRole reads read, write or admin.
func ParseRole(s string) (Role, error) {
	switch s {
	case "read":
		return Read, nil
	case "write":
		return Write, nil
	case "admin":
		return Admin, nil
	}
	return None, fmt.Errorf("role: %q must be read, write or admin", s)
}

// Root is the space every other space is below.
const Root = "root"

// maxDepth bounds walks up the tree, so a corrupted parent loop cannot hang.
const maxDepth = 64

// Tree is the spaces by name.
type Tree map[string]store.Space

// NewTree indexes spaces by name.
func NewTree(spaces []store.Space) Tree {
	t := Tree{}
	for _, s := range spaces {
		t[s.Name] = s
	}
	return t
}

// Ancestors returns the spaces above name, nearest first.
func (t Tree) Ancestors(name string) []string {
	var out []string
	for s, ok := t[name]; ok && s.Parent != "" && len(out) < maxDepth; s, ok = t[s.Parent] {
		out = append(out, s.Parent)
	}
	return out
}

// IsBelow reports whether space is below (or is) above.
func (t Tree) IsBelow(space, above string) bool {
	if space == above {
		return true
	}
	for _, a := range t.Ancestors(space) {
		if a == above {
			return true
		}
	}
	return false
}

// Resolve is a user's role in space, from their grants (Spacelift's model):
//   - a role in a space applies to that space and every space below it;
//   - in a space that inherits, any role gives read on its parent, and so on
//     up while each space on the way inherits;
//   - the highest role found wins; an unknown space gets none.
func Resolve(t Tree, grants []store.Grant, space string) Role {
	if _, ok := t[space]; !ok {
		return None
	}
	best := None
	for _, g := range grants {
		r, err := ParseRole(g.Role)
		if err != nil {
			continue
		}
		if t.IsBelow(space, g.Space) {
			best = max(best, r)
			continue
		}
		// Read up: from the granted space towards root while each step inherits.
		for s, depth := g.Space, 0; depth < maxDepth; depth++ {
			node, ok := t[s]
			if !ok || !node.Inherit || node.Parent == "" {
				break
			}
			if node.Parent == space {
				best = max(best, Read)
				break
			}
			s = node.Parent
		}
	}
	return best
}

// RoleFromAccessLevel is the role a GitLab access level implies on an
// integration's environments: Reporter → read, Developer → write,
// Maintainer and Owner → admin. Levels are compared as thresholds, because
// Planner (15) and Security Manager (25) are not supersets of the levels
// below them (PROTOCOL.md §3.9; GitLab's Gitlab::Access).
func RoleFromAccessLevel(level int) Role {
	switch {
	case level >= MaintainerAccess:
		return Admin
	case level >= DeveloperAccess:
		return Write
	case level >= ReporterAccess:
		return Read
	}
	return None
}

// GitLab's access levels (Gitlab::Access). Guest is the least that lets a
// member see a private project.
const (
	GuestAccess      = 10
	ReporterAccess   = 20
	DeveloperAccess  = 30
	MaintainerAccess = 40
)
