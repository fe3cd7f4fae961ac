package web

import "testing"

// The budget: at most 100 KB of JavaScript and CSS, uncompressed.
func TestTheDashboardShipsAtMost100KBOfJavaScriptAndCSS(t *testing.T) {
	n, err := AssetsSize()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("JavaScript + CSS shipped: %d bytes", n)
	if n > 100_000 {
		t.Errorf("the dashboard ships %d bytes of JavaScript and CSS; the budget is 100,000", n)
	}
}

// BenchmarkAssetsSize reports the size of what the dashboard ships.
func BenchmarkAssetsSize(b *testing.B) {
	var n int
	for b.Loop() {
		n, _ = AssetsSize()
	}
	b.ReportMetric(float64(n), "bytes-js+css")
}
