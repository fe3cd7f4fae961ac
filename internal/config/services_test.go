package config

import (
	"strings"
	"testing"
)

func TestServicesDatabaseConnectionLimit(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want int
		err  string
	}{
		{"the default is 20 connections per database", nil, nil, 20, ""},
		{"the environment variable sets it", map[string]string{"GLENV_SERVICES_DATABASE_CONNECTION_LIMIT": "50"}, nil, 50, ""},
		{"the flag wins", map[string]string{"GLENV_SERVICES_DATABASE_CONNECTION_LIMIT": "50"}, []string{"--services-database-connection-limit", "5"}, 5, ""},
		{"a negative limit is refused with the flag's name", nil, []string{"--services-database-connection-limit", "-3"}, 0, "--services-database-connection-limit: must be a whole number of at least 1"},
		{"a bad environment value is refused", map[string]string{"GLENV_SERVICES_DATABASE_CONNECTION_LIMIT": "many"}, nil, 0, "--services-database-connection-limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{"HOME": "/h"}
			for k, v := range tc.env {
				env[k] = v
			}
			c, err := parse(t, env, tc.args...)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("want %q, got %v", tc.err, err)
				}
				return
			}
			if err != nil || c.ServicesConnectionLimit != tc.want {
				t.Fatalf("got %d %v, want %d", c.ServicesConnectionLimit, err, tc.want)
			}
		})
	}
}
