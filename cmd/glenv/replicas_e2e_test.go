package main_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/glenv/glenv/internal/gitlabtest"
	"github.com/glenv/glenv/internal/store/storetest"
)

// postgresOrFail returns a fresh PostgreSQL database for a test that needs
// one: without GLENV_TEST_DATABASE_URL it skips, or fails under CI.
func postgresOrFail(t *testing.T) string {
	if os.Getenv(storetest.EnvVar) == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set: several replicas need PostgreSQL", storetest.EnvVar)
		}
		t.Skipf("%s is not set: several replicas need PostgreSQL", storetest.EnvVar)
	}
	return storetest.FreshPostgres(t)
}

// TestThreeReplicasLoseNoDeliveryAndTakeOverAKilledOnesEnvironments runs
// three real glenv replicas on one PostgreSQL with the process runtime,
// spreads a burst of 2,000 deliveries over them and kills one with SIGKILL
// in the middle (the River leader, which also runs apps): every
// acknowledged delivery is applied exactly once, the killed replica's
// environments are deployed again on the others at the same SHA and serve
// through every replica, and each periodic job ran at most once per interval
// across replicas, the leader change included.
func TestThreeReplicasLoseNoDeliveryAndTakeOverAKilledOnesEnvironments(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the three-replica kill test")
	}
	dbURL := postgresOrFail(t)
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()

	gl := newGitLab(t)
	pid := gl.Project.ID
	static, _ := filepath.Abs("../../examples/static")
	shaMain := gl.Commit(t, pid, gitlabtest.Commit{Branch: "main", Dir: static})
	shaMR := gl.Commit(t, pid, gitlabtest.Commit{Branch: "feature-x", Dir: static, Files: map[string]string{"index.html": "<p>served by a replica</p>\n"}})

	keyFile := filepath.Join(t.TempDir(), "secret.key") // one key for every replica
	const interval = 5 * time.Second
	env := []string{"GLENV_RUNTIME=process", "GLENV_SECRET_KEY_FILE=" + keyFile,
		"GLENV_REPLICA_HEARTBEAT=300ms", "GLENV_REPLICA_DEAD_AFTER=3s",
		"GLENV_RECONCILE_INTERVAL=" + interval.String(), "GLENV_RETENTION_INTERVAL=" + interval.String(),
		"GLENV_JOB_RESCUE_AFTER=20s"}
	started := time.Now()
	replicas := []*glenv{startGlenv(t, dbURL, env...)}
	var res integrationJSON
	// Branches the burst creates do not exist in the double: reconcile
	// must not prune them while they are counted.
	replicas[0].mustJSON(&res, addArgs(gl, "--prune-branches=false")...)
	waitActive(t, replicas[0], db, "main", shaMain)
	for range 2 {
		replicas = append(replicas, startGlenv(t, dbURL, env...))
	}
	ids := map[string]int64{} // replica address → id
	pollUntil(t, 10*time.Second, "three replicas registered", func() bool {
		rows, err := db.QueryContext(ctx, `SELECT id, address FROM replicas`)
		if err != nil {
			return false
		}
		defer rows.Close()
		for rows.Next() {
			var id int64
			var addr string
			rows.Scan(&id, &addr)
			ids[addr] = id
		}
		return len(ids) == 3
	})

	// Three merge requests, opened through different replicas, spread over
	// them: every replica runs at least one environment.
	t0 := time.Now().Add(-time.Hour)
	for i := int64(1); i <= 3; i++ {
		gl.SetMergeRequest(pid, gitlabtest.MergeRequest{IID: i, Title: fmt.Sprint("MR ", i), SourceBranch: "feature-x", TargetBranch: "main", SHA: shaMR})
		if code, body := replicas[i-1].deliver("app", res.WebhookSecret, "Merge Request Hook", mrPayload(t, pid, "merge_request_open.json", i, shaMR, t0), ""); code != 202 {
			t.Fatalf("MR %d open: %d %s", i, code, body)
		}
	}
	for i := 1; i <= 3; i++ {
		waitActive(t, replicas[0], db, fmt.Sprint("mr-", i), shaMR)
	}
	owners := environmentOwners(t, db)
	t.Logf("owners before the kill: %v", owners)

	// The victim is the River leader (it enqueues the periodic jobs), so the
	// kill also tests that a new leader does not run them twice.
	var leader string
	pollUntil(t, 15*time.Second, "a River leader", func() bool {
		return db.QueryRowContext(ctx, `SELECT leader_id FROM river_leader`).Scan(&leader) == nil
	})
	victim := -1
	for i, g := range replicas {
		if fmt.Sprintf("glenv-replica-%d", ids[g.addr]) == leader {
			victim = i
		}
	}
	if victim < 0 {
		t.Fatalf("River leader %q is none of the replicas %v", leader, ids)
	}
	victimID := ids[replicas[victim].addr]
	var victimEnvs []string
	for name, owner := range owners {
		if owner == victimID {
			victimEnvs = append(victimEnvs, name)
		}
	}
	sort.Strings(victimEnvs)
	if len(victimEnvs) == 0 {
		t.Fatalf("the leader (replica %d) runs no environment: %v", victimID, owners)
	}
	var survivors []*glenv
	for i, g := range replicas {
		if i != victim {
			survivors = append(survivors, g)
		}
	}

	// Every survivor relays a request for every environment to its owner.
	for _, g := range survivors {
		for name := range owners {
			expectServes(t, g, name+"--app", "")
		}
	}

	// The burst: 2,000 branch creations spread over the replicas; the
	// leader is killed once half are acknowledged.
	const total, senders = 2000, 12
	bodies := make([]payload, total)
	for i := range bodies {
		bodies[i] = pushPayload(t, pid, fmt.Sprintf("burst-%04d", i), zeroSHA, sha(fmt.Sprint("b", i)))
	}
	var next, acked atomic.Int64
	ackedBranch := make([]bool, total)
	killed := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	for s := 0; s < senders; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= total {
					return
				}
				g := replicas[int(i)%len(replicas)]
				code, err := deliverQuiet(g, res.WebhookSecret, bodies[i], fmt.Sprintf("burst-key-%d", i))
				if err == nil && code == 202 {
					ackedBranch[i] = true
					if acked.Add(1) == total/2 {
						once.Do(func() { replicas[victim].cmd.Process.Signal(syscall.SIGKILL); close(killed) })
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
	case <-replicas[victim].exited:
	case <-time.After(30 * time.Second):
		t.Fatal("the killed replica did not exit within 30s of SIGKILL")
	}
	n := acked.Load()
	if n < total/2 || n == total {
		t.Fatalf("acked %d of %d: the kill did not land mid-burst", n, total)
	}
	killedAt := time.Now()

	// The killed replica's environments come back on the others, at the
	// SHA they had, and serve through every surviving replica. They are
	// active at that SHA before the takeover too (the row is unchanged
	// until a survivor finds the victim dead): wait for the new owner first.
	waitOwned(t, survivors[0], db, victimEnvs, victimID)
	for _, name := range victimEnvs {
		want := shaMR
		if name == "main" {
			want = shaMain
		}
		waitActive(t, survivors[0], db, name, want)
	}
	after := environmentOwners(t, db)
	for _, name := range victimEnvs {
		if after[name] == victimID || after[name] == 0 {
			t.Errorf("%s is still owned by %d after the kill", name, after[name])
		}
	}
	for _, g := range survivors {
		for name := range owners {
			expectServes(t, g, name+"--app", "")
		}
	}
	t.Logf("%v of replica %d back on %v %s after the kill", victimEnvs, victimID, after, time.Since(killedAt).Round(time.Millisecond))

	// Every acknowledged delivery applied exactly once.
	waitProcessed(t, survivors[0], dbURL)
	t.Logf("every delivery processed %s after the kill", time.Since(killedAt).Round(time.Millisecond))
	perDelivery := map[string]int{}
	rows, err := db.QueryContext(ctx, `SELECT environment_name, COUNT(*) FROM activities WHERE delivery_id <> 0 AND environment_name LIKE 'burst-%' GROUP BY environment_name`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name string
		var c int
		rows.Scan(&name, &c)
		perDelivery[name] = c
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

	// Periodic jobs: at most one per interval, across replicas and the
	// leader change (River buckets a periodic job by its scheduled time).
	// (The hook health check is left out: it runs at each leader's start,
	// since its result lives in that process's memory.)
	periodic := map[string]time.Duration{"reconcile": interval, "feedback_sweep": interval,
		"retention": interval, "repair_environments": time.Minute, "pause_idle_environments": time.Minute,
		"envapi_delete_scheduled": 10 * time.Minute}
	// A new leader is elected only once the killed one's leadership
	// expires, and it schedules the periodic jobs from then on: wait (with
	// a deadline) until each 5 s job has run after that, rather than
	// expecting it within a fixed time.
	var counted, perBucket map[string]int
	deadline := time.Now().Add(90 * time.Second)
	for {
		counted, perBucket = map[string]int{}, map[string]int{}
		rows, err = db.QueryContext(ctx, `SELECT kind, scheduled_at FROM river_job WHERE kind = ANY($1) AND args::text IN ('{}', '{"integration": ""}', '{"integration":""}')`,
			keys(periodic))
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var kind string
			var at time.Time
			if err := rows.Scan(&kind, &at); err != nil {
				t.Fatal(err)
			}
			counted[kind]++
			perBucket[fmt.Sprint(kind, " ", at.Truncate(periodic[kind]).UTC().Format(time.TimeOnly))]++
		}
		rows.Close()
		if (counted["reconcile"] > 0 && counted["feedback_sweep"] > 0 && counted["retention"] > 0) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond) // polling the database for the jobs' rows
	}
	for bucket, c := range perBucket {
		if c > 1 {
			t.Errorf("periodic job %s ran %d times in one interval", bucket, c)
		}
	}
	elapsed := time.Since(started)
	for _, kind := range []string{"reconcile", "feedback_sweep", "retention"} {
		if max := int(elapsed/interval) + 1; counted[kind] == 0 || counted[kind] > max {
			t.Errorf("periodic job %s ran %d times in %s (every %s: between 1 and %d)", kind, counted[kind], elapsed.Round(time.Second), interval, max)
		}
	}
	t.Logf("%d of %d deliveries acknowledged around the kill, each applied once; periodic runs in %s: %v",
		n, total, elapsed.Round(time.Second), counted)
}

// TestASecondServeOnTheSameSQLiteFileIsRefused: SQLite stays single-replica.
func TestASecondServeOnTheSameSQLiteFileIsRefused(t *testing.T) {
	g := startGlenv(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "serve", "--listen", freeAddr(t), "--data-dir", g.dataDir)
	cmd.Env = append(os.Environ(), "GLENV_RUNTIME=record")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("a second serve on the same SQLite file started:\n%s", out)
	}
	for _, want := range []string{"single-replica", "PostgreSQL"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the refusal does not say %q:\n%s", want, out)
		}
	}
	// The first one is untouched.
	if resp, err := http.Get(g.URL + "/readyz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("the first serve is not ready after the refused second: %v", err)
	}
}

// expectServes waits until host answers 200 through g (containing want).
func expectServes(t *testing.T, g *glenv, host, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, body, err := g.getEnv(host)
		if err == nil && code == 200 && strings.Contains(body, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s through %s: %d %v %.300q\n%s", host, g.addr, code, err, body, g.tail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitActive waits until environment name is active at sha; a deploy that
// fails ends the wait with its activity's result.
func waitActive(t *testing.T, g *glenv, db *sql.DB, name, sha string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var state, deployed string
		err := db.QueryRow(`SELECT state, deployed_sha FROM environments WHERE name = $1 AND deleted_at = 0`, name).Scan(&state, &deployed)
		if err == nil && state == "active" && deployed == sha {
			return
		}
		if state == "failed" || time.Now().After(deadline) {
			var result string
			db.QueryRow(`SELECT description || ': ' || result FROM activities WHERE environment_name = $1 ORDER BY id DESC LIMIT 1`, name).Scan(&result)
			t.Fatalf("environment %s is %q at %.8s, want active at %.8s; last activity: %s\n%s", name, state, deployed, sha, result, g.tail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitOwned waits until every environment of names is active on a replica
// other than dead (a survivor took it over and deployed it).
func waitOwned(t *testing.T, g *glenv, db *sql.DB, names []string, dead int64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		owners := environmentOwners(t, db) // active ones only
		moved := true
		for _, name := range names {
			if owners[name] == dead || owners[name] == 0 {
				moved = false
			}
		}
		if moved {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v not active on another replica than the killed %d after 60s: %v\n%s", names, dead, owners, g.tail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// environmentOwners maps live environments (not the burst's) to the replica that runs them.
func environmentOwners(t *testing.T, db *sql.DB) map[string]int64 {
	t.Helper()
	rows, err := db.Query(`SELECT name, owner_replica_id FROM environments WHERE deleted_at = 0 AND state = 'active' AND name NOT LIKE 'burst-%'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var name string
		var owner int64
		rows.Scan(&name, &owner)
		out[name] = owner
	}
	return out
}

// pollUntil polls cond (a database or HTTP read) until it holds.
func pollUntil(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func keys(m map[string]time.Duration) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
