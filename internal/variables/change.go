package variables

import (
	"context"
	"database/sql"
	"slices"

	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/variable"
)

// edit changes one variable inside the change's transaction: cur is the
// variable as stored (opened), nil when there is none; it returns the
// variable as it then is (opened), nil when deleted.
type edit func(ctx context.Context, tx *sql.Tx, in store.Integration, cur *store.Variable) (*store.Variable, error)

// change runs fn on the variable called name at lv in one transaction,
// with what it needs to know which environments resolve differently
// afterwards, and enqueues their
// redeploys in the same transaction: the change and its redeploys commit
// together or not at all.
func (s *Service) change(ctx context.Context, lv Level, name string, fn edit) (Change, error) {
	var out Change
	err := s.Store.Tx(ctx, func(tx *sql.Tx) error {
		in, err := s.level(ctx, tx, lv)
		if err != nil {
			return err
		}
		// A change touches one name: only that name's definitions can
		// resolve differently anywhere, so only they are read and compared.
		rows, err := store.VariablesNamed(ctx, tx, in.ID, name)
		if err != nil {
			return err
		}
		if rows, err = s.open(rows); err != nil {
			return err
		}
		var cur *store.Variable
		at := -1
		for i := range rows {
			if rows[i].Environment == lv.Environment && rows[i].Name == name {
				cur, at = &rows[i], i
			}
		}
		var was *store.Variable
		if cur != nil {
			c := *cur
			was = &c
		}
		now, err := fn(ctx, tx, in, was)
		if err != nil {
			return err
		}
		after := slices.Clone(rows)
		switch {
		case now != nil && at >= 0:
			after[at] = *now
		case now != nil:
			after = append(after, *now)
		case at >= 0:
			after = slices.Delete(after, at, at+1)
		}
		if now != nil {
			out.Variable = view(in, *now)
		}
		envs, err := store.EnvironmentsOfIntegration(ctx, tx, in.Name, false)
		if err != nil {
			return err
		}
		ids, names := affected(in, envs, rows, after)
		out.Redeploys = names
		if len(ids) == 0 || s.Redeploy == nil {
			return nil
		}
		return s.Redeploy.RedeployForVariables(ctx, tx, ids)
	})
	return out, err
}

// open returns rows with sensitive values opened.
func (s *Service) open(rows []store.Variable) ([]store.Variable, error) {
	out := slices.Clone(rows)
	for i, v := range out {
		if !v.Sensitive {
			continue
		}
		plain, err := s.Box.Open(v.Value)
		if err != nil {
			return nil, err
		}
		out[i].Value = plain
	}
	return out, nil
}

// affected lists the environments that run code and whose variables
// differ between before and after. Inactive and paused environments
// are not redeployed: their next deploy or wake reads the variables anyway.
func affected(in store.Integration, envs []store.Environment, before, after []store.Variable) ([]int64, []string) {
	bi, be := split(before)
	ai, ae := split(after)
	ps := parents(envs)
	ids, names := []int64{}, []string{}
	for _, e := range envs {
		switch e.State {
		case store.StateActive, store.StateBuilding, store.StateDeploying, store.StateFailed:
		default:
			continue
		}
		chain := variable.Chain(e.Name, ps)
		fork := isFork(e)
		if !variable.Same(forkView(variable.Effective(bi, be, chain), fork), forkView(variable.Effective(ai, ae, chain), fork)) {
			ids, names = append(ids, e.ID), append(names, e.Name)
		}
	}
	return ids, names
}

// isFork: merge request code from another project than the integration's,
// as recorded from its merge request events.
func isFork(e store.Environment) bool {
	return e.Kind == "mr" && e.FromFork
}

// forkView is what fork code can tell of an Effective set: nothing, as it
// gets no variable.
func forkView(eff map[string]variable.Resolved, fork bool) map[string]variable.Resolved {
	if fork {
		return nil
	}
	return eff
}

// split turns stored rows into the pure rules' shape: the integration's
// variables and each environment's. ID keeps the row's id.
func split(rows []store.Variable) ([]variable.Variable, map[string][]variable.Variable) {
	var integ []variable.Variable
	byEnv := map[string][]variable.Variable{}
	for _, r := range rows {
		v := variable.Variable{ID: r.ID, Name: r.Name, Value: r.Value, Level: variable.LevelIntegration, Environment: r.Environment,
			Inheritable: r.Inheritable, Sensitive: r.Sensitive, VisibleBuild: r.VisibleBuild, VisibleRun: r.VisibleRun}
		if r.Environment == "" {
			integ = append(integ, v)
			continue
		}
		v.Level = variable.LevelEnvironment
		byEnv[r.Environment] = append(byEnv[r.Environment], v)
	}
	return integ, byEnv
}

func parents(envs []store.Environment) map[string]string {
	out := make(map[string]string, len(envs))
	for _, e := range envs {
		out[e.Name] = e.Parent
	}
	return out
}

func sortedNames(m map[string]variable.Resolved) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
