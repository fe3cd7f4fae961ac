package variable

import (
	"strings"
	"testing"
)

func TestValidName(t *testing.T) {
	tests := []struct {
		name, in string
		ok       bool
	}{
		{"letters digits and underscores", "API_KEY_2", true},
		{"a leading underscore", "_PRIVATE", true},
		{"lowercase", "database_url", true},
		{"a leading digit is refused", "2FA_SECRET", false},
		{"a dash is refused", "API-KEY", false},
		{"a dot is refused", "app.key", false},
		{"a space is refused", "API KEY", false},
		{"an equals sign is refused", "A=B", false},
		{"empty is refused", "", false},
		{"too long is refused", strings.Repeat("A", MaxNameLength+1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidName(tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("ValidName(%q) = %v, want ok %v", tt.in, err, tt.ok)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "name") {
				t.Fatalf("the error does not name the field: %v", err)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	both := func(v Variable) Variable { v.VisibleBuild, v.VisibleRun = true, true; return v }
	sensitive := func(v Variable) Variable { v.Sensitive = true; return v }
	integ := func(name, value string) Variable {
		return both(Variable{Name: name, Value: value, Level: LevelIntegration})
	}
	env := func(at, name, value string, inheritable bool) Variable {
		return both(Variable{Name: name, Value: value, Level: LevelEnvironment, Environment: at, Inheritable: inheritable})
	}
	chain := []string{"mr-7", "feature", "main"} // mr-7's parent is feature, whose parent is main
	tests := []struct {
		name    string
		phase   Phase
		repo    map[string]string
		integ   []Variable
		byEnv   map[string][]Variable
		fork    bool
		want    map[string]string
		wantOff []string
	}{
		{name: "repository values are the lowest",
			repo: map[string]string{"MODE": "repo", "ONLY_REPO": "r"}, integ: []Variable{integ("MODE", "integration")},
			want: map[string]string{"MODE": "integration", "ONLY_REPO": "r"}},
		{name: "an environment variable beats the integration's",
			integ: []Variable{integ("MODE", "integration")}, byEnv: map[string][]Variable{"mr-7": {env("mr-7", "MODE", "own", false)}},
			want: map[string]string{"MODE": "own"}},
		{name: "an inheritable ancestor's variable reaches the environment",
			byEnv: map[string][]Variable{"main": {env("main", "MODE", "main", true)}},
			want:  map[string]string{"MODE": "main"}},
		{name: "the nearest ancestor wins",
			byEnv: map[string][]Variable{"main": {env("main", "MODE", "main", true)}, "feature": {env("feature", "MODE", "feature", true)}},
			want:  map[string]string{"MODE": "feature"}},
		{name: "a variable that is not inheritable stays on its environment",
			integ: []Variable{integ("MODE", "integration")},
			byEnv: map[string][]Variable{"main": {env("main", "MODE", "main", true)}, "feature": {env("feature", "MODE", "feature", false)}},
			want:  map[string]string{"MODE": "main"}},
		{name: "not inheritable still applies to its own environment",
			byEnv: map[string][]Variable{"mr-7": {env("mr-7", "MODE", "own", false)}},
			want:  map[string]string{"MODE": "own"}},
		{name: "a build does not see a run-only variable", phase: Build,
			integ: []Variable{{Name: "RUNTIME_KEY", Value: "k", Level: LevelIntegration, VisibleRun: true}},
			want:  map[string]string{}, wantOff: []string{"RUNTIME_KEY"}},
		{name: "the app does not see a build-only variable", phase: Run,
			integ: []Variable{{Name: "NPM_TOKEN", Value: "t", Level: LevelIntegration, VisibleBuild: true}},
			want:  map[string]string{}, wantOff: []string{"NPM_TOKEN"}},
		{name: "a nearer definition hidden from the phase hides farther ones", phase: Build,
			repo: map[string]string{"KEY": "repo"}, integ: []Variable{integ("KEY", "integration")},
			byEnv: map[string][]Variable{"mr-7": {{Name: "KEY", Value: "own", Level: LevelEnvironment, VisibleRun: true}}},
			want:  map[string]string{}, wantOff: []string{"KEY"}},
		{name: "code from a fork gets no variable, sensitive or not, only its repository's values", fork: true,
			repo: map[string]string{"MODE": "repo"}, integ: []Variable{sensitive(integ("SECRET", "s")), integ("MODE", "integration"), integ("PLAIN", "p")},
			byEnv: map[string][]Variable{"mr-7": {sensitive(env("mr-7", "OWN", "o", false))}, "main": {env("main", "INHERITED", "i", true)}},
			want:  map[string]string{"MODE": "repo"}, wantOff: []string{"SECRET", "OWN", "PLAIN", "INHERITED"}},
		{name: "code that is not a fork's gets sensitive variables",
			integ: []Variable{sensitive(integ("SECRET", "s"))},
			want:  map[string]string{"SECRET": "s"}},
		{name: "an environment's own variable beats an inheritable ancestor's",
			byEnv: map[string][]Variable{"main": {env("main", "MODE", "main", true)}, "mr-7": {env("mr-7", "MODE", "own", true)}},
			want:  map[string]string{"MODE": "own"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Resolve(tt.phase, tt.repo, tt.integ, tt.byEnv, chain, tt.fork)
			for name, want := range tt.want {
				if got[name].Value != want {
					t.Errorf("%s = %q (from %+v), want %q", name, got[name].Value, got[name], want)
				}
			}
			for _, name := range tt.wantOff {
				if _, ok := got[name]; ok {
					t.Errorf("%s is set (%+v), want it absent", name, got[name])
				}
			}
			if len(got) != len(tt.want) {
				t.Errorf("got %d variables %v, want %d", len(got), got, len(tt.want))
			}
		})
	}
}

func TestChain(t *testing.T) {
	tests := []struct {
		name    string
		env     string
		parents map[string]string
		want    string
	}{
		{"an environment without a parent is its own chain", "main", map[string]string{}, "main"},
		{"ancestors follow nearest first", "mr-7", map[string]string{"mr-7": "feature", "feature": "main"}, "mr-7 feature main"},
		{"a loop ends the chain", "a", map[string]string{"a": "b", "b": "a"}, "a b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := strings.Join(Chain(tt.env, tt.parents), " "); got != tt.want {
				t.Fatalf("Chain = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSame(t *testing.T) {
	v := func(value string, sensitive, build, run bool) map[string]Resolved {
		return map[string]Resolved{"K": {Variable: Variable{Name: "K", Value: value, Sensitive: sensitive, VisibleBuild: build, VisibleRun: run}}}
	}
	tests := []struct {
		name string
		a, b map[string]Resolved
		same bool
	}{
		{"equal definitions are the same", v("x", false, true, true), v("x", false, true, true), true},
		{"a new value differs", v("x", false, true, true), v("y", false, true, true), false},
		{"a visibility change differs", v("x", false, true, true), v("x", false, true, false), false},
		{"a sensitivity change differs (forks see it or not)", v("x", false, true, true), v("x", true, true, true), false},
		{"a name added differs", v("x", false, true, true), map[string]Resolved{}, false},
		{"where it comes from does not matter",
			map[string]Resolved{"K": {Variable: Variable{Name: "K", Value: "x", Level: LevelIntegration}}},
			map[string]Resolved{"K": {Variable: Variable{Name: "K", Value: "x", Level: LevelEnvironment}, From: "main"}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Same(tt.a, tt.b); got != tt.same {
				t.Fatalf("Same = %v, want %v", got, tt.same)
			}
		})
	}
}

func TestValidValue(t *testing.T) {
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"an empty value", "", true},
		{"a multi-line value", "line 1\nline 2", true},
		{"64 KiB", strings.Repeat("a", MaxValueBytes), true},
		{"more than 64 KiB is refused", strings.Repeat("a", MaxValueBytes+1), false},
		{"a NUL byte is refused", "a\x00b", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidValue(tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("ValidValue = %v, want ok %v", err, tt.ok)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "value") {
				t.Fatalf("the error does not name the field: %v", err)
			}
		})
	}
}
