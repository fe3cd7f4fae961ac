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
