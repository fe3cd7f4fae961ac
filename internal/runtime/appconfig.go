package runtime

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"go.yaml.in/yaml/v3"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/glenv/glenv/internal/gitsha"
	"github.com/glenv/glenv/internal/limits"
)

// ConfigFile is the name of the file at the repository root that says how
// to build and run an environment.
const ConfigFile = ".glenv.yml"

// schemaJSON is schema/glenv.schema.json (a test keeps the two identical):
// the shipped schema is what validation uses.
//
//go:embed glenv.schema.json
var schemaJSON []byte

// AppConfig is a validated .glenv.yml.
type AppConfig struct {
	// Image is the container image of --runtime kubernetes; the process
	// runtime ignores it.
	Image    string
	Build    []string
	Run      string
	Health   string
	Env      map[string]string
	Paths    []string
	Files    []string // services.files
	Postgres []string // services.postgresql, the names
	// ConnectionLimits are services.postgresql[].connection_limit by
	// name; a database without one gets the server's default.
	ConnectionLimits map[string]int
	Clone            string        // hooks.clone
	Limits           limits.Limits // what it asks for; zero fields take the server's defaults
}

// reservedEnv are variables glenv sets itself; a .glenv.yml may not set them.
var reservedEnv = []string{"PORT", "HOME", "PATH", "DATABASE_URL"}

// ConfigError is an invalid or missing .glenv.yml. Each problem names the
// key, the rule it breaks and the fix.
type ConfigError struct {
	Problems []string
}

func (e *ConfigError) Error() string {
	if len(e.Problems) == 1 {
		return ConfigFile + ": " + e.Problems[0]
	}
	return ConfigFile + " has " + strconv.Itoa(len(e.Problems)) + " problems:\n  - " + strings.Join(e.Problems, "\n  - ")
}

// MissingConfig is the error for a commit without .glenv.yml.
func MissingConfig(sha string) error {
	return &ConfigError{Problems: []string{fmt.Sprintf("not found at the repository root of %s; add one, e.g.\n    run: python3 -m http.server $PORT\n    health: /", gitsha.Short(sha))}}
}

type schemaDoc struct {
	compiled *jsonschema.Schema
	raw      any
}

var compiledSchema = func() schemaDoc {
	raw, err := jsonschema.UnmarshalJSON(bytes.NewReader(schemaJSON))
	if err != nil {
		panic("glenv.schema.json: " + err.Error())
	}
	c := jsonschema.NewCompiler()
	const url = "glenv.schema.json"
	if err := c.AddResource(url, raw); err != nil {
		panic("glenv.schema.json: " + err.Error())
	}
	return schemaDoc{compiled: c.MustCompile(url), raw: raw}
}()

// ParseAppConfig parses and validates a .glenv.yml against the shipped
// JSON Schema.
func ParseAppConfig(data []byte) (AppConfig, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return AppConfig{}, &ConfigError{Problems: []string{"is not valid YAML (" + strings.TrimPrefix(err.Error(), "yaml: ") + "); fix the syntax, e.g. `key: value` with two-space indentation"}}
	}
	var doc any
	if len(root.Content) > 0 {
		if err := root.Content[0].Decode(&doc); err != nil {
			return AppConfig{}, &ConfigError{Problems: []string{"cannot be read: " + err.Error()}}
		}
	}
	// Round-trip through JSON so the validator sees JSON types (YAML gives
	// ints and map[string]any alike; keys that are not strings fail here).
	js, err := json.Marshal(doc)
	if err != nil {
		return AppConfig{}, &ConfigError{Problems: []string{"uses a value JSON cannot hold (" + err.Error() + "); use string keys and plain scalars"}}
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
	if err != nil {
		return AppConfig{}, &ConfigError{Problems: []string{err.Error()}}
	}
	if inst == nil {
		return AppConfig{}, &ConfigError{Problems: []string{"is empty; the smallest valid file is\n    run: python3 -m http.server $PORT\n    health: /"}}
	}
	if err := compiledSchema.compiled.Validate(inst); err != nil {
		var ve *jsonschema.ValidationError
		if !errors.As(err, &ve) {
			return AppConfig{}, &ConfigError{Problems: []string{err.Error()}}
		}
		return AppConfig{}, &ConfigError{Problems: problems(ve, &root)}
	}
	m := inst.(map[string]any)
	cfg := AppConfig{Image: str(m["image"]), Run: str(m["run"]), Health: str(m["health"]), Env: map[string]string{}}
	switch b := m["build"].(type) {
	case string:
		cfg.Build = []string{b}
	case []any:
		cfg.Build = strs(b)
	}
	if p, ok := m["paths"].([]any); ok {
		cfg.Paths = strs(p)
	}
	if env, ok := m["env"].(map[string]any); ok {
		for k, v := range env {
			cfg.Env[k] = scalar(v)
		}
	}
	if s, ok := m["services"].(map[string]any); ok {
		if f, ok := s["files"].([]any); ok {
			cfg.Files = strs(f)
		}
		if p, ok := s["postgresql"].([]any); ok {
			cfg.Postgres, cfg.ConnectionLimits = postgresServices(p)
		}
	}
	if h, ok := m["hooks"].(map[string]any); ok {
		cfg.Clone = str(h["clone"])
	}
	var extra []string
	if l, ok := m["limits"].(map[string]any); ok {
		cfg.Limits, extra = parseLimits(l, &root)
	}
	for k := range cfg.Env {
		if slices.Contains(reservedEnv, k) || strings.HasPrefix(k, "GLENV_") || strings.HasPrefix(k, "DATABASE_URL_") {
			extra = append(extra, fmt.Sprintf("env.%s%s: is set by glenv itself (PORT, HOME, PATH, DATABASE_URL*, GLENV_*); remove it or rename it", k, lineOf(&root, []string{"env", k})))
		}
	}
	for i, name := range cfg.Postgres {
		if slices.Contains(cfg.Postgres[:i], name) {
			extra = append(extra, fmt.Sprintf("services.postgresql[%d]%s: %s is listed twice; list each database once", i, lineOf(&root, []string{"services", "postgresql", strconv.Itoa(i)}), name))
		}
	}
	slices.Sort(extra)
	if len(extra) > 0 {
		return AppConfig{}, &ConfigError{Problems: extra}
	}
	return cfg, nil
}

// parseLimits reads limits whose types the schema checked: sizes are
// strings ("512M") or plain numbers of bytes.
func parseLimits(m map[string]any, root *yaml.Node) (limits.Limits, []string) {
	var l limits.Limits
	var problems []string
	size := func(key string) int64 {
		v, ok := m[key]
		if !ok {
			return 0
		}
		n, err := limits.ParseSize(scalar(v))
		if err != nil {
			problems = append(problems, fmt.Sprintf("limits.%s%s: %v", key, lineOf(root, []string{"limits", key}), err))
		}
		return n
	}
	l.Memory, l.Disk = size("memory"), size("disk")
	if v, ok := m["processes"].(json.Number); ok {
		n, _ := v.Int64()
		l.Processes = int(min(n, 1<<30))
	}
	if v, ok := m["cpu"].(json.Number); ok {
		l.CPU, _ = v.Float64()
	}
	return l, problems
}

// postgresServices reads services.postgresql, whose items are a name or
// {name, connection_limit}.
func postgresServices(items []any) (names []string, limits map[string]int) {
	limits = map[string]int{}
	for _, it := range items {
		switch x := it.(type) {
		case string:
			names = append(names, x)
		case map[string]any:
			name := str(x["name"])
			names = append(names, name)
			if n, ok := x["connection_limit"].(json.Number); ok {
				if v, err := n.Int64(); err == nil {
					limits[name] = int(v)
				}
			}
		}
	}
	return names, limits
}

func str(v any) string { s, _ := v.(string); return s }

func strs(v []any) []string {
	out := make([]string, 0, len(v))
	for _, x := range v {
		out = append(out, str(x))
	}
	return out
}

func scalar(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	default:
		return fmt.Sprint(x)
	}
}

var printer = message.NewPrinter(language.English)

// problems flattens a validation error into one line per leaf: the key
// (with its line in the file), the rule, and the schema's x-fix.
func problems(ve *jsonschema.ValidationError, root *yaml.Node) []string {
	var out []string
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		key := keyName(e.InstanceLocation)
		rule := e.ErrorKind.LocalizedString(printer)
		fix := fixFor(e)
		line := fmt.Sprintf("%s%s: %s", key, lineOf(root, e.InstanceLocation), rule)
		if fix != "" {
			line += "; " + fix
		}
		out = append(out, line)
	}
	walk(ve)
	slices.Sort(out)
	return slices.Compact(out)
}

// keyName renders an instance location as build[1] or services.files.
func keyName(loc []string) string {
	if len(loc) == 0 {
		return "(top level)"
	}
	var b strings.Builder
	for i, p := range loc {
		if _, err := strconv.Atoi(p); err == nil {
			b.WriteString("[" + p + "]")
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(p)
	}
	return b.String()
}

// fixFor finds the x-fix of the schema the failing keyword belongs to.
func fixFor(e *jsonschema.ValidationError) string {
	_, frag, _ := strings.Cut(e.SchemaURL, "#")
	node := compiledSchema.raw
	for _, tok := range strings.Split(strings.TrimPrefix(frag, "/"), "/") {
		if tok == "" {
			continue
		}
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		obj, ok := node.(map[string]any)
		if !ok {
			return ""
		}
		node = obj[tok]
	}
	obj, _ := node.(map[string]any)
	if req, ok := e.ErrorKind.(*kind.Required); ok && len(req.Missing) > 0 {
		// The fix for a missing key is the key's own: what to put there.
		props, _ := obj["properties"].(map[string]any)
		prop, _ := props[req.Missing[0]].(map[string]any)
		if fix, _ := prop["x-fix"].(string); fix != "" {
			return "add it: " + fix
		}
	}
	fix, _ := obj["x-fix"].(string)
	return fix
}

// lineOf returns " (line N)" for the YAML node at loc, or "" when unknown.
// For a missing key it names the line of the closest parent that exists.
func lineOf(root *yaml.Node, loc []string) string {
	if root == nil || len(root.Content) == 0 {
		return ""
	}
	n := root.Content[0]
	for _, p := range loc {
		var next *yaml.Node
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == p {
					next = n.Content[i+1]
					if next.Kind != yaml.MappingNode && next.Kind != yaml.SequenceNode {
						next = n.Content[i]
					}
					break
				}
			}
		case yaml.SequenceNode:
			if i, err := strconv.Atoi(p); err == nil && i < len(n.Content) {
				next = n.Content[i]
			}
		}
		if next == nil {
			break
		}
		n = next
	}
	if n.Line == 0 {
		return ""
	}
	return " (line " + strconv.Itoa(n.Line) + ")"
}
