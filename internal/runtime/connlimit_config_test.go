package runtime

import (
	"strings"
	"testing"
)

func TestServicesPostgresqlConnectionLimits(t *testing.T) {
	for _, tc := range []struct {
		name   string
		yml    string
		names  []string
		limits map[string]int
		err    string
	}{
		{"a plain name has no limit of its own", "[main]", []string{"main"}, map[string]int{}, ""},
		{"a database may ask for a limit", "[main, {name: stats, connection_limit: 5}]", []string{"main", "stats"}, map[string]int{"stats": 5}, ""},
		{"the name stays required", "[{connection_limit: 5}]", nil, nil, "missing property 'name'"},
		{"the limit is a whole number", "[{name: main, connection_limit: 2.5}]", nil, nil, "services.postgresql[0].connection_limit"},
		{"the limit is at least one", "[{name: main, connection_limit: 0}]", nil, nil, "at least 1"},
		{"unknown keys are named", "[{name: main, conections: 5}]", nil, nil, "conections"},
		{"a name is listed once", "[main, {name: main, connection_limit: 5}]", nil, nil, "main is listed twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ParseAppConfig([]byte("run: x\nhealth: /\nservices:\n  postgresql: " + tc.yml + "\n"))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("want %q, got %v", tc.err, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(cfg.Postgres, ",") != strings.Join(tc.names, ",") || len(cfg.ConnectionLimits) != len(tc.limits) {
				t.Fatalf("got %v %v", cfg.Postgres, cfg.ConnectionLimits)
			}
			for k, v := range tc.limits {
				if cfg.ConnectionLimits[k] != v {
					t.Fatalf("limit of %s: %d, want %d", k, cfg.ConnectionLimits[k], v)
				}
			}
		})
	}
}
