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
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/glenv/glenv/bench/internal/progtb"

	"github.com/glenv/glenv/internal/gitlabtest"
	"github.com/glenv/glenv/internal/runtime"
	"github.com/glenv/glenv/internal/store"
)

func main() {
	n := flag.Int("n", 10, "redeploys (and app starts) measured")
	appDir := flag.String("app", "examples/static", "example app to deploy")
	flag.Parse()
	ctx := context.Background()

	gl := gitlabtest.NewServer()
	defer gl.Close()
	defer gl.RemoveRepos()
	bot := gl.AddUser(gitlabtest.User{Username: "bot"})
	p := gl.AddProject(gitlabtest.Project{PathWithNamespace: "group/app", Members: map[int64]int{bot.ID: 40}})
	token := gl.AddToken(gitlabtest.Token{UserID: bot.ID, Scopes: []string{"api"}})
	hs := &http.Server{Handler: gl.GitHandler()}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	go hs.Serve(l)
	defer hs.Close()
	tb := progtb.New("bench/runtime")
	defer tb.RemoveAll()
	abs, err := filepath.Abs(*appDir)
	must(err)
	shaA := gl.Commit(tb, p.ID, gitlabtest.Commit{Dir: abs})
	shaB := gl.Commit(tb, p.ID, gitlabtest.Commit{Files: map[string]string{"bench.txt": "b"}})

	// The app's own start: its `run` command started directly.
	own := make([]time.Duration, 0, *n)
	for range *n {
		own = append(own, startDirect(abs))
	}
	fmt.Printf("runtime: redeploy of an already-built tree vs the app's own start (%s), median of %d\n", *appDir, *n)
	fmt.Printf("  %-34s %9s %9s\n", "", "median", "max")
	fmt.Printf("  %-34s %9s %9s\n", "app's own start (run → health 2xx)", med(own), slices.Max(own).Round(time.Millisecond))
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
		req := func(sha string) runtime.DeployRequest {
			return runtime.DeployRequest{Integration: store.Integration{Name: "app", BaseURL: "http://" + l.Addr().String(), ProjectPath: "group/app", ProjectID: p.ID},
				Token: token, Env: env, SHA: sha, Log: func(string) {}}
		}
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
		fmt.Printf("  %-34s %9s %9s   +%s over the app's own start (goal ≤ +1s): %s\n", label, med(times), slices.Max(times).Round(time.Millisecond),
			(med(times) - med(own)).Round(time.Millisecond), verdict(med(times)-med(own) <= time.Second))
		rt.Close()
		os.RemoveAll(dir)
	}
}

// startDirect runs the app's `run` command as a plain child process and
// returns how long it took to answer its health path.
func startDirect(dir string) time.Duration {
	port := freePort()
	start := time.Now()
	cmd := exec.Command("/bin/sh", "-c", "python3 -m http.server $PORT --bind 127.0.0.1")
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "PORT=" + strconv.Itoa(port)}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	must(cmd.Start())
	url := "http://127.0.0.1:" + strconv.Itoa(port) + "/"
	delay := 20 * time.Millisecond
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				break
			}
		}
		time.Sleep(delay)
		delay = min(2*delay, 250*time.Millisecond)
	}
	d := time.Since(start)
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	cmd.Wait()
	return d
}

func med(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2].Round(time.Millisecond)
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/runtime:", err)
		os.Exit(1)
	}
}
