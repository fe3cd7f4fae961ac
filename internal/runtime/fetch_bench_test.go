package runtime

import (
	"io"
	"slices"
	"testing"
	"time"

	"github.com/glenv/glenv/internal/gitlabtest"
)

// BenchmarkFetch is a redeploy's fetch stage against the floor of any
// program: the one upload-pack request for a new commit read to its end
// (what the server takes to answer, nothing stored), then glenv's fetch of
// another new commit the same way (its pack and index written, the commit,
// tree and .glenv.yml read, the shallow file and ref set). The two take
// turns in every iteration, so they see the same machine; each is reported
// as its median in ms.
//
//	go test -run '^$' -bench Fetch -benchtime 20x ./internal/runtime/
func BenchmarkFetch(b *testing.B) {
	w := newFetchWorld(b, nil)
	files := map[string]string{".glenv.yml": "run: python3 -m http.server $PORT\nhealth: /\n", "index.html": "<h1>hi</h1>\n"}
	commit := func(v string) string {
		files["version.txt"] = v
		return w.gl.Commit(b, w.id, gitlabtest.Commit{Files: files})
	}
	w.fetch(b, commit("first"))
	var raw, glenv []time.Duration
	i := 0
	for b.Loop() {
		i++
		b.StopTimer()
		sha := commit("raw " + string(rune('a'+i%26)) + time.Now().String())
		b.StartTimer()
		t0 := time.Now()
		fp, err := postFetch(b.Context(), w.r.http, w.url, w.token, sha)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, fp.pack); err != nil {
			b.Fatal(err)
		}
		fp.body.Close()
		raw = append(raw, time.Since(t0))
		b.StopTimer()
		sha = commit("glenv " + time.Now().String())
		b.StartTimer()
		t0 = time.Now()
		_, pack, _ := w.fetch(b, sha)
		glenv = append(glenv, time.Since(t0))
		pack.close()
	}
	med := func(ds []time.Duration) float64 {
		slices.Sort(ds)
		return float64(ds[len(ds)/2]) / float64(time.Millisecond)
	}
	b.ReportMetric(med(raw), "request-ms")
	b.ReportMetric(med(glenv), "fetch-ms")
	b.ReportMetric(0, "ns/op")
}
