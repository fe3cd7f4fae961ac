package main_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/glenv/glenv/internal/gitlabtest"
	"github.com/glenv/glenv/internal/store"
)

// TestKillNineLosesNoAcceptedDelivery sends a burst of distinct deliveries,
// kills glenv with SIGKILL in the middle, restarts it, and checks that every
// delivery that got a 2xx was processed exactly once: its environment exists
// and carries exactly one activity from that delivery.
func TestKillNineLosesNoAcceptedDelivery(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the 2,000-delivery kill test")
	}
	for name, db := range backends(t) {
		t.Run(name, func(t *testing.T) {
			dbURL := db()
			g, gl, secret := connected(t, dbURL)
			pid := gl.Project.ID
			const total, senders = 2000, 16
			var next, acked atomic.Int64
			ackedBranch := make([]bool, total)
			var wg sync.WaitGroup
			killed := make(chan struct{})
			var once sync.Once
			// Payloads are built here: a fixture that fails to load fails
			// the test on its own goroutine, never inside a sender.
			bodies := make([]payload, total)
			for i := range bodies {
				bodies[i] = pushPayload(t, pid, fmt.Sprintf("burst-%04d", i), zeroSHA, sha(fmt.Sprint("b", i)))
			}
			for s := 0; s < senders; s++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := next.Add(1) - 1
						if i >= total {
							return
						}
						code, err := deliverQuiet(g, secret, bodies[i], fmt.Sprintf("burst-key-%d", i))
						if err == nil && code == 202 {
							ackedBranch[i] = true
							if acked.Add(1) == total/2 {
								once.Do(func() { g.cmd.Process.Signal(syscall.SIGKILL); close(killed) })
							}
						}
					}
				}()
			}
			wg.Wait()
			select {
			case <-killed:
			default:
				t.Fatalf("only %d of %d deliveries were acknowledged, so the kill never landed", acked.Load(), total)
			}
			select {
			case <-g.exited:
			case <-time.After(30 * time.Second):
				t.Fatal("glenv did not exit within 30s of SIGKILL")
			}
			n := acked.Load()
			if n < total/2 || n == total {
				t.Fatalf("acked %d of %d: the kill did not land mid-burst", n, total)
			}
			// Restart on the same database; River rescues the jobs the kill interrupted.
			g.env = append(g.env, "GLENV_JOB_RESCUE_AFTER=2s")
			g.start()
			waitProcessed(t, g, dbURL)
			g.stop(syscall.SIGTERM)

			s, err := store.Open(context.Background(), dbURL, g.dataDir)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			perDelivery := map[string]int{}
			rows, err := s.Reader().QueryContext(context.Background(), `SELECT environment_name, COUNT(*) FROM activities WHERE delivery_id <> 0 GROUP BY environment_name`)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var env string
				var c int
				rows.Scan(&env, &c)
				perDelivery[env] = c
			}
			rows.Close()
			for i, ok := range ackedBranch {
				name := fmt.Sprintf("burst-%04d", i)
				if ok && perDelivery[name] != 1 {
					t.Errorf("%s was acknowledged but applied %d times", name, perDelivery[name])
				}
				if perDelivery[name] > 1 {
					t.Errorf("%s applied %d times", name, perDelivery[name])
				}
			}
			var envs int
			s.Reader().QueryRowContext(context.Background(), `SELECT COUNT(*) FROM environments WHERE name LIKE 'burst-%' AND deleted_at = 0`).Scan(&envs)
			if int64(envs) < n {
				t.Fatalf("%d environments for %d acknowledged deliveries", envs, n)
			}
			t.Logf("%s: %d of %d deliveries acknowledged before SIGKILL and after restart; %d environments, each applied once", name, n, total, envs)
		})
	}
}

// deliverQuiet is deliver without failing the test on connection errors (the server is being killed).
func deliverQuiet(g *glenv, secret string, p payload, key string) (int, error) {
	return postHook(g.URL+"/hooks/gitlab/app", secret, "Push Hook", p, key)
}

// waitProcessed waits until no stored delivery is still waiting to be processed.
func waitProcessed(t *testing.T, g *glenv, dbURL string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		var ds []struct {
			Status string `json:"status"`
		}
		g.apiGet("/api/v1/deliveries?limit=1000", &ds)
		waiting := 0
		for _, d := range ds {
			if d.Status == "accepted" {
				waiting++
			}
		}
		var m string
		g.apiGetText("/metrics", &m)
		if waiting == 0 && metricValue(m, `glenv_deliveries{status="accepted"}`) == 0 {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("deliveries still unprocessed after 90s\n%s", g.tail())
}

// Killed with SIGKILL during a real build, glenv comes back and finishes
// the job: the environment ends active on the new head (a restart used to
// leave it in deploying, its old version down), and nothing of the killed
// glenv (build, old app, their ports) is left behind.
func TestKillNineDuringABuildEndsActiveOnTheNewHead(t *testing.T) {
	for name, db := range backends(t) {
		t.Run(name, func(t *testing.T) {
			g, gl, secret := processWorld(t, db())
			pid := gl.Project.ID
			main := g.envs("app")["main"]
			sha2 := gl.Commit(t, pid, gitlabtest.Commit{Branch: "main", Files: map[string]string{".glenv.yml": slowBuild(30), "index.html": "<p>version 2</p>\n"}})
			if code, body := g.deliver("app", secret, "Push Hook", pushPayload(t, pid, "main", main.DeployedSHA, sha2), ""); code != 202 {
				t.Fatalf("push: %d %s", code, body)
			}
			g.waitBuilding(main.ID, sha2)
			if e := g.envs("app")["main"]; e.State != "deploying" {
				t.Fatalf("main is %s during its build, want deploying", e.State)
			}
			before := descendants(g.cmd.Process.Pid)
			if len(living(before)) == 0 {
				t.Fatal("no build or app process found under glenv: the test would prove nothing")
			}
			g.cmd.Process.Signal(syscall.SIGKILL)
			<-g.exited
			// A pasta daemon is no child of glenv and outlives a killed one
			// by design; the next start reaps it (runtime's reapPasta). One
			// still starting when before was read (the spare namespace,
			// made after the previous deploy settled) is among before.
			pastas, others := splitPastas(before)
			waitGone(t, g, "after SIGKILL", others)

			g.start()
			waitGone(t, g, "pasta daemons after the restart", pastas)
			g.waitEnvLong("app", "main", func(e envJSON, ok bool) bool { return ok && e.State == "active" && e.DeployedSHA == sha2 })
			deadline := time.Now().Add(15 * time.Second)
			for {
				code, body, _ := g.getEnv("main--app")
				if code == 200 && strings.Contains(body, "version 2") {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("main after the restart: %d %q\n%s", code, body, g.tail())
				}
				time.Sleep(50 * time.Millisecond)
			}
			g.settle("app")
			running := descendants(g.cmd.Process.Pid)
			g.stop(syscall.SIGTERM)
			waitGone(t, g, "after a clean stop", running)
		})
	}
}

// splitPastas parts pids into pasta daemons (their command line names a
// --pid file) and the rest.
func splitPastas(pids []int) (pastas, others []int) {
	for _, p := range pids {
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
		args := strings.Split(string(cmd), "\x00")
		if len(args) > 0 && strings.Contains(filepath.Base(args[0]), "pasta") && slices.Contains(args, "--pid") {
			pastas = append(pastas, p)
		} else {
			others = append(others, p)
		}
	}
	return pastas, others
}
