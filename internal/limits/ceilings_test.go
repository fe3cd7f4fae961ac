package limits

import (
	"strings"
	"testing"
)

func TestIntegrationCeilings(t *testing.T) {
	t.Parallel()
	srv := Server{
		Default: Limits{Memory: 1 << 30, Processes: 512, CPU: 1, Disk: 2 << 30},
		Max:     Limits{Memory: 4 << 30, Processes: 4096, CPU: 2, Disk: 10 << 30},
	}
	for _, tc := range []struct {
		name  string
		srv   Server
		own   Limits
		ask   Limits
		want  Limits
		errs  []string
		never []string
	}{
		{name: "an integration without ceilings of its own gets the server's", srv: srv,
			ask: Limits{Memory: 4 << 30}, want: Limits{Memory: 4 << 30, Processes: 512, CPU: 1, Disk: 2 << 30}},
		{name: "an ask within the integration's ceiling is kept", srv: srv, own: Limits{Memory: 512 << 20},
			ask: Limits{Memory: 256 << 20}, want: Limits{Memory: 256 << 20, Processes: 512, CPU: 1, Disk: 2 << 30}},
		{name: "an ask over the integration's ceiling is refused naming the key, the integration and its flag", srv: srv, own: Limits{Memory: 512 << 20, CPU: 0.5},
			ask:  Limits{Memory: 1 << 30, CPU: 1},
			errs: []string{"limits.memory: 1G is over integration app's ceiling 512M (glenv integration:update app --environment-max-memory); ask for at most 512M", "limits.cpu: 1 is over integration app's ceiling 0.5 (glenv integration:update app --environment-max-cpu)"}},
		{name: "an ask over the server's ceiling where the integration has none names the server's flag", srv: srv, own: Limits{Memory: 512 << 20},
			ask: Limits{Processes: 5000}, errs: []string{"limits.processes: 5000 is over this server's ceiling 4096 (--environment-max-processes)"}, never: []string{"integration app"}},
		{name: "the server's default above the integration's ceiling gives the integration's ceiling", srv: srv, own: Limits{Memory: 256 << 20, Processes: 64, CPU: 0.25, Disk: 100 << 20},
			want: Limits{Memory: 256 << 20, Processes: 64, CPU: 0.25, Disk: 100 << 20}},
		{name: "an integration ceiling above a server ceiling lowered since gives the server's", srv: srv, own: Limits{Memory: 8 << 30},
			ask: Limits{Memory: 6 << 30}, errs: []string{"over this server's ceiling 4G (--environment-max-memory)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.srv.ForIntegration("app", tc.own).Resolve(tc.ask)
			if len(tc.errs) > 0 {
				if err == nil {
					t.Fatalf("Resolve(%+v) = %+v; want errors %q", tc.ask, got, tc.errs)
				}
				for _, e := range tc.errs {
					if !strings.Contains(err.Error(), e) {
						t.Errorf("error %q lacks %q", err, e)
					}
				}
				for _, e := range tc.never {
					if strings.Contains(err.Error(), e) {
						t.Errorf("error %q names %q", err, e)
					}
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Resolve(%+v) = %+v, %v; want %+v", tc.ask, got, err, tc.want)
			}
		})
	}
}

func TestCheckCeilings(t *testing.T) {
	t.Parallel()
	srv := Server{Max: Limits{Memory: 4 << 30, Processes: 4096, CPU: 2, Disk: 10 << 30}}
	for _, tc := range []struct {
		name string
		srv  Server
		own  Limits
		want []Problem
	}{
		{name: "ceilings at or under the server's are accepted", srv: srv, own: srv.Max},
		{name: "no ceilings of its own are accepted", srv: srv},
		{name: "a ceiling above the server's is refused naming the field and the serve flag", srv: srv, own: Limits{Memory: 8 << 30, CPU: 4},
			want: []Problem{
				{"environment_max_memory", "8G is above this server's ceiling 4G (serve --environment-max-memory); set at most 4G, or raise the server's"},
				{"environment_max_cpu", "4 is above this server's ceiling 2 (serve --environment-max-cpu); set at most 2, or raise the server's"}}},
		{name: "a ceiling under what an app needs to start is refused", srv: srv, own: Limits{Processes: 2, Disk: 1024},
			want: []Problem{
				{"environment_max_processes", "2 is under the minimum 4 an environment needs; set at least 4, or 0 for the server's ceiling"},
				{"environment_max_disk", "1K is under the minimum 1M an environment needs; set at least 1M, or 0 for the server's ceiling"}}},
		{name: "a negative ceiling is refused", srv: srv, own: Limits{Processes: -1},
			want: []Problem{{"environment_max_processes", "-1 must not be negative; 0 uses the server's ceiling"}}},
		{name: "a server without ceilings takes any", srv: Server{}, own: Limits{Memory: 1 << 40}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.srv.CheckCeilings(tc.own)
			if len(got) != len(tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("got %q, want %q", got[i], tc.want[i])
				}
			}
		})
	}
}
