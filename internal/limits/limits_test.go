package limits

import (
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want int64
		bad  bool
	}{
		{in: "512M", want: 512 << 20},
		{in: "2G", want: 2 << 30},
		{in: "1.5G", want: 3 << 29},
		{in: "64Mi", want: 64 << 20},
		{in: "64MiB", want: 64 << 20},
		{in: "2gb", want: 2 << 30},
		{in: "100k", want: 100 << 10},
		{in: "4096", want: 4096},
		{in: " 1T ", want: 1 << 40},
		{in: "", bad: true},
		{in: "lots", bad: true},
		{in: "-1G", bad: true},
		{in: "1e9", bad: true},
		{in: "G", bad: true},
		{in: "99999999999T", bad: true},
	} {
		t.Run("size "+tc.in, func(t *testing.T) {
			got, err := ParseSize(tc.in)
			if tc.bad {
				if err == nil || !strings.Contains(err.Error(), "e.g. 512M") && !strings.Contains(err.Error(), "too large") {
					t.Fatalf("ParseSize(%q) = %d, %v; want an error saying how to write a size", tc.in, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
			}
			if back, err := ParseSize(FormatSize(got)); err != nil || back != got && !strings.Contains(FormatSize(got), ".") {
				t.Fatalf("FormatSize(%d) = %q does not read back", got, FormatSize(got))
			}
		})
	}
}

func TestResolve(t *testing.T) {
	t.Parallel()
	srv := Server{
		Default: Limits{Memory: 1 << 30, Processes: 256, CPU: 1, Disk: 2 << 30},
		Max:     Limits{Memory: 4 << 30, Processes: 1024, CPU: 2, Disk: 10 << 30},
	}
	for _, tc := range []struct {
		name string
		srv  Server
		ask  Limits
		want Limits
		errs []string
	}{
		{name: "an environment that asks for nothing gets the defaults", srv: srv,
			want: srv.Default},
		{name: "what it asks for within the ceiling replaces the default", srv: srv,
			ask: Limits{Memory: 64 << 20, Processes: 32}, want: Limits{Memory: 64 << 20, Processes: 32, CPU: 1, Disk: 2 << 30}},
		{name: "asking for exactly the ceiling is allowed", srv: srv,
			ask: srv.Max, want: srv.Max},
		{name: "asking for more than the ceiling is refused, naming the key and the flag", srv: srv,
			ask:  Limits{Memory: 8 << 30, CPU: 3},
			errs: []string{"limits.memory: 8G is over this server's ceiling 4G (--environment-max-memory); ask for at most 4G", "limits.cpu: 3 is over this server's ceiling 2 (--environment-max-cpu)"}},
		{name: "asking for less than an app needs to start is refused", srv: srv,
			ask:  Limits{Memory: 1 << 20, Processes: 1, Disk: 1024},
			errs: []string{"limits.memory: 1M is under the minimum 16M", "limits.processes: 1 is under the minimum 4", "limits.disk: 1K is under the minimum 1M"}},
		{name: "a default above its ceiling gives the ceiling", srv: Server{Default: Limits{Memory: 8 << 30}, Max: Limits{Memory: 4 << 30}},
			want: Limits{Memory: 4 << 30}},
		{name: "without a default an environment gets the ceiling", srv: Server{Max: Limits{Processes: 100, CPU: 1.5}},
			want: Limits{Processes: 100, CPU: 1.5}},
		{name: "without ceiling any ask above the minimum is allowed", srv: Server{},
			ask: Limits{Memory: 64 << 30}, want: Limits{Memory: 64 << 30}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.srv.Resolve(tc.ask)
			if len(tc.errs) > 0 {
				if err == nil {
					t.Fatalf("Resolve(%+v) = %+v; want errors %q", tc.ask, got, tc.errs)
				}
				for _, e := range tc.errs {
					if !strings.Contains(err.Error(), e) {
						t.Errorf("error %q lacks %q", err, e)
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
