package webhook

import (
	"encoding/json"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

// cpuLoop runs body b.N times and reports this process's CPU per run: on a
// shared machine the wall time per op says more about the neighbours.
func cpuLoop(b *testing.B, body func()) {
	c0 := cpuTime()
	for b.Loop() {
		body()
	}
	b.ReportMetric(float64(cpuTime()-c0)/float64(b.N), "cpu-ns/op")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// push8K is GitLab's push example padded with commits to 8 KB, the size
// the webhook benchmarks use.
func push8K(b *testing.B) []byte {
	var p map[string]any
	if err := json.Unmarshal(fixture(b, "push_branch_created.json"), &p); err != nil {
		b.Fatal(err)
	}
	commits := p["commits"].([]any)
	for {
		body, _ := json.Marshal(p)
		if len(body) >= 8<<10 {
			return body
		}
		commits = append(commits, commits[0])
		p["commits"] = commits
	}
}

func BenchmarkParseEvent(b *testing.B) {
	for _, c := range []struct {
		name, header string
		body         []byte
	}{
		{"push 8KB", "Push Hook", push8K(b)},
		{"merge request open", "Merge Request Hook", fixture(b, "merge_request_open.json")},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.body)))
			b.ReportAllocs()
			cpuLoop(b, func() {
				if ev, err := ParseEvent(c.header, c.body); err != nil || ev.Invalid != "" {
					b.Fatalf("%+v %v", ev, err)
				}
			})
		})
	}
}

func BenchmarkCheckBody(b *testing.B) {
	body := push8K(b)
	b.SetBytes(int64(len(body)))
	cpuLoop(b, func() {
		if msg := checkBody(body); msg != "" {
			b.Fatal(msg)
		}
	})
}

func BenchmarkValidate(b *testing.B) {
	body := push8K(b)
	b.SetBytes(int64(len(body)))
	b.Run("encoding/json.Valid", func(b *testing.B) { cpuLoop(b, func() { json.Valid(body) }) })
	b.Run("gjson.ValidBytes", func(b *testing.B) { cpuLoop(b, func() { gjson.ValidBytes(body) }) })
	b.Run("utf8.Valid", func(b *testing.B) { cpuLoop(b, func() { utf8.Valid(body) }) })
}
