// Command runtime measures a redeploy of an already-built tree — glenv's
// runtime switching an environment to a commit it has fetched and built
// before — against the app's own start time (the `run` command started
// directly, until its health path answers 2xx), both in the same run, with
// and without the bubblewrap sandbox. The repository comes from the GitLab
// double over smart HTTP, as in production.
//
//	go run ./bench/runtime [-n 10] [-app examples/static]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/glenv/glenv/bench/internal/benchkit"

	"github.com/glenv/glenv/internal/gitlabtest"
	"github.com/glenv/glenv/internal/runtime"
	"github.com/glenv/glenv/internal/store"
)

func main() {
	n := flag.Int("n", 10, "redeploys (and app starts) measured")
	appDir := flag.String("app", "examples/static", "example app to deploy")
	flag.Parse()
	ctx := context.Background()

	tb := benchkit.New("bench/runtime")
	defer tb.RemoveAll()
	gl := tb.GitLab()
	defer gl.Close()
	abs, err := filepath.Abs(*appDir)
	must(err)
	shaA := gl.Commit(tb, gl.Project.ID, gitlabtest.Commit{Dir: abs})
	shaB := gl.Commit(tb, gl.Project.ID, gitlabtest.Commit{Files: map[string]string{"bench.txt": "b"}})

	// The app's own start: its `run` command started directly.
	own := make([]time.Duration, 0, *n)
	for range *n {
		own = append(own, tb.StartDirect(abs))
	}
	fmt.Printf("runtime: redeploy of an already-built tree vs the app's own start (%s), median of %d\n", *appDir, *n)
	fmt.Printf("  %-34s %9s %9s\n", "", "median", "max")
	fmt.Printf("  %-34s %9s %9s\n", "app's own start (run → health 2xx)", benchkit.Median(own), slices.Max(own).Round(time.Millisecond))
	for _, sandboxed := range []bool{true, false} {
		dir, err := os.MkdirTemp("", "bench-runtime-")
		must(err)
		rt, err := runtime.New(runtime.Options{Dir: dir, DisableSandbox: !sandboxed, UnsafeNoSandbox: !sandboxed, StopGrace: 2 * time.Second})
		must(err)
		if sandboxed && !rt.Sandboxed() {
			fmt.Println("  (bubblewrap unusable here: sandboxed row skipped)")
			rt.Close()
			os.RemoveAll(dir)
			continue
		}
		env := store.Environment{ID: 1, Name: "main", Kind: "branch", Host: "main--app"}
		req := func(sha string) runtime.DeployRequest { return gl.Request(env, sha) }
		// Fetch and build both commits once; then alternate between them.
		must(rt.Deploy(ctx, req(shaA)))
		must(rt.Deploy(ctx, req(shaB)))
		times := make([]time.Duration, 0, *n)
		for i := range *n {
			sha := shaA
			if i%2 == 1 {
				sha = shaB
			}
			start := time.Now()
			must(rt.Deploy(ctx, req(sha)))
			times = append(times, time.Since(start))
		}
		label := "glenv redeploy, sandboxed"
		if !sandboxed {
			label = "glenv redeploy, no sandbox"
		}
		fmt.Printf("  %-34s %9s %9s   +%s over the app's own start (goal ≤ +1s): %s\n", label, benchkit.Median(times), slices.Max(times).Round(time.Millisecond),
			(benchkit.Median(times) - benchkit.Median(own)).Round(time.Millisecond), benchkit.Verdict(benchkit.Median(times)-benchkit.Median(own) <= time.Second))
		rt.Close()
		os.RemoveAll(dir)
	}
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/runtime:", err)
		os.Exit(1)
	}
}
