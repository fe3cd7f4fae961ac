package runtime

import (
	"strings"
	"time"
)

// phases times a deploy's stages, so its log says where the time went
// (bench/push and bench/wake read the line it writes).
type phases struct {
	last  time.Time
	names []string
	took  []time.Duration
}

func newPhases() *phases { return &phases{last: time.Now()} }

// done ends the phase that ran since the previous one ended; a nil p
// (a stage run outside Deploy) times nothing.
func (p *phases) done(name string) {
	if p == nil {
		return
	}
	now := time.Now()
	p.names = append(p.names, name)
	p.took = append(p.took, now.Sub(p.last))
	p.last = now
}

// String is "fetch 12ms, configure 3ms, …" in the order the phases ran.
func (p *phases) String() string {
	var b strings.Builder
	for i, n := range p.names {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(n + " " + p.took[i].Round(100*time.Microsecond).String())
	}
	return b.String()
}

// PhasesPrefix starts the log line that lists a deploy's phases.
const PhasesPrefix = "deploy phases: "
