// Package benchkit holds what bench programs share: it lets test helpers (the GitLab double's) run inside a bench
// program: a testing.TB whose failures end the program with a message and
// whose temporary directories are removed by Cleanup.
package benchkit

import (
	"fmt"
	"os"
	"testing"
)

// TB is a testing.TB for the program named by New (e.g. "bench/runtime").
type TB struct {
	testing.TB
	prog string
	dirs []string
}

// New returns a TB for the program name.
func New(name string) *TB { return &TB{prog: name} }

// Must ends the program with err, if any.
func (t *TB) Must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, t.prog+":", err)
		os.Exit(1)
	}
}

func (t *TB) Helper() {}

func (t *TB) TempDir() string {
	d, err := os.MkdirTemp("", "bench-commit-")
	t.Must(err)
	t.dirs = append(t.dirs, d)
	return d
}

func (t *TB) Fatal(args ...any)                 { t.Must(fmt.Errorf("%s", fmt.Sprint(args...))) }
func (t *TB) Fatalf(format string, args ...any) { t.Must(fmt.Errorf(format, args...)) }

// RemoveAll removes the directories TempDir made.
func (t *TB) RemoveAll() {
	for _, d := range t.dirs {
		os.RemoveAll(d)
	}
}
