// Package variables is glenv's variables service: it checks, seals and
// stores variables at the integration or one environment's level, shows
// them without ever showing a sensitive value, hands each deploy the
// values its build and app see, and, in the transaction of every change,
// enqueues a coalesced redeploy of exactly the environments whose
// variables the change alters. The rules (names, precedence, forks) are
// internal/variable's; it never runs anything inside a transaction but
// database writes and job inserts.
package variables

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/glenv/glenv/internal/integration"
	"github.com/glenv/glenv/internal/secret"
	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/variable"
)

// Redeployer enqueues coalesced redeploys inside the change's transaction
// (internal/jobs).
type Redeployer interface {
	RedeployForVariables(ctx context.Context, tx *sql.Tx, envIDs []int64) error
}

// Service manages variables.
type Service struct {
	Store *store.Store
	Box   *secret.Box
	// Redeploy is told which environments a change affects; nil: none
	// are redeployed.
	Redeploy Redeployer
}

// Level is where a variable is defined: an integration, or one of its
// environments.
type Level struct {
	Integration string
	Environment string // "" for the integration's level
}

func (l Level) String() string {
	if l.Environment == "" {
		return "integration " + l.Integration
	}
	return "environment " + l.Environment + " of integration " + l.Integration
}

// Input is what a create or update says; nil fields keep their value (or
// take the default on create: not sensitive, inheritable, visible at
// build and run time, as on Platform.sh).
type Input struct {
	Name         string  `json:"name,omitempty"` // create only; update takes it from the path
	Value        *string `json:"value,omitempty"`
	Sensitive    *bool   `json:"sensitive,omitempty"`
	Inheritable  *bool   `json:"inheritable,omitempty"`
	VisibleBuild *bool   `json:"visible_build,omitempty"`
	VisibleRun   *bool   `json:"visible_run,omitempty"`
}

// View is a variable as the API and CLI show it: a sensitive value is
// never shown, only that it is set.
type View struct {
	Name         string    `json:"name"`
	Level        string    `json:"level"` // integration or environment
	Integration  string    `json:"integration"`
	Environment  string    `json:"environment,omitempty"`
	Value        *string   `json:"value,omitempty"`
	ValueSet     bool      `json:"value_set"`
	Sensitive    bool      `json:"sensitive"`
	Inheritable  bool      `json:"inheritable"`
	VisibleBuild bool      `json:"visible_build"`
	VisibleRun   bool      `json:"visible_run"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// Change is the answer to a create, update or delete: the variable (as
// it was, for a delete) and the environments it redeploys.
type Change struct {
	Variable  View     `json:"variable"`
	Redeploys []string `json:"redeploys"`
}

// NotFoundError names the field whose value names nothing; it wraps
// store.ErrNotFound.
type NotFoundError struct {
	Field, Rule string
}

func (e *NotFoundError) Error() string { return e.Field + ": " + e.Rule }
func (e *NotFoundError) Unwrap() error { return store.ErrNotFound }

func fieldErr(field, format string, args ...any) error {
	return &integration.FieldError{Field: field, Rule: fmt.Sprintf(format, args...)}
}

func view(in store.Integration, v store.Variable) View {
	out := View{Name: v.Name, Level: string(variable.LevelIntegration), Integration: in.Name, Environment: v.Environment,
		ValueSet: true, Sensitive: v.Sensitive, Inheritable: v.Inheritable, VisibleBuild: v.VisibleBuild,
		VisibleRun: v.VisibleRun, CreatedAt: v.CreatedAt, UpdatedAt: v.UpdatedAt}
	if v.Environment != "" {
		out.Level = string(variable.LevelEnvironment)
	}
	if !v.Sensitive {
		value := v.Value
		out.Value = &value
	}
	return out
}

// level loads the integration and checks the environment of lv exists.
func (s *Service) level(ctx context.Context, q store.Querier, lv Level) (store.Integration, error) {
	in, err := store.GetIntegration(ctx, q, lv.Integration)
	if errors.Is(err, store.ErrNotFound) {
		return in, &NotFoundError{Field: "integration", Rule: fmt.Sprintf("no integration called %q; `glenv integration:list` shows them", lv.Integration)}
	}
	if err != nil || lv.Environment == "" {
		return in, err
	}
	e, err := store.GetEnvironment(ctx, q, in.Name, lv.Environment)
	if errors.Is(err, store.ErrNotFound) || err == nil && !e.DeletedAt.IsZero() {
		return in, &NotFoundError{Field: "environment", Rule: fmt.Sprintf("no environment %q in integration %s; `glenv environment:list -i %s` shows them", lv.Environment, in.Name, in.Name)}
	}
	return in, err
}

func notSet(lv Level, name string) error {
	return &NotFoundError{Field: "name", Rule: fmt.Sprintf("no variable %s on %s; `glenv variable:list` shows where each one is set", name, lv)}
}

// Get returns one variable of a level.
func (s *Service) Get(ctx context.Context, lv Level, name string) (View, error) {
	q := s.Store.Reader()
	in, err := s.level(ctx, q, lv)
	if err != nil {
		return View{}, err
	}
	v, err := store.GetVariable(ctx, q, in.ID, lv.Environment, name)
	if errors.Is(err, store.ErrNotFound) {
		return View{}, notSet(lv, name)
	}
	if err != nil {
		return View{}, err
	}
	return view(in, v), nil
}

// List returns an integration's variables at every level when lv names
// no environment; for an environment, the variables it resolves to: the
// nearest definition of each name (its own, an ancestor's inheritable one
// or the integration's), each showing where it is set.
func (s *Service) List(ctx context.Context, lv Level) ([]View, error) {
	q := s.Store.Reader()
	in, err := s.level(ctx, q, lv)
	if err != nil {
		return nil, err
	}
	rows, err := store.VariablesOfIntegration(ctx, q, in.ID)
	if err != nil {
		return nil, err
	}
	out := []View{}
	if lv.Environment == "" {
		for _, v := range rows {
			out = append(out, view(in, v))
		}
		return out, nil
	}
	envs, err := store.EnvironmentsOfIntegration(ctx, q, in.Name, false)
	if err != nil {
		return nil, err
	}
	byID := map[int64]store.Variable{}
	for _, v := range rows {
		byID[v.ID] = v
	}
	integ, byEnv := split(rows)
	eff := variable.Effective(integ, byEnv, variable.Chain(lv.Environment, parents(envs)))
	for _, name := range sortedNames(eff) {
		out = append(out, view(in, byID[eff[name].ID]))
	}
	return out, nil
}

// Create adds a variable at lv.
func (s *Service) Create(ctx context.Context, lv Level, in Input) (Change, error) {
	if err := variable.ValidName(in.Name); err != nil {
		return Change{}, fieldErr("name", "%s", trimField(err, "name"))
	}
	if in.Value == nil {
		return Change{}, fieldErr("value", "required: give the value (`--value -` reads it from stdin, which keeps it out of shell history)")
	}
	v := store.Variable{Name: in.Name, Inheritable: true, VisibleBuild: true, VisibleRun: true}
	if err := apply(&v, in, false); err != nil {
		return Change{}, err
	}
	return s.change(ctx, lv, in.Name, func(ctx context.Context, tx *sql.Tx, integ store.Integration, cur *store.Variable) (*store.Variable, error) {
		if cur != nil {
			return nil, fmt.Errorf("variable %s on %s: %w; change it with `glenv variable:update %s`", in.Name, lv, store.ErrConflict, in.Name)
		}
		n, err := store.CountVariablesAt(ctx, tx, integ.ID, lv.Environment)
		if err != nil {
			return nil, err
		}
		if n >= variable.MaxPerLevel {
			return nil, fieldErr("name", "%s already has %d variables, the most one level may hold; delete some first", lv, n)
		}
		v.IntegrationID, v.Environment = integ.ID, lv.Environment
		sealed := v
		if v.Sensitive {
			sealed.Value = s.Box.Seal(v.Value)
		}
		if err := store.CreateVariable(ctx, tx, &sealed); err != nil {
			return nil, err
		}
		v.ID, v.CreatedAt, v.UpdatedAt = sealed.ID, sealed.CreatedAt, sealed.UpdatedAt
		return &v, nil
	})
}

// Update changes a variable's value or flags.
func (s *Service) Update(ctx context.Context, lv Level, name string, in Input) (Change, error) {
	if in.Name != "" && in.Name != name {
		return Change{}, fieldErr("name", "a variable cannot be renamed; create %s and delete %s", in.Name, name)
	}
	return s.change(ctx, lv, name, func(ctx context.Context, tx *sql.Tx, integ store.Integration, cur *store.Variable) (*store.Variable, error) {
		if cur == nil {
			return nil, notSet(lv, name)
		}
		v := *cur
		if err := apply(&v, in, cur.Sensitive); err != nil {
			return nil, err
		}
		sealed := v
		if v.Sensitive {
			sealed.Value = s.Box.Seal(v.Value)
		}
		if err := store.UpdateVariable(ctx, tx, &sealed); err != nil {
			return nil, err
		}
		v.UpdatedAt = sealed.UpdatedAt
		return &v, nil
	})
}

// Delete removes a variable.
func (s *Service) Delete(ctx context.Context, lv Level, name string) (Change, error) {
	var gone store.Variable
	ch, err := s.change(ctx, lv, name, func(ctx context.Context, tx *sql.Tx, integ store.Integration, cur *store.Variable) (*store.Variable, error) {
		if cur == nil {
			return nil, notSet(lv, name)
		}
		gone = *cur
		return nil, store.DeleteVariable(ctx, tx, cur.ID)
	})
	if err == nil {
		in := store.Integration{Name: lv.Integration}
		ch.Variable = view(in, gone)
	}
	return ch, err
}

// apply checks in and writes it onto v. wasSensitive refuses revealing a
// sensitive value by turning the flag off.
func apply(v *store.Variable, in Input, wasSensitive bool) error {
	if in.Value != nil {
		if err := variable.ValidValue(*in.Value); err != nil {
			return fieldErr("value", "%s", trimField(err, "value"))
		}
		v.Value = *in.Value
	}
	if in.Sensitive != nil {
		if wasSensitive && !*in.Sensitive {
			return fieldErr("sensitive", "a sensitive variable cannot be made visible again (its value would show); delete it and create it anew")
		}
		v.Sensitive = *in.Sensitive
	}
	if in.Inheritable != nil {
		v.Inheritable = *in.Inheritable
	}
	if in.VisibleBuild != nil {
		v.VisibleBuild = *in.VisibleBuild
	}
	if in.VisibleRun != nil {
		v.VisibleRun = *in.VisibleRun
	}
	if err := variable.ValidVisibility(v.VisibleBuild, v.VisibleRun); err != nil {
		return fieldErr("visible_build", "%s", trimField(err, "visible_build, visible_run"))
	}
	return nil
}

// trimField drops the "field: " the pure rules start their messages with,
// since FieldError adds it again.
func trimField(err error, field string) string {
	return strings.TrimPrefix(strings.TrimPrefix(err.Error(), field+": "), field+" ")
}
