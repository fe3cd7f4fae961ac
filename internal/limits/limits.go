// Package limits is what one environment may use of the machine: memory,
// processes, CPU and disk. It parses sizes as .glenv.yml and the serve
// flags write them ("512M", "2G") and resolves what an environment asks for
// against the server's defaults and ceilings, narrowed by an integration's
// own ceilings. It decides; it enforces
// nothing (internal/runtime does, with cgroups and a disk watchdog).
package limits

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Limits of one environment. A zero field is unset: the default applies.
type Limits struct {
	Memory    int64   // bytes of RAM (and swap) for the environment's processes together
	Processes int     // processes and threads at once
	CPU       float64 // CPUs' worth of time, e.g. 0.5 or 2
	Disk      int64   // bytes the environment's writable directories may hold
}

// Minimums below which an app cannot even start; asking for less is an error.
const (
	MinMemory    = 16 << 20
	MinProcesses = 4
	MinCPU       = 0.01
	MinDisk      = 1 << 20
)

// ParseSize reads a size in bytes: a plain number, or one with a binary
// suffix K, M, G or T (optionally followed by i and/or B, any case), e.g.
// 512M, 1.5G, 64Mi, 2GB. Like Docker and Kubernetes' Mi, every suffix
// counts in powers of 1024.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, fmt.Errorf("%q is not a size; write a number of bytes or one with K, M, G or T, e.g. 512M", s)
	}
	u := strings.ToUpper(t)
	u = strings.TrimSuffix(u, "B")
	u = strings.TrimSuffix(u, "I")
	mult := int64(1)
	if n := len(u); n > 0 {
		switch u[n-1] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		case 'T':
			mult = 1 << 40
		}
		if mult > 1 {
			u = strings.TrimSpace(u[:n-1])
		}
	}
	f, err := strconv.ParseFloat(u, 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) || strings.ContainsAny(u, "eEx+-") {
		return 0, fmt.Errorf("%q is not a size; write a number of bytes or one with K, M, G or T, e.g. 512M", s)
	}
	v := f * float64(mult)
	if v >= math.MaxInt64/2 {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return int64(v), nil
}

// FormatSize writes n the way ParseSize reads it, in the largest unit that
// keeps it whole (or one decimal).
func FormatSize(n int64) string {
	for _, u := range []struct {
		suffix string
		size   int64
	}{{"T", 1 << 40}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}} {
		if n >= u.size {
			if n%u.size == 0 {
				return strconv.FormatInt(n/u.size, 10) + u.suffix
			}
			return strconv.FormatFloat(float64(n)/float64(u.size), 'f', 1, 64) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

// Server is what a server allows: the limits an environment gets when its
// .glenv.yml asks for none, and the most it may ask for (0 = no ceiling).
// The ceilings are server-wide, or an integration's own where
// ForIntegration narrowed them.
type Server struct {
	Default Limits
	Max     Limits
	// Integration names the integration whose own ceilings are in Max
	// where Own is non-zero (ForIntegration); errors name it.
	Integration string
	Own         Limits
}

// Resolve is the environment's limits: each value it asked for, else the
// default, never above the ceiling. An ask over the ceiling or under the
// minimum is an error naming the key, the rule and the fix; the defaults
// are clamped to the ceilings (a server whose default exceeds its ceiling
// gives the ceiling).
func (s Server) Resolve(ask Limits) (Limits, error) {
	var problems []string
	out := s.Default
	if ask.Memory != 0 {
		switch {
		case ask.Memory < MinMemory:
			problems = append(problems, fmt.Sprintf("limits.memory: %s is under the minimum %s; ask for at least %s", FormatSize(ask.Memory), FormatSize(MinMemory), FormatSize(MinMemory)))
		case s.Max.Memory > 0 && ask.Memory > s.Max.Memory:
			problems = append(problems, fmt.Sprintf("limits.memory: %s is over %s; ask for at most %s", FormatSize(ask.Memory), s.ceiling("memory", FormatSize(s.Max.Memory), s.Own.Memory > 0), FormatSize(s.Max.Memory)))
		}
		out.Memory = ask.Memory
	}
	if ask.Processes != 0 {
		switch {
		case ask.Processes < MinProcesses:
			problems = append(problems, fmt.Sprintf("limits.processes: %d is under the minimum %d; ask for at least %d", ask.Processes, MinProcesses, MinProcesses))
		case s.Max.Processes > 0 && ask.Processes > s.Max.Processes:
			problems = append(problems, fmt.Sprintf("limits.processes: %d is over %s; ask for at most %d", ask.Processes, s.ceiling("processes", strconv.Itoa(s.Max.Processes), s.Own.Processes > 0), s.Max.Processes))
		}
		out.Processes = ask.Processes
	}
	if ask.CPU != 0 {
		switch {
		case ask.CPU < MinCPU:
			problems = append(problems, fmt.Sprintf("limits.cpu: %g is under the minimum %g; ask for at least %g", ask.CPU, MinCPU, MinCPU))
		case s.Max.CPU > 0 && ask.CPU > s.Max.CPU:
			problems = append(problems, fmt.Sprintf("limits.cpu: %g is over %s; ask for at most %g", ask.CPU, s.ceiling("cpu", strconv.FormatFloat(s.Max.CPU, 'g', -1, 64), s.Own.CPU > 0), s.Max.CPU))
		}
		out.CPU = ask.CPU
	}
	if ask.Disk != 0 {
		switch {
		case ask.Disk < MinDisk:
			problems = append(problems, fmt.Sprintf("limits.disk: %s is under the minimum %s; ask for at least %s", FormatSize(ask.Disk), FormatSize(MinDisk), FormatSize(MinDisk)))
		case s.Max.Disk > 0 && ask.Disk > s.Max.Disk:
			problems = append(problems, fmt.Sprintf("limits.disk: %s is over %s; ask for at most %s", FormatSize(ask.Disk), s.ceiling("disk", FormatSize(s.Max.Disk), s.Own.Disk > 0), FormatSize(s.Max.Disk)))
		}
		out.Disk = ask.Disk
	}
	if len(problems) > 0 {
		return Limits{}, &Error{Problems: problems}
	}
	out.Memory = clamp(out.Memory, s.Max.Memory)
	out.Processes = int(clamp(int64(out.Processes), int64(s.Max.Processes)))
	if s.Max.CPU > 0 && (out.CPU == 0 || out.CPU > s.Max.CPU) {
		out.CPU = s.Max.CPU
	}
	out.Disk = clamp(out.Disk, s.Max.Disk)
	return out, nil
}

func clamp(v, max int64) int64 {
	if max > 0 && (v == 0 || v > max) {
		return max
	}
	return v
}

// Error lists every limit asked for that the server does not allow.
type Error struct{ Problems []string }

func (e *Error) Error() string { return strings.Join(e.Problems, "; ") }

// String shows limits as a .glenv.yml would write them, for logs.
func (l Limits) String() string {
	var parts []string
	if l.Memory > 0 {
		parts = append(parts, "memory "+FormatSize(l.Memory))
	}
	if l.Processes > 0 {
		parts = append(parts, "processes "+strconv.Itoa(l.Processes))
	}
	if l.CPU > 0 {
		parts = append(parts, "cpu "+strconv.FormatFloat(l.CPU, 'g', -1, 64))
	}
	if l.Disk > 0 {
		parts = append(parts, "disk "+FormatSize(l.Disk))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
