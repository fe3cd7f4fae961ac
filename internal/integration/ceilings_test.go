package integration

import (
	"context"
	"errors"
	"testing"

	"github.com/glenv/glenv/internal/limits"
	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/store/storetest"
)

func ptr[T any](v T) *T { return &v }

func TestIntegrationCeilingsAreCheckedAgainstTheServersAndStored(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		w.svc.Limits = limits.Server{Max: limits.Limits{Memory: 4 << 30, Processes: 4096, CPU: 2, Disk: 10 << 30}}
		w.svc.ConnectionLimit = 20
		for _, tc := range []struct {
			name  string
			in    Input
			field string // "" = accepted
			want  store.Ceilings
		}{
			{"ceilings under the server's are stored", Input{EnvironmentMaxMemory: ptr("512M"), EnvironmentMaxProcesses: ptr(64),
				EnvironmentMaxCPU: ptr(0.5), EnvironmentMaxDisk: ptr("1G"), ServicesDatabaseConnectionLimit: ptr(5)}, "",
				store.Ceilings{MaxMemory: 512 << 20, MaxProcesses: 64, MaxCPU: 0.5, MaxDisk: 1 << 30, DatabaseConnectionLimit: 5}},
			{"a ceiling not given is kept", Input{EnvironmentMaxCPU: ptr(1.0)}, "",
				store.Ceilings{MaxMemory: 512 << 20, MaxProcesses: 64, MaxCPU: 1, MaxDisk: 1 << 30, DatabaseConnectionLimit: 5}},
			{"0 gives the server's ceiling back", Input{EnvironmentMaxMemory: ptr("0"), ServicesDatabaseConnectionLimit: ptr(0)}, "",
				store.Ceilings{MaxProcesses: 64, MaxCPU: 1, MaxDisk: 1 << 30}},
			{"memory above the server's ceiling is refused", Input{EnvironmentMaxMemory: ptr("8G")}, "environment_max_memory", store.Ceilings{}},
			{"processes above the server's ceiling are refused", Input{EnvironmentMaxProcesses: ptr(5000)}, "environment_max_processes", store.Ceilings{}},
			{"cpu above the server's ceiling is refused", Input{EnvironmentMaxCPU: ptr(3.0)}, "environment_max_cpu", store.Ceilings{}},
			{"disk above the server's ceiling is refused", Input{EnvironmentMaxDisk: ptr("20G")}, "environment_max_disk", store.Ceilings{}},
			{"database connections above the server's are refused", Input{ServicesDatabaseConnectionLimit: ptr(50)}, "services_database_connection_limit", store.Ceilings{}},
			{"a size that is no size is refused", Input{EnvironmentMaxDisk: ptr("lots")}, "environment_max_disk", store.Ceilings{}},
			{"a ceiling under what an app needs is refused", Input{EnvironmentMaxMemory: ptr("1M")}, "environment_max_memory", store.Ceilings{}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before, _ := w.stored(t)
				_, err := w.svc.Update(context.Background(), "app", tc.in)
				after, _ := w.stored(t)
				if tc.field != "" {
					var fe *FieldError
					if !errors.As(err, &fe) || fe.Field != tc.field {
						t.Fatalf("err = %v, want a FieldError on %s", err, tc.field)
					}
					if after.Ceilings != before.Ceilings {
						t.Fatalf("a refused update changed the ceilings: %+v → %+v", before.Ceilings, after.Ceilings)
					}
					return
				}
				if err != nil || after.Ceilings != tc.want {
					t.Fatalf("stored %+v (%v), want %+v", after.Ceilings, err, tc.want)
				}
			})
		}
	})
}
