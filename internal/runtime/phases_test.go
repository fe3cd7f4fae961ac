package runtime

import (
	"strings"
	"testing"
	"time"
)

func TestProbeDelay(t *testing.T) {
	for _, tc := range []struct {
		name  string
		since time.Duration
		want  time.Duration
	}{
		{"a starting app is probed every 5 ms at first", 0, 5 * time.Millisecond},
		{"still every 5 ms just before two seconds", 1999 * time.Millisecond, 5 * time.Millisecond},
		{"after two seconds the wait is a tenth of the start so far", 2200 * time.Millisecond, 220 * time.Millisecond},
		{"never more than 250 ms apart", time.Minute, 250 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := probeDelay(tc.since); got != tc.want {
				t.Fatalf("probeDelay(%s) = %s, want %s", tc.since, got, tc.want)
			}
		})
	}
}

func TestPhasesListStagesInOrder(t *testing.T) {
	p := newPhases()
	p.done("fetch")
	p.done("build")
	if s := p.String(); !strings.HasPrefix(s, "fetch ") || !strings.Contains(s, ", build ") {
		t.Fatalf("phases = %q, want fetch then build", s)
	}
	var none *phases
	none.done("fetch") // a stage run outside Deploy times nothing
}

func TestHasFlag(t *testing.T) {
	info := []byte("processor\t: 0\nflags\t\t: fpu sse2 avx avx2 bmi2\nbugs\t\t: spectre\n")
	for _, tc := range []struct {
		name, flag string
		want       bool
	}{
		{"a CPU flag listed is found", "avx2", true},
		{"a flag that is only a prefix of one listed is not", "avx5", false},
		{"a word of another line is not a flag", "spectre", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := hasFlag(info, tc.flag); got != tc.want {
				t.Fatalf("hasFlag(%q) = %v", tc.flag, got)
			}
		})
	}
}
