package envapi_test

import (
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/glenv/glenv/internal/jobs"
	"github.com/glenv/glenv/internal/store/storetest"
)

// BenchmarkList lists one project of 10,000 environments with per_page=100
// over HTTP, striding through every page (bench/envapi prints p50/p99).
func BenchmarkList(b *testing.B) {
	const n, perPage = 10000, 100
	for _, backend := range storetest.Backends() {
		b.Run(backend.Name, func(b *testing.B) {
			g := startGlenv(b, storetest.Open(b, backend), jobs.RecordRuntime{})
			seedBranchEnvs(b, g, n)
			for i := 0; b.Loop(); i++ {
				page := 1 + (i*37)%(n/perPage)
				req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/api/v4/projects/%d/environments?per_page=%d&page=%d",
					g.url, appID, perPage, page), nil)
				req.Header.Set("PRIVATE-TOKEN", g.token)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("page %d: status %d", page, resp.StatusCode)
				}
			}
		})
	}
}
