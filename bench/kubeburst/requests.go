package main

import (
	"bufio"
	"context"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"k8s.io/client-go/kubernetes"
)

// requestCounts reads the API server's apiserver_request_total, summed by
// verb and resource (every code and scope): what the burst asked of it,
// whoever asked.
func requestCounts(ctx context.Context, c kubernetes.Interface) map[string]float64 {
	raw, err := c.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "apiserver_request_total{") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		labels := line[:i]
		key := label(labels, "verb") + " " + label(labels, "resource")
		if sub := label(labels, "subresource"); sub != "" {
			key += "/" + sub
		}
		if code := label(labels, "code"); !strings.HasPrefix(code, "2") {
			key += " (" + code + ")"
		}
		out[key] += v
	}
	return out
}

var labelRE = map[string]*regexp.Regexp{}

func label(s, name string) string {
	re := labelRE[name]
	if re == nil {
		re = regexp.MustCompile(`[{,]` + name + `="([^"]*)"`)
		labelRE[name] = re
	}
	m := re.FindStringSubmatch(s)
	if m == nil {
		return ""
	}
	return m[1]
}

// requestsPerEnv says, per environment, the API server requests the burst
// made, largest first (those above 0.5 each, watches excluded: they are
// opened once).
func requestsPerEnv(before, after map[string]float64, n int) string {
	type row struct {
		key string
		per float64
	}
	var rows []row
	total := 0.0
	for k, v := range after {
		d := (v - before[k]) / float64(n)
		if strings.HasPrefix(k, "WATCH") {
			continue
		}
		total += d
		if d >= 0.5 {
			rows = append(rows, row{k, d})
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].per > rows[j].per })
	var b strings.Builder
	fmt.Fprintf(&b, "  API server requests per environment (all clients): %.1f;", total)
	for _, r := range rows {
		fmt.Fprintf(&b, " %s %.1f,", r.key, r.per)
	}
	return strings.TrimSuffix(b.String(), ",") + "\n"
}
