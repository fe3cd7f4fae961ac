// Package variable decides which variables an environment's build and app
// see (issue 17, item 1): names follow POSIX rules, values and counts are
// bounded, and Resolve applies the precedence — repository values
// (.glenv.yml env) below integration variables, below environment
// variables inherited down the parent chain, below the environment's own —
// without I/O. Storage, sealing and redeploys are internal/variables'.
package variable

import (
	"fmt"
	"regexp"
)

// Level is where a variable is defined.
type Level string

const (
	// LevelRepository is .glenv.yml's env: the lowest precedence.
	LevelRepository Level = "repository"
	// LevelIntegration applies to every environment of the integration.
	LevelIntegration Level = "integration"
	// LevelEnvironment applies to one environment and, when inheritable,
	// to the environments below it.
	LevelEnvironment Level = "environment"
)

// Variable is one definition.
type Variable struct {
	// ID is the stored row's, when it has one.
	ID    int64
	Name  string
	Value string
	Level Level
	// Environment defines it, for LevelEnvironment.
	Environment string
	// Inheritable environment variables reach the environments below.
	Inheritable bool
	Sensitive   bool
	// VisibleBuild and VisibleRun say which phases see it.
	VisibleBuild, VisibleRun bool
}

// Phase is when a variable is read.
type Phase int

const (
	// Build is the build commands.
	Build Phase = iota
	// Run is the app.
	Run
)

var nameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// MaxNameLength bounds names (environment blocks have limits of their own).
const MaxNameLength = 255

// ValidName checks a variable name against POSIX's rule for environment
// variable names that shells accept.
func ValidName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("name: is empty; POSIX names start with a letter or _ and contain only letters, digits and _ ([A-Za-z_][A-Za-z0-9_]*)")
	case len(name) > MaxNameLength:
		return fmt.Errorf("name: %d characters; at most %d", len(name), MaxNameLength)
	case !nameRE.MatchString(name):
		return fmt.Errorf("name %q: POSIX names start with a letter or _ and contain only letters, digits and _ ([A-Za-z_][A-Za-z0-9_]*), e.g. API_KEY", name)
	}
	return nil
}

// Resolved is the value a name takes and where it came from.
type Resolved struct {
	Variable
	// From is the environment that defined it (LevelEnvironment), or "".
	From string
}

// Resolve returns the variables one environment sees in phase. chain is
// the environment followed by its ancestors, nearest first (feature, main);
// byEnv the environment-level variables by environment name. The nearest
// definition wins: the environment's own, then each ancestor's inheritable
// ones, then the integration's, then the repository's. Code from a fork
// gets none of them, only its own repository's values (DESIGN.md,
// Variable: "never given to fork code"; GitLab likewise runs a fork's merge
// request pipelines without the target project's CI/CD variables).
func Resolve(phase Phase, repo map[string]string, integration []Variable, byEnv map[string][]Variable, chain []string, fork bool) map[string]Resolved {
	out := map[string]Resolved{}
	for name, value := range repo {
		out[name] = Resolved{Variable: Variable{Name: name, Value: value, Level: LevelRepository, VisibleBuild: true, VisibleRun: true}}
	}
	if fork {
		return out
	}
	for name, v := range Effective(integration, byEnv, chain) {
		if v.Visible(phase) {
			out[name] = v
		} else {
			// A nearer definition hidden from this phase hides the farther ones too, the repository's included: the
			// nearest definition is the one that counts, and it says "not
			// here".
			delete(out, name)
		}
	}
	return out
}

// Visible reports whether phase sees v.
func (v Variable) Visible(phase Phase) bool {
	if phase == Build {
		return v.VisibleBuild
	}
	return v.VisibleRun
}

// Effective returns the nearest definition of every name for the
// environment chain[0], whatever the phase: the integration's, overridden
// by each ancestor's inheritable ones from the farthest down, overridden by
// the environment's own. Two environments with equal Effective sets (see
// Same) resolve to the same values in every phase, whatever their
// repository says.
func Effective(integration []Variable, byEnv map[string][]Variable, chain []string) map[string]Resolved {
	out := map[string]Resolved{}
	for _, v := range integration {
		out[v.Name] = Resolved{Variable: v}
	}
	// Farthest ancestor first, so nearer ones overwrite.
	for i := len(chain) - 1; i >= 0; i-- {
		for _, v := range byEnv[chain[i]] {
			if i > 0 && !v.Inheritable {
				continue
			}
			out[v.Name] = Resolved{Variable: v, From: chain[i]}
		}
	}
	return out
}

// Same reports whether two Effective sets give an environment the same
// variables: same names, values, visibility and sensitivity (which decides
// what a fork sees). Where a definition comes from does not matter.
func Same(a, b map[string]Resolved) bool {
	if len(a) != len(b) {
		return false
	}
	for name, x := range a {
		y, ok := b[name]
		if !ok || x.Value != y.Value || x.Sensitive != y.Sensitive || x.VisibleBuild != y.VisibleBuild || x.VisibleRun != y.VisibleRun {
			return false
		}
	}
	return true
}

// MaxChain bounds how far up the parent chain variables are inherited; it
// also ends a chain that loops (a parent recorded wrongly).
const MaxChain = 64

// Chain is env followed by its ancestors, nearest first, from a map of
// each environment's parent.
func Chain(env string, parents map[string]string) []string {
	chain := []string{env}
	seen := map[string]bool{env: true}
	for cur := parents[env]; cur != "" && !seen[cur] && len(chain) < MaxChain; cur = parents[cur] {
		chain = append(chain, cur)
		seen[cur] = true
	}
	return chain
}
