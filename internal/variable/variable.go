// Package variable decides which variables an environment's build and app
// see (issue 17, part B): names follow POSIX rules, and Resolve applies the
// precedence — repository values (.glenv.yml env) below integration
// variables, below environment variables inherited down the parent chain,
// below the environment's own — without I/O. Storage, the secret box, the
// CLI and /api/v1 are not wired to it yet.
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
// gets the repository's values only.
func Resolve(phase Phase, repo map[string]string, integration []Variable, byEnv map[string][]Variable, chain []string, fork bool) map[string]Resolved {
	out := map[string]Resolved{}
	for name, value := range repo {
		out[name] = Resolved{Variable: Variable{Name: name, Value: value, Level: LevelRepository, VisibleBuild: true, VisibleRun: true}}
	}
	if fork {
		return out
	}
	visible := func(v Variable) bool {
		if phase == Build {
			return v.VisibleBuild
		}
		return v.VisibleRun
	}
	set := func(v Variable, from string) {
		if visible(v) {
			out[v.Name] = Resolved{Variable: v, From: from}
		} else {
			// A nearer definition hidden from this phase hides the farther
			// ones too (the repository's included): the nearest definition
			// is the one that counts, and it says "not in this phase".
			delete(out, v.Name)
		}
	}
	for _, v := range integration {
		set(v, "")
	}
	// Farthest ancestor first, so nearer ones overwrite.
	for i := len(chain) - 1; i >= 0; i-- {
		for _, v := range byEnv[chain[i]] {
			if i > 0 && !v.Inheritable {
				continue
			}
			set(v, chain[i])
		}
	}
	return out
}
