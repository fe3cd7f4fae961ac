package auth

import (
	"testing"

	"github.com/glenv/glenv/internal/store"
)

// tree: root ─ eng (inherit) ─ web (inherit) ─ web-mr (no inherit)
//
//	└ ops (no inherit)
func testTree() Tree {
	return NewTree([]store.Space{
		{Name: "root", Inherit: true},
		{Name: "eng", Parent: "root", Inherit: true},
		{Name: "web", Parent: "eng", Inherit: true},
		{Name: "web-mr", Parent: "web", Inherit: false},
		{Name: "ops", Parent: "root", Inherit: false},
	})
}

func TestResolve(t *testing.T) {
	g := func(space, role string) store.Grant { return store.Grant{Space: space, Role: role} }
	cases := []struct {
		name   string
		grants []store.Grant
		space  string
		want   Role
	}{
		{"no grant gives nothing", nil, "web", None},
		{"a role applies in its own space", []store.Grant{g("web", "write")}, "web", Write},
		{"a role applies to every space below", []store.Grant{g("eng", "admin")}, "web-mr", Admin},
		{"a role in root applies everywhere", []store.Grant{g("root", "read")}, "ops", Read},
		{"a role below does not give the same role above", []store.Grant{g("web", "admin")}, "eng", Read},
		{"any role in an inheriting child gives read on its parent", []store.Grant{g("web", "write")}, "eng", Read},
		{"read reaches every ancestor while each step inherits", []store.Grant{g("web", "read")}, "root", Read},
		{"a child that does not inherit gives nothing above", []store.Grant{g("web-mr", "admin")}, "web", None},
		{"read up stops at a space that does not inherit", []store.Grant{g("ops", "admin")}, "root", None},
		{"a sibling gets nothing", []store.Grant{g("web", "admin")}, "ops", None},
		{"the highest role wins", []store.Grant{g("root", "read"), g("web", "write")}, "web", Write},
		{"an unknown space gets nothing", []store.Grant{g("root", "admin")}, "nowhere", None},
		{"an unknown role is ignored", []store.Grant{g("web", "owner")}, "web", None},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Resolve(testTree(), c.grants, c.space); got != c.want {
				t.Fatalf("Resolve(%v, %s) = %s, want %s", c.grants, c.space, got, c.want)
			}
		})
	}
}

func TestResolveSurvivesAParentLoop(t *testing.T) {
	tr := NewTree([]store.Space{{Name: "a", Parent: "b", Inherit: true}, {Name: "b", Parent: "a", Inherit: true}})
	_ = Resolve(tr, []store.Grant{{Space: "a", Role: "read"}}, "c")
	_ = Resolve(tr, []store.Grant{{Space: "a", Role: "read"}}, "b")
}

func TestRoleFromAccessLevel(t *testing.T) {
	cases := []struct {
		name  string
		level int
		want  Role
	}{
		{"no membership gives nothing", 0, None},
		{"Guest gives nothing", 10, None},
		{"Planner gives nothing", 15, None},
		{"Reporter reads", 20, Read},
		{"Security Manager reads", 25, Read},
		{"Developer writes", 30, Write},
		{"Maintainer administers", 40, Admin},
		{"Owner administers", 50, Admin},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := RoleFromAccessLevel(c.level); got != c.want {
				t.Fatalf("RoleFromAccessLevel(%d) = %s, want %s", c.level, got, c.want)
			}
		})
	}
}
