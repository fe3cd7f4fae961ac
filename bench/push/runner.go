package main

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"time"

	"github.com/glenv/glenv/bench/internal/benchkit"
)

// The baselines of a push: what a program needs to serve a new commit
// without glenv, timed in the same run, each push's right before glenv's
// deploy of the same commit. Getting the commit is part of any deploy, so
// both include it:
//
//   - runner: what a CI runner does in its warm working copy (GitLab
//     Runner's fetch strategy): `git fetch --depth 1` of the commit over
//     smart HTTP from the same GitLab double, `git checkout --force`, then
//     the app's start;
//   - floor: the least any program could do: one upload-pack request for
//     the commit read to its end (what the server itself takes to answer;
//     no pack stored, no file written), then the app's start.
//
// The app's start is the same in both (benchkit.StartDirect: its run
// command as a plain child, probed every 5 ms, as before). It is timed a
// second time while the bench polls the environment every 2 ms, as it does
// during glenv's deploy (its old app, glenv's proxy and pasta answering):
// the health phase is that start under that load. So is the floor's fetch
// request, to show what the same polling costs the fetch phase (the
// upload-pack on the GitLab side runs on the same cores).
type runner struct {
	dir, url, token string
	client          *http.Client
	// poll is one request of the bench's polling for the new commit,
	// through glenv's proxy to the environment's running app: the start
	// is timed a second time with it running every 2 ms meanwhile, the
	// load glenv's deploy starts its app under.
	poll func()
}

// newRunner makes the runner's warm working copy: an empty repository
// that has fetched the first commit and checked it out.
func newRunner(tb *benchkit.TB, url, token, first string) *runner {
	ru := &runner{dir: tb.TempDir(), url: url, token: token, client: &http.Client{Timeout: 30 * time.Second}}
	ru.git(tb, "init", "--quiet")
	ru.checkout(tb, first)
	return ru
}

// baseline is one push's baselines, by part.
type baseline struct {
	fetch, checkout, start, rawFetch time.Duration
	startPolled                      time.Duration // the start while the environment is polled
	rawFetchPolled                   time.Duration // the floor's fetch while it is polled
}

func (b baseline) runner() time.Duration { return b.fetch + b.checkout + b.start }
func (b baseline) floor() time.Duration  { return b.rawFetch + b.start }

// polledFloor is the floor with its start timed while the environment is
// polled, the load glenv's new app starts under.
func (b baseline) polledFloor() time.Duration { return b.rawFetch + b.startPolled }

// measure times the runner's fetch and checkout of sha, the floor's fetch
// of it, and the app's start in the runner's working copy.
func (ru *runner) measure(tb *benchkit.TB, sha string) baseline {
	var b baseline
	b.rawFetch = ru.raw(tb, sha)
	t0 := time.Now()
	ru.fetch(tb, sha)
	t1 := time.Now()
	ru.git(tb, "checkout", "--quiet", "--force", sha)
	b.fetch, b.checkout = t1.Sub(t0), time.Since(t1)
	b.start = tb.StartDirect(ru.dir)
	if ru.poll != nil {
		stop, stopped := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(stopped)
			for {
				select {
				case <-stop:
					return
				default:
				}
				ru.poll()
				time.Sleep(pollEvery)
			}
		}()
		b.rawFetchPolled = ru.raw(tb, sha)
		b.startPolled = tb.StartDirect(ru.dir)
		close(stop)
		<-stopped
	}
	return b
}

func (ru *runner) checkout(tb *benchkit.TB, sha string) {
	ru.fetch(tb, sha)
	ru.git(tb, "checkout", "--quiet", "--force", sha)
}

func (ru *runner) fetch(tb *benchkit.TB, sha string) {
	ru.git(tb, "-c", "http.extraHeader=Authorization: Basic "+basic(ru.token), "-c", "protocol.version=2",
		"fetch", "--quiet", "--no-tags", "--depth=1", ru.url, sha)
}

// raw sends the upload-pack request of a depth-1 fetch of sha (protocol
// v2, as glenv and git send it) and reads the answer to its end.
func (ru *runner) raw(tb *benchkit.TB, sha string) time.Duration {
	var body bytes.Buffer
	pkt := func(s string) { fmt.Fprintf(&body, "%04x%s", len(s)+4, s) }
	pkt("command=fetch\n")
	pkt("agent=bench\n")
	body.WriteString("0001")
	for _, l := range []string{"ofs-delta\n", "no-progress\n", "deepen 1\n", "want " + sha + "\n", "done\n"} {
		pkt(l)
	}
	body.WriteString("0000")
	req, _ := http.NewRequest(http.MethodPost, ru.url+"/git-upload-pack", &body)
	req.Header.Set("Content-Type", "application/x-git-upload-pack-request")
	req.Header.Set("Git-Protocol", "version=2")
	req.Header.Set("Authorization", "Basic "+basic(ru.token))
	t0 := time.Now()
	resp, err := ru.client.Do(req)
	tb.Must(err)
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	d := time.Since(t0)
	tb.Must(err)
	if resp.StatusCode != http.StatusOK || n < 100 {
		tb.Fatalf("the floor's fetch of %s: %s, %d bytes", sha, resp.Status, n)
	}
	return d
}

func (ru *runner) git(tb *benchkit.TB, args ...string) {
	cmd := exec.Command("git", args...)
	cmd.Dir = ru.dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_TERMINAL_PROMPT=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("runner: git %s: %v\n%s", args[0], err, out)
	}
}

func basic(token string) string {
	return base64.StdEncoding.EncodeToString([]byte("oauth2:" + token))
}
