// Command prebuild measures what a prebuild (issue 17, --prebuild-branches)
// buys, in one run with interleaved rounds on the real process runtime:
//
//   - redeploy: an active environment deployed again at the commit it runs
//     (its build reused): the goal's baseline;
//   - activation after a prebuild: a new environment whose head was
//     prebuilt (fetched and built, not run), then deployed;
//   - activation without one: a new environment deployed from a commit
//     nobody built (fetch + build + start), for reference.
//
// Each round commits a fresh tree whose build takes -build seconds, so
// nothing is reused across rounds. Goal: activation after a prebuild ≤ a
// redeploy of a built tree + 100 ms.
//
//	go run ./bench/prebuild [-rounds 5] [-build 0.5] [-log]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/glenv/glenv/bench/internal/benchkit"

	"github.com/glenv/glenv/internal/gitlabtest"
	"github.com/glenv/glenv/internal/runtime"
	"github.com/glenv/glenv/internal/store"
)

func main() {
	rounds := flag.Int("rounds", 5, "interleaved rounds")
	build := flag.Float64("build", 0.5, "seconds each fresh tree's build step sleeps")
	showLog := flag.Bool("log", false, "print the deploy logs (timestamped phases) to stderr")
	flag.Parse()
	ctx := context.Background()

	tb := benchkit.New("bench/prebuild")
	defer tb.RemoveAll()
	gl := tb.GitLab()
	defer gl.Close()
	static, err := filepath.Abs("examples/static")
	must(err)
	commit := func(branch string, round int) string {
		yml := fmt.Sprintf("build:\n  - sleep %g\nrun: python3 -m http.server $PORT --bind 127.0.0.1\nhealth: /\n", *build)
		return gl.Commit(tb, gl.Project.ID, gitlabtest.Commit{Branch: branch, Dir: static,
			Files: map[string]string{".glenv.yml": yml, "round.txt": branch + strconv.Itoa(round) + "\n"}})
	}

	dir, err := os.MkdirTemp("", "bench-prebuild-")
	must(err)
	defer os.RemoveAll(dir)
	rt, err := runtime.New(runtime.Options{Dir: dir, StopGrace: 2 * time.Second, UnsafeNoSandbox: true})
	must(err)
	defer rt.Close()
	req := func(id int64, sha string) runtime.DeployRequest {
		name := "env" + strconv.FormatInt(id, 10)
		env := store.Environment{ID: id, Name: name, Kind: "branch", IntegrationName: "app", Host: name + "--app", Ref: name, State: store.StateBuilding}
		r := gl.Request(env, sha)
		if *showLog {
			r.Log = func(s string) { fmt.Fprint(os.Stderr, name+" "+s) }
		}
		return r
	}
	timed := func(f func() error) time.Duration {
		start := time.Now()
		must(f())
		return time.Since(start)
	}

	// The active environment redeployed each round, built once here.
	base := commit("main", 0)
	must(rt.Deploy(ctx, req(1, base)))
	var redeploy, afterPrebuild, cold []time.Duration
	id := int64(10)
	for r := 1; r <= *rounds; r++ {
		redeploy = append(redeploy, timed(func() error { return rt.Deploy(ctx, req(1, base)) }))

		id++
		pre := req(id, commit("prebuilt", r))
		must(rt.Prebuild(ctx, pre))
		afterPrebuild = append(afterPrebuild, timed(func() error { return rt.Deploy(ctx, pre) }))
		must(rt.Remove(ctx, pre.Env, nil))

		id++
		c := req(id, commit("cold", r))
		cold = append(cold, timed(func() error { return rt.Deploy(ctx, c) }))
		must(rt.Remove(ctx, c.Env, nil))
	}
	sandbox := "no sandbox"
	if rt.Sandboxed() {
		sandbox = "sandboxed"
	}
	fmt.Printf("prebuild: %d interleaved rounds, examples/static with a %gs build step, %s\n", *rounds, *build, sandbox)
	fmt.Printf("  %-40s %9s %9s %9s\n", "", "min", "median", "max")
	row := func(name string, ds []time.Duration) {
		fmt.Printf("  %-40s %9s %9s %9s\n", name, slices.Min(ds).Round(time.Millisecond), benchkit.Median(ds), slices.Max(ds).Round(time.Millisecond))
	}
	row("redeploy of a built tree", redeploy)
	row("activation after a prebuild", afterPrebuild)
	row("activation without a prebuild (cold)", cold)
	over := benchkit.Median(afterPrebuild) - benchkit.Median(redeploy)
	fmt.Printf("activation after a prebuild: %+v over a redeploy of a built tree (goal ≤ +100ms): %s; without a prebuild: %+v\n",
		over, benchkit.Verdict(over <= 100*time.Millisecond), benchkit.Median(cold)-benchkit.Median(redeploy))
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/prebuild:", err)
		os.Exit(1)
	}
}
