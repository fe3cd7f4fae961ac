package feedback_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/glenv/glenv/internal/feedback"
	"github.com/glenv/glenv/internal/gitlab"
	"github.com/glenv/glenv/internal/gitlabtest"
	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/store/storetest"
)

// fast tunes feedback for tests: short debounce and backoff.
func fast(d *feedback.Deps) {
	d.Timing.Debounce, d.Timing.MaxDebounce = 150*time.Millisecond, 2*time.Second
	d.Timing.RetryMin, d.Timing.RetryMax = 50*time.Millisecond, 300*time.Millisecond
	d.GitLab = gitlab.Options{DialTimeout: 200 * time.Millisecond, Timeout: 200 * time.Millisecond, RetryMax: -1}
}

// TestAPushToAnActiveMergeRequestCostsFiveCalls drives the River worker the
// way internal/jobs notifies it: a sync per state change, the queued and
// running changes arriving together as they do when a worker is free.
func TestAPushToAnActiveMergeRequestCostsFiveCalls(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		w := newWorld(t, st, fast)
		q := w.startQueue(4)
		env, d1 := w.openMR(7, "feature", sha("open"))
		q.notify(env)
		d1.start()
		q.notify(env)
		q.idle(5 * time.Second) // GitLab has seen the deploy running
		d1.succeed()
		q.notify(env)
		q.idle(5 * time.Second)
		t.Logf("MR open: %d GitLab calls", len(w.calls()))
		for i := 0; i < 2; i++ {
			commit := sha(fmt.Sprint("push", i))
			d := w.push(env, commit)
			q.notify(env)
			d.start()
			q.notify(env)
			// The deploy runs until GitLab has seen it running: waiting on
			// the queue, not on time, keeps a loaded machine from folding
			// running and success into one sync.
			q.idle(5 * time.Second)
			d.succeed()
			q.notify(env)
			q.idle(5 * time.Second)
			note := itoa(w.notes(7)[0].ID)
			w.expectCalls(fmt.Sprintf("push %d", i),
				"POST statuses/"+commit[:8]+" running", "POST deployments running",
				"POST statuses/"+commit[:8]+" success", fmt.Sprintf("PUT deployments/%d success", 502+i), "PUT notes/"+note)
		}
	})
}

// TestGitLabOutage: GitLab answers 503, then times out, while pushes keep
// coming and deploys keep completing. When it is back every SHA ends with
// its final status, the merge request has one note showing the newest
// deploy, and nothing is duplicated.
func TestGitLabOutage(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		w := newWorld(t, st, fast, func(d *feedback.Deps) { d.Timing.Debounce = 20 * time.Millisecond })
		q := w.startQueue(4)
		env, d1 := w.openMR(7, "feature", sha("before"))
		d1.start().succeed()
		q.notify(env)
		q.idle(5 * time.Second)
		w.calls()

		outageStart := time.Now()
		w.gl.AddFault(gitlabtest.Fault{PathPattern: ".", Status: http.StatusServiceUnavailable})
		var finals = map[string]string{}
		var prev *deploy
		for i := 0; i < 8; i++ {
			if i == 4 {
				// Second half of the outage: GitLab hangs past the client's time-out.
				w.gl.ClearFaults()
				w.gl.AddFault(gitlabtest.Fault{PathPattern: ".", Delay: 2 * time.Second})
			}
			commit := sha(fmt.Sprint("outage", i))
			var d *deploy
			if prev != nil && i%3 == 2 {
				d = w.push(env, commit, prev) // supersedes the deploy still running
				finals[prev.SHA] = "canceled"
			} else {
				d = w.push(env, commit)
			}
			q.notify(env)
			d.start()
			q.notify(env)
			time.Sleep(200 * time.Millisecond) // the deploy runs; GitLab is still down
			if i%3 == 1 {
				prev = d // left running: the next push supersedes it
				continue
			}
			if i == 5 {
				d.fail("build: exit status 2")
				finals[commit] = "failed"
			} else {
				d.succeed()
				finals[commit] = "success"
			}
			q.notify(env)
			prev = nil
		}
		last := w.push(env, sha("newest")).start().succeed()
		finals[last.SHA] = "success"
		q.notify(env)
		time.Sleep(100 * time.Millisecond)
		w.gl.ClearFaults()
		outage := time.Since(outageStart)
		during := w.calls()
		recovered := time.Now()
		q.idle(10 * time.Second)
		converged := time.Since(recovered)
		after := w.calls()
		failedCalls := 0
		for _, c := range during {
			if strings.Contains(c, "→") {
				failedCalls++
			}
		}
		t.Logf("outage %s: %d calls during it (%d failed or cut off), %d calls to catch up in %s",
			outage.Round(time.Millisecond), len(during), failedCalls, len(after), converged.Round(time.Millisecond))

		for commit, want := range finals {
			if got := w.statuses(commit); strings.Join(got, " ") != want {
				t.Errorf("statuses of %s: %v, want exactly one %s", commit[:8], got, want)
			}
		}
		seen := map[string]int{}
		for _, d := range w.gl.Deployments(w.pid) {
			seen[d.SHA]++
			if want := finals[d.SHA]; want != "" && d.Status != want {
				t.Errorf("deployment of %s is %s, want %s", d.SHA[:8], d.Status, want)
			}
		}
		for commit, n := range seen {
			if n > 1 {
				t.Errorf("%d deployments of %s", n, commit[:8])
			}
		}
		notes := w.notes(7)
		if len(notes) != 1 || !strings.Contains(notes[0].Body, "`"+last.SHA[:8]+"` is live") {
			t.Errorf("want one note showing %s live, got %d: %+v", last.SHA[:8], len(notes), notes)
		}
		if envs := w.gl.Environments(w.pid); len(envs) != 1 {
			t.Errorf("want one GitLab environment, got %+v", envs)
		}
	})
}

// TestRateLimitStorm: GitLab allows 8 calls a second. glenv waits for
// RateLimit-Reset after a 429 instead of hammering, and gets everything
// through.
func TestRateLimitStorm(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		w := newWorld(t, st, fast, func(d *feedback.Deps) { d.Timing.Debounce = -1 })
		const perSecond, envs = 8, 4
		var all []*store.Environment
		for i := 1; i <= envs; i++ {
			env, d := w.openMR(int64(i), fmt.Sprint("storm-", i), sha(fmt.Sprint("storm", i)))
			d.start().succeed()
			all = append(all, env)
		}
		w.gl.SetRateLimit(perSecond, time.Second)
		q := w.startQueue(4)
		start := time.Now()
		for _, env := range all {
			q.notify(env)
		}
		q.idle(20 * time.Second)
		took := time.Since(start)
		calls := w.gl.Calls()

		perWindow := map[int64][2]int{} // second → {answered, 429}
		first429 := map[int64]time.Time{}
		late := 0
		for _, c := range calls {
			sec := c.At.Unix()
			n := perWindow[sec]
			if c.Status == http.StatusTooManyRequests {
				n[1]++
				if _, ok := first429[sec]; !ok {
					first429[sec] = c.At
				}
			} else {
				n[0]++
			}
			perWindow[sec] = n
		}
		for _, c := range calls {
			if f, ok := first429[c.At.Unix()]; ok && c.At.Sub(f) > 100*time.Millisecond {
				late++ // sent in a window GitLab had already closed
			}
		}
		total429 := 0
		for sec, n := range perWindow {
			if n[0] > perSecond {
				t.Errorf("second %d: %d calls answered, over the limit of %d", sec, n[0], perSecond)
			}
			total429 += n[1]
		}
		t.Logf("%d calls (%d answered 429) in %s over %d windows; %d sent after a 429 in the same window",
			len(calls), total429, took.Round(time.Millisecond), len(perWindow), late)
		if late > 0 {
			t.Errorf("%d calls were sent before RateLimit-Reset after a 429", late)
		}
		if max429 := 4 * len(perWindow); total429 > max429 {
			t.Errorf("%d 429s: glenv hammered instead of waiting (at most %d expected)", total429, max429)
		}
		for i, env := range all {
			if n := w.notes(env.MRIID); len(n) != 1 {
				t.Errorf("%s: %d notes", env.Name, len(n))
			}
			if got := w.statuses(sha(fmt.Sprint("storm", i+1))); strings.Join(got, " ") != "success" {
				t.Errorf("%s: statuses %v", env.Name, got)
			}
		}
		if d := w.gl.Deployments(w.pid); len(d) != envs {
			t.Errorf("want %d deployments, got %d", envs, len(d))
		}
	})
}

// TestSweepCatchesALostNotification: a state change whose sync was folded
// into a sync that had already read the environment is caught by the sweep.
func TestSweepCatchesALostNotification(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		w := newWorld(t, st, fast, func(d *feedback.Deps) { d.Timing.Debounce = -1 })
		q := w.startQueue(2)
		env, d := w.branchEnv("feature", sha("a"))
		d.start()
		q.notify(env)
		q.idle(5 * time.Second)
		d.succeed() // no notification
		if _, err := q.client.Insert(w.ctx, feedback.SweepArgs{}, nil); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) && strings.Join(w.statuses(sha("a")), " ") != "success" {
			time.Sleep(20 * time.Millisecond)
		}
		if got := w.statuses(sha("a")); strings.Join(got, " ") != "success" {
			t.Fatalf("statuses %v: the sweep did not sync the environment", got)
		}
		q.idle(5 * time.Second)
		w.calls()
		if _, err := q.client.Insert(w.ctx, feedback.SweepArgs{}, nil); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
		q.idle(5 * time.Second)
		w.expectCalls("a second sweep with nothing new")
	})
}
