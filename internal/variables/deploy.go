package variables

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/variable"
)

// minLineRedaction is the shortest line of a multi-line sensitive value
// redacted on its own (output is redacted line by line, so a multi-line
// value never appears whole). Eight characters is GitLab's minimum for a
// masked value (app/models/concerns/ci/maskable.rb): shorter fragments
// would mask ordinary words of the log. The whole value is always redacted.
const minLineRedaction = 8

// ForDeploy resolves what one deploy of env gets: the build's and the
// app's variables over the repository's values (repo, .glenv.yml env),
// the sensitive values to redact, and a digest of the build's values for
// the build cache key. Fork code (fork) gets no variable: Withheld counts
// them.
func (s *Service) ForDeploy(ctx context.Context, in store.Integration, env store.Environment, repo map[string]string, fork bool) (variable.Deploy, error) {
	q := s.Store.Reader()
	rows, err := store.VariablesOfIntegration(ctx, q, in.ID)
	if err != nil {
		return variable.Deploy{}, err
	}
	ps, err := ancestors(ctx, q, in.Name, env)
	if err != nil {
		return variable.Deploy{}, err
	}
	chain := variable.Chain(env.Name, ps)
	// Open only the values this environment can see.
	inChain := map[string]bool{"": true}
	for _, name := range chain {
		inChain[name] = true
	}
	rows = slices.DeleteFunc(rows, func(v store.Variable) bool { return !inChain[v.Environment] })
	if rows, err = s.open(rows); err != nil {
		return variable.Deploy{}, err
	}
	integ, byEnv := split(rows)
	out := variable.Deploy{Build: map[string]string{}, Run: map[string]string{}}
	for name, r := range variable.Resolve(variable.Build, repo, integ, byEnv, chain, fork) {
		out.Build[name] = r.Value
	}
	for name, r := range variable.Resolve(variable.Run, repo, integ, byEnv, chain, fork) {
		out.Run[name] = r.Value
	}
	for _, r := range variable.Effective(integ, byEnv, chain) {
		if fork {
			out.Withheld++
		}
		if !r.Sensitive {
			continue
		}
		out.Sensitive = append(out.Sensitive, redactions(r.Value)...)
	}
	out.BuildDigest = s.Box.MAC("variables build", canonical(out.Build))
	return out, nil
}

// ancestors maps env and each of its live ancestors to its parent, read one
// by one up the chain (at most variable.MaxChain rows), instead of every
// environment of the integration: a burst of a thousand new environments
// read a million rows that way (internal/kube's burst benchmark).
func ancestors(ctx context.Context, q store.Querier, integration string, env store.Environment) (map[string]string, error) {
	ps := map[string]string{env.Name: env.Parent}
	for cur := env.Parent; cur != "" && len(ps) <= variable.MaxChain; {
		if _, seen := ps[cur]; seen {
			break
		}
		e, err := store.GetEnvironment(ctx, q, integration, cur)
		if errors.Is(err, store.ErrNotFound) || err == nil && !e.DeletedAt.IsZero() {
			break
		}
		if err != nil {
			return nil, err
		}
		ps[cur] = e.Parent
		cur = e.Parent
	}
	return ps, nil
}

// redactions are the strings to hide for one sensitive value: the value,
// and each long enough line of a multi-line one.
func redactions(value string) []string {
	if value == "" {
		return nil
	}
	out := []string{value}
	if strings.ContainsAny(value, "\r\n") {
		for _, line := range strings.FieldsFunc(value, func(r rune) bool { return r == '\n' || r == '\r' }) {
			if len(line) >= minLineRedaction {
				out = append(out, line)
			}
		}
	}
	return out
}

// canonical is a map as one unambiguous string (sorted, NUL-separated:
// names and values hold no NUL).
func canonical(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k)
		b.WriteByte(0)
		b.WriteString(m[k])
		b.WriteByte(0)
	}
	return b.String()
}
