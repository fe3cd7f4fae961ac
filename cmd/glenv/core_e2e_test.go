package main_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/glenv/glenv/internal/gitlabtest"
)

// slowBuild is a .glenv.yml whose build prints a line every 0.1s for steps
// steps: long enough to act during it, and talkative, so the deploy keeps
// needing the database writer for its log while it runs.
func slowBuild(steps int) string {
	return fmt.Sprintf("build:\n  - for i in $(seq 1 %d); do echo \"building step $i\"; sleep 0.1; done\n"+
		"run: python3 -m http.server $PORT --bind 127.0.0.1\nhealth: /\n", steps)
}

type activityJSON struct {
	ID     int64  `json:"id"`
	Kind   string `json:"kind"`
	State  string `json:"state"`
	SHA    string `json:"sha"`
	Result string `json:"result"`
}

// deployActivity is the newest deploy activity of environment id at sha.
func (g *glenv) deployActivity(envID int64, sha string) (activityJSON, bool) {
	var acts []activityJSON
	g.apiGet(fmt.Sprintf("/api/v1/activities?kind=deploy&environment_id=%d", envID), &acts)
	for _, a := range acts {
		if a.SHA == sha {
			return a, true
		}
	}
	return activityJSON{}, false
}

// waitBuilding waits until the deploy of sha on environment id is in its
// build (its log shows a build step).
func (g *glenv) waitBuilding(envID int64, sha string) {
	g.t.Helper()
	waitFor(g.t, g, "the build of "+sha[:8]+" to be running", func() bool {
		a, ok := g.deployActivity(envID, sha)
		if !ok {
			return false
		}
		return strings.Contains(g.activityLog(a.ID), "building step")
	})
}

func (g *glenv) activityLog(id int64) string {
	g.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/api/v1/activities/%d/log", g.URL, id), nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return b.String()
}

// processWorld is glenv with the process runtime and the double's project
// connected, main active and serving examples/static.
func processWorld(t *testing.T, dbURL string, extraEnv ...string) (*glenv, *gitlabWorld, string) {
	t.Helper()
	gl := newGitLab(t)
	static, _ := filepath.Abs("../../examples/static")
	shaMain := gl.Commit(t, gl.Project.ID, gitlabtest.Commit{Branch: "main", Dir: static})
	g := startGlenv(t, dbURL, append([]string{"GLENV_RUNTIME=process"}, extraEnv...)...)
	var res integrationJSON
	g.mustJSON(&res, addArgs(gl)...)
	g.waitEnv("app", "main", func(e envJSON, ok bool) bool { return ok && e.State == "active" && e.DeployedSHA == shaMain })
	return g, gl, res.WebhookSecret
}

// descendants lists the processes below pid (its children, theirs, …).
func descendants(pid int) []int {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, ok := procStat(p); ok {
			children[st.ppid] = append(children[st.ppid], p)
		}
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

type stat struct {
	ppid  int
	state byte
}

func procStat(pid int) (stat, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return stat{}, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+4 > len(s) {
		return stat{}, false
	}
	fields := strings.Fields(s[i+2:])
	if len(fields) < 2 {
		return stat{}, false
	}
	ppid, _ := strconv.Atoi(fields[1])
	return stat{ppid: ppid, state: fields[0][0]}, true
}

// living are the processes among pids still running (zombies are gone: they
// hold no port and run nothing).
func living(pids []int) []string {
	var out []string
	for _, p := range pids {
		if st, ok := procStat(p); ok && st.state != 'Z' {
			cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
			out = append(out, fmt.Sprintf("%d %s", p, strings.ReplaceAll(string(cmd), "\x00", " ")))
		}
	}
	return out
}

// waitGone waits until none of pids runs any more.
func waitGone(t *testing.T, g *glenv, what string, pids []int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		left := living(pids)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: processes left behind:\n%s\n%s", what, strings.Join(left, "\n"), g.tail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The deadlock: environment:sync --data during a deploy used to reset the
// data (waiting for the environment's lock, held by the deploy) inside a
// write transaction, while the deploy waited for SQLite's one writer to
// append its log: every write stalled, webhooks included, until the CLI gave
// up after a minute. Now the request only enqueues; the deploy job resets.
func TestSyncDataDuringADeployNeitherStallsNorFails(t *testing.T) {
	for name, db := range backends(t) {
		t.Run(name, func(t *testing.T) {
			g, gl, secret := processWorld(t, db())
			pid := gl.Project.ID
			static, _ := filepath.Abs("../../examples/static")
			sha1 := gl.Commit(t, pid, gitlabtest.Commit{Branch: "feature", Dir: static,
				Files: map[string]string{".glenv.yml": slowBuild(5), "index.html": "<p>feature 1</p>\n"}})
			if code, body := g.deliver("app", secret, "Push Hook", pushPayload(t, pid, "feature", zeroSHA, sha1), ""); code != 202 {
				t.Fatalf("branch created: %d %s", code, body)
			}
			g.waitEnv("app", "feature", func(e envJSON, ok bool) bool { return ok && e.State == "inactive" })
			g.mustRun("environment:activate", "feature", "-i", "app")
			feature := g.waitEnv("app", "feature", func(e envJSON, ok bool) bool { return ok && e.State == "active" && e.DeployedSHA == sha1 })

			// A push whose build takes a while (and logs all along).
			sha2 := gl.Commit(t, pid, gitlabtest.Commit{Branch: "feature", Files: map[string]string{".glenv.yml": slowBuild(40), "index.html": "<p>feature 2</p>\n"}})
			if code, body := g.deliver("app", secret, "Push Hook", pushPayload(t, pid, "feature", sha1, sha2), ""); code != 202 {
				t.Fatalf("push: %d %s", code, body)
			}
			g.waitBuilding(feature.ID, sha2)

			type result struct {
				stderr string
				code   int
			}
			synced := make(chan result, 1)
			began := time.Now()
			go func() {
				_, stderr, code := g.run("", "environment:sync", "feature", "-i", "app", "--data")
				synced <- result{stderr, code}
			}()
			// Webhooks are acknowledged meanwhile: nothing holds the writer.
			code, err := postHook(g.URL+"/hooks/gitlab/app", secret, "Push Hook", pushPayload(t, pid, "other", zeroSHA, sha("other-1")), "")
			if err != nil || code != 202 {
				t.Fatalf("a webhook during the sync: %d %v", code, err)
			}
			select {
			case r := <-synced:
				if r.code != 0 {
					t.Fatalf("environment:sync --data during a deploy: exit %d %s\n%s", r.code, r.stderr, g.tail())
				}
				t.Logf("environment:sync --data answered in %s during a deploy", time.Since(began).Round(time.Millisecond))
			case <-time.After(30 * time.Second):
				t.Fatalf("environment:sync --data during a deploy did not return in 30s (the old deadlock)\n%s", g.tail())
			}
			e := g.waitEnvLong("app", "feature", func(e envJSON, ok bool) bool { return ok && e.State == "active" && e.DeployedSHA == sha2 })
			if code, body, _ := g.getEnv("feature--app"); code != 200 || !strings.Contains(body, "feature 2") {
				t.Fatalf("feature after the sync: %d %q", code, body)
			}
			a, _ := g.deployActivity(e.ID, sha2)
			if a.State != "complete" {
				t.Fatalf("the newest deploy of %s: %+v", sha2[:8], a)
			}
		})
	}
}

// waitEnvLong is waitEnv for deploys that build for several seconds.
func (g *glenv) waitEnvLong(integration, name string, cond func(e envJSON, ok bool) bool) envJSON {
	g.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		e, ok := g.envs(integration)[name]
		if cond(e, ok) {
			return e
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("environment %s/%s never reached the expected state in 60s; last: %+v (exists %v)\n%s", integration, name, e, ok, g.tail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A deploy that outlives its job (--job-rescue-after) used to record its
// result on the job's dead context: the environment stayed in deploying,
// and the retry called itself superseded. Now it fails saying why, the old
// version keeps serving, and the next push deploys.
func TestADeployThatOutlivesItsJobFailsAndSaysWhy(t *testing.T) {
	for name, db := range backends(t) {
		t.Run(name, func(t *testing.T) {
			g, gl, secret := processWorld(t, db(), "GLENV_JOB_RESCUE_AFTER=8s")
			pid := gl.Project.ID
			main := g.envs("app")["main"]
			slow := gl.Commit(t, pid, gitlabtest.Commit{Branch: "main", Files: map[string]string{".glenv.yml": slowBuild(150), "index.html": "<p>slow</p>\n"}})
			if code, body := g.deliver("app", secret, "Push Hook", pushPayload(t, pid, "main", main.DeployedSHA, slow), ""); code != 202 {
				t.Fatalf("push: %d %s", code, body)
			}
			e := g.waitEnvLong("app", "main", func(e envJSON, ok bool) bool { return ok && e.State == "failed" })
			if a, _ := g.deployActivity(e.ID, slow); a.State != "failed" || !strings.Contains(a.Result, "timed out") || !strings.Contains(a.Result, "--job-rescue-after") {
				t.Fatalf("the slow deploy's activity: %+v", a)
			}
			if code, body, _ := g.getEnv("main--app"); code != 200 || strings.Contains(body, "slow") {
				t.Fatalf("main during the failed deploy: %d %q, want the old version still serving", code, body)
			}
			fast := gl.Commit(t, pid, gitlabtest.Commit{Branch: "main", Files: map[string]string{".glenv.yml": slowBuild(1), "index.html": "<p>fast</p>\n"}})
			if code, body := g.deliver("app", secret, "Push Hook", pushPayload(t, pid, "main", slow, fast), ""); code != 202 {
				t.Fatalf("push: %d %s", code, body)
			}
			g.waitEnvLong("app", "main", func(e envJSON, ok bool) bool { return ok && e.State == "active" && e.DeployedSHA == fast })
		})
	}
}
