package runtime

import (
	"strings"
	"testing"

	"github.com/glenv/glenv/internal/store"
)

func TestConnectionLimitUnderAnIntegrationsCeiling(t *testing.T) {
	t.Parallel()
	with := func(n int) store.Integration {
		return store.Integration{Name: "app", Ceilings: store.Ceilings{DatabaseConnectionLimit: n}}
	}
	for _, tc := range []struct {
		name      string
		requested int
		in        store.Integration
		want      int
		err       string
	}{
		{"without a ceiling of its own the server's decides", 50, with(0), 50, ""},
		{"nothing asked gets the integration's ceiling", 0, with(5), 5, ""},
		{"an ask within the ceiling is kept", 3, with(5), 3, ""},
		{"an ask over the ceiling is refused naming the key, the integration and its flag", 10, with(5), 0,
			"services.postgresql main connection_limit: 10 is over integration app's ceiling of 5 connections (glenv integration:update app --services-database-connection-limit); ask for at most 5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := connectionLimit("main", tc.requested, tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %d, %v; want error %q", got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %d, %v; want %d", got, err, tc.want)
			}
		})
	}
}
