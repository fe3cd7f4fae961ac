package variable

import (
	"strconv"
	"testing"
)

// BenchmarkAffectedScan is what one variable change costs the variables
// service: Effective twice and Same for every environment of an
// integration. Only the changed name's definitions are compared (here:
// the integration's and one of each of 500 environments, two levels
// deep); BenchmarkAffectedScanAllNames compares every name, as a
// baseline.
func BenchmarkAffectedScan(b *testing.B) { benchAffected(b, 1) }

func BenchmarkAffectedScanAllNames(b *testing.B) { benchAffected(b, MaxPerLevel) }

func benchAffected(b *testing.B, names int) {
	var integ []Variable
	for i := range names {
		integ = append(integ, Variable{Name: "V" + strconv.Itoa(i), Value: "x", VisibleBuild: true, VisibleRun: true})
	}
	byEnv := map[string][]Variable{}
	parents := map[string]string{}
	var envs []string
	for i := range 500 {
		name := "env" + strconv.Itoa(i)
		envs = append(envs, name)
		if i > 0 {
			parents[name] = "env" + strconv.Itoa(i%10)
		}
		for j := range min(names, 10) {
			byEnv[name] = append(byEnv[name], Variable{Name: "E" + strconv.Itoa(j), Value: name, Inheritable: true, VisibleBuild: true, VisibleRun: true})
		}
	}
	after := append([]Variable(nil), integ...)
	after[0].Value = "changed"
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		for _, e := range envs {
			chain := Chain(e, parents)
			if !Same(Effective(integ, byEnv, chain), Effective(after, byEnv, chain)) {
				n++
			}
		}
		if n != len(envs) {
			b.Fatalf("%d affected, want all %d", n, len(envs))
		}
	}
}
