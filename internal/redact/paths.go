// Package redact keeps glenv's host paths out of text that leaves the
// machine: activity results and logs that GitLab notes, commit statuses and
// public log links show to anyone who can read the project. A path in an
// error says where glenv keeps its data and secrets; people need the
// message, not the layout of the host. It only rewrites text.
package redact

import (
	"path/filepath"
	"sort"
	"strings"
)

// Paths replaces host directories in text with the names people know them by.
type Paths struct {
	r *strings.Replacer
}

// NewPaths hides each directory (a key, made absolute; its resolved form too)
// behind its name (the value), e.g. {"/var/lib/glenv": "<data-dir>"}.
// Longer paths go first, so a directory inside another keeps its own name.
func NewPaths(names map[string]string) *Paths {
	type pair struct{ path, name string }
	var pairs []pair
	seen := map[string]bool{}
	add := func(p, name string) {
		p = strings.TrimRight(filepath.Clean(p), "/")
		if p == "" || p == "." || seen[p] {
			return
		}
		seen[p] = true
		pairs = append(pairs, pair{p, name})
	}
	for p, name := range names {
		if p == "" || p == "/" {
			continue
		}
		if abs, err := filepath.Abs(p); err == nil {
			add(abs, name)
		}
		if real, err := filepath.EvalSymlinks(p); err == nil {
			add(real, name)
		} else if dir, err := filepath.EvalSymlinks(filepath.Dir(p)); err == nil {
			add(filepath.Join(dir, filepath.Base(p)), name) // a file not created yet
		}
	}
	sort.Slice(pairs, func(i, j int) bool { return len(pairs[i].path) > len(pairs[j].path) })
	var args []string
	for _, p := range pairs {
		args = append(args, p.path, p.name)
	}
	return &Paths{r: strings.NewReplacer(args...)}
}

// Text returns s with every hidden directory replaced by its name.
func (p *Paths) Text(s string) string {
	if p == nil || p.r == nil {
		return s
	}
	return p.r.Replace(s)
}

// Error returns err with its text redacted; errors.Is and errors.As still
// see the original.
func (p *Paths) Error(err error) error {
	if err == nil {
		return nil
	}
	text := p.Text(err.Error())
	if text == err.Error() {
		return err
	}
	return &redacted{err: err, text: text}
}

type redacted struct {
	err  error
	text string
}

func (r *redacted) Error() string { return r.text }
func (r *redacted) Unwrap() error { return r.err }
