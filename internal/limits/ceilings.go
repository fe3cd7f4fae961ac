package limits

import (
	"fmt"
	"strconv"
)

// ceiling names the ceiling of key (memory, processes, cpu, disk) with its
// value v and where it is set, so a refused deploy says whom to ask.
func (s Server) ceiling(key, v string, own bool) string {
	if own {
		return fmt.Sprintf("integration %s's ceiling %s (glenv integration:update %s --environment-max-%s)", s.Integration, v, s.Integration, key)
	}
	return fmt.Sprintf("this server's ceiling %s (--environment-max-%s)", v, key)
}

// ForIntegration is s as the environments of the integration named name
// see it: each of its own ceilings (max; 0 = none of its own) replaces the
// server's where it is lower. An integration ceiling above the server's is
// refused when it is set (CheckCeilings); should the server's be lowered
// below it later, the server's holds.
func (s Server) ForIntegration(name string, max Limits) Server {
	s.Integration, s.Own = name, Limits{}
	if max.Memory > 0 && (s.Max.Memory == 0 || max.Memory < s.Max.Memory) {
		s.Max.Memory, s.Own.Memory = max.Memory, max.Memory
	}
	if max.Processes > 0 && (s.Max.Processes == 0 || max.Processes < s.Max.Processes) {
		s.Max.Processes, s.Own.Processes = max.Processes, max.Processes
	}
	if max.CPU > 0 && (s.Max.CPU == 0 || max.CPU < s.Max.CPU) {
		s.Max.CPU, s.Own.CPU = max.CPU, max.CPU
	}
	if max.Disk > 0 && (s.Max.Disk == 0 || max.Disk < s.Max.Disk) {
		s.Max.Disk, s.Own.Disk = max.Disk, max.Disk
	}
	return s
}

// Problem is one ceiling an integration may not have: the field (as the
// API names it) and the rule.
type Problem struct{ Field, Rule string }

// CheckCeilings checks an integration's own ceilings (0 = the server's)
// against the server's: never above them, never under the minimum an app
// needs to start.
func (s Server) CheckCeilings(max Limits) []Problem {
	var out []Problem
	check := func(field string, v, ceil, min float64, format func(float64) string) {
		switch {
		case v == 0:
		case v < 0:
			out = append(out, Problem{field, fmt.Sprintf("%s must not be negative; 0 uses the server's ceiling", format(v))})
		case v < min:
			out = append(out, Problem{field, fmt.Sprintf("%s is under the minimum %s an environment needs; set at least %s, or 0 for the server's ceiling", format(v), format(min), format(min))})
		case ceil > 0 && v > ceil:
			out = append(out, Problem{field, fmt.Sprintf("%s is above this server's ceiling %s (serve --%s); set at most %s, or raise the server's", format(v), format(ceil), field2flag(field), format(ceil))})
		}
	}
	size := func(v float64) string { return FormatSize(int64(v)) }
	count := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	check("environment_max_memory", float64(max.Memory), float64(s.Max.Memory), MinMemory, size)
	check("environment_max_processes", float64(max.Processes), float64(s.Max.Processes), MinProcesses, count)
	check("environment_max_cpu", max.CPU, s.Max.CPU, MinCPU, count)
	check("environment_max_disk", float64(max.Disk), float64(s.Max.Disk), MinDisk, size)
	return out
}

// field2flag is the serve flag of an API field: environment_max_memory →
// environment-max-memory.
func field2flag(field string) string {
	b := []byte(field)
	for i, c := range b {
		if c == '_' {
			b[i] = '-'
		}
	}
	return string(b)
}
