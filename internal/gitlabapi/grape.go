package gitlabapi

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Grape validates an endpoint's declared parameters in declaration order
// and collects Grape's messages, which GitLab reports joined by ", " in
// {"error": …}.
type Grape struct {
	p    *Params
	errs []string
}

// Grape starts the declaration of an endpoint's parameters.
func (p *Params) Grape() *Grape { return &Grape{p: p} }

// Fail records "<key> <what>".
func (g *Grape) Fail(key, what string) { g.errs = append(g.errs, key+" "+what) }

// Failed returns Grape's error message, or "" when every parameter passed.
func (g *Grape) Failed() string { return strings.Join(g.errs, ", ") }

// OK answers Grape's 400 with the collected messages, if any, and reports
// whether every parameter passed.
func (g *Grape) OK(w http.ResponseWriter) bool {
	if msg := g.Failed(); msg != "" {
		GrapeError(w, msg)
		return false
	}
	return true
}

// str is key as a String, Integer or Boolean reads it: an Array or a Hash
// is "<key> is invalid" (Params.Compound), and not sent.
func (g *Grape) str(key string) (string, bool) {
	if g.p.Compound(key) {
		g.Fail(key, "is invalid")
		return "", false
	}
	return g.p.Str(key)
}

// OptString is an optional String; it reports whether key was sent.
func (g *Grape) OptString(key string) (string, bool) { return g.str(key) }

// RequireString is a required String; it reports whether key was sent.
func (g *Grape) RequireString(key string) (string, bool) {
	if !g.p.Has(key) {
		g.Fail(key, "is missing")
		return "", false
	}
	return g.str(key)
}

// Values is Grape's `values:` check on a string that was sent.
func (g *Grape) Values(key, v string, sent bool, allowed ...string) {
	if !sent {
		return
	}
	for _, a := range allowed {
		if v == a {
			return
		}
	}
	g.Fail(key, "does not have a valid value")
}

// Absent is Grape's absence validator (GitLab uses it to refuse `slug`).
func (g *Grape) Absent(key, msg string) {
	if g.p.Sent(key) { // a JSON null too (lib/api/validations/validators/absence.rb: params.key?)
		g.Fail(key, msg)
	}
}

// OptBool is an optional Boolean, with exactly the spellings Grape coerces:
// Grape::API::Boolean is dry-types' Params::Bool
// (grape lib/grape/validations/types/primitive_coercer.rb), whose
// Coercions::Params::TRUE_VALUES and FALSE_VALUES (dry-types
// lib/dry/types/coercions/params.rb) list each word in three cases only,
// so "tRuE" is invalid. An empty string is no value at all
// (PrimitiveCoercer#treat_as_nil?), so the default applies.
func (g *Grape) OptBool(key string) (val, sent bool) {
	s, ok := g.str(key)
	if !ok || s == "" {
		return false, false
	}
	switch s {
	case "1", "on", "On", "ON", "t", "true", "True", "TRUE", "T", "y", "yes", "Yes", "YES", "Y":
		return true, true
	case "0", "off", "Off", "OFF", "f", "false", "False", "FALSE", "F", "n", "no", "No", "NO", "N":
		return false, true
	}
	g.Fail(key, "is invalid")
	return false, false
}

// RequireBool is a required Boolean.
func (g *Grape) RequireBool(key string) bool {
	if !g.p.Has(key) {
		g.Fail(key, "is missing")
		return false
	}
	v, _ := g.OptBool(key)
	return v
}

// OptInt is an optional Integer; an empty string is no value, as for
// OptBool.
func (g *Grape) OptInt(key string) (int64, bool) {
	s, ok := g.str(key)
	if !ok || s == "" {
		return 0, false
	}
	n, err := rubyInt(strings.TrimSpace(s))
	if err != nil {
		g.Fail(key, "is invalid")
		return 0, false
	}
	return n, true
}

// OptFloat is an optional Float.
func (g *Grape) OptFloat(key string) (float64, bool) {
	s, ok := g.str(key)
	if !ok {
		return 0, false
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		g.Fail(key, "is invalid")
		return 0, false
	}
	return f, true
}

// OptTime is an optional Time/DateTime, coerced as Grape does with Ruby's
// DateTime.parse / Time.parse (see ParseDateTime), in UTC.
func (g *Grape) OptTime(key string) (time.Time, bool) {
	s, ok := g.str(key)
	if !ok {
		return time.Time{}, false
	}
	if t, ok := ParseDateTime(s); ok {
		return t, true
	}
	g.Fail(key, "is invalid")
	return time.Time{}, false
}

// RequireTime is a required Time/DateTime.
func (g *Grape) RequireTime(key string) (time.Time, bool) {
	if !g.p.Has(key) {
		g.Fail(key, "is missing")
		return time.Time{}, false
	}
	return g.OptTime(key)
}

// PathInt declares the Integer path parameter name of a route's vars
// among the others, so its error joins theirs as Grape's does ("environment_id
// is invalid, tier does not have a valid value"); 0 when it is invalid.
// Ruby's Integers have no upper bound, so a number beyond int64 is valid
// and finds nothing (Rails' find raises RecordNotFound for an id out of
// the column's range: 404): it reads as NoSuchID.
func (g *Grape) PathInt(vars map[string]string, name string) int64 {
	n, err := rubyInt(vars[name])
	if errors.Is(err, strconv.ErrRange) {
		return NoSuchID
	}
	if err != nil {
		g.Fail(name, "is invalid")
		return 0
	}
	return n
}

// NoSuchID is the id PathInt reads for a number too large for any record.
const NoSuchID = -1

// PathInt reads the Integer path parameter name from a route's vars;
// Grape answers others with 400 "<name> is invalid", as here.
func PathInt(w http.ResponseWriter, vars map[string]string, name string) (int64, bool) {
	var g Grape
	n := g.PathInt(vars, name)
	return n, g.OK(w)
}

// rubyInt parses s as dry-types' Params::Integer does, with Ruby's
// Integer(s, 10): an underscore may stand between two digits ("1_000").
func rubyInt(s string) (int64, error) {
	if strings.Contains(s, "_") {
		digits := strings.TrimLeft(s, "+-")
		if strings.HasPrefix(digits, "_") || strings.HasSuffix(digits, "_") || strings.Contains(digits, "__") {
			return 0, strconv.ErrSyntax
		}
		s = strings.ReplaceAll(s, "_", "")
	}
	return strconv.ParseInt(s, 10, 64)
}
