// Command replicas measures webhook acknowledgements across three glenv
// replicas against one, on one PostgreSQL (issue 16: goal ≥ 2×). Each round
// starts real `glenv serve` processes (built once from ./cmd/glenv, --runtime
// record, a fresh database per round) and sends the same burst of distinct
// 8 KB push deliveries from c concurrent senders: to the one replica, then
// spread round-robin over the three. It prints min, median and max of the
// rounds, measured in the same run, and the machine's CPU count, which
// bounds what extra processes can add.
//
//	GLENV_TEST_DATABASE_URL=postgres://… go run ./bench/replicas [-n 6000] [-c 48] [-rounds 3]
package main

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/glenv/glenv/bench/internal/benchkit"
	"github.com/glenv/glenv/internal/gitlabtest"
)

const admin = "glenv_bench_admin_token_0123456789"

func main() {
	n := flag.Int("n", 6000, "deliveries per measurement")
	c := flag.Int("c", 48, "concurrent senders")
	rounds := flag.Int("rounds", 3, "rounds of each measurement")
	flag.Parse()
	base := os.Getenv("GLENV_TEST_DATABASE_URL")
	if base == "" {
		fmt.Fprintln(os.Stderr, "bench/replicas: set GLENV_TEST_DATABASE_URL to a PostgreSQL server (several replicas need PostgreSQL)")
		os.Exit(2)
	}
	dir, err := os.MkdirTemp("", "glenv-bench-replicas")
	must(err)
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "glenv")
	out, err := exec.Command("go", "build", "-o", bin, filepath.Join(benchkit.RepoRoot(), "cmd", "glenv")).CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build glenv: %v\n%s", err, out)
		os.Exit(1)
	}
	body := payload(8 << 10)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxIdleConns: 1024}}

	fmt.Printf("webhook acks across replicas, PostgreSQL: %d deliveries of %d bytes, %d senders, %d rounds, %d CPUs\n\n",
		*n, len(body), *c, *rounds, runtime.NumCPU())
	results := map[int][]float64{}
	for r := 0; r < *rounds; r++ {
		for _, k := range []int{1, 3} { // alternated, so drift hits both alike
			cl := startCluster(bin, dir, base, k)
			rps, errs := load(client, cl.urls, cl.secret, body, *n, *c)
			cl.stop()
			if errs > 0 {
				fmt.Printf("round %d, %d replica(s): %d deliveries not answered 202\n", r+1, k, errs)
			}
			results[k] = append(results[k], rps)
		}
	}
	fmt.Printf("%-12s %10s %10s %10s\n", "replicas", "min req/s", "median", "max")
	for _, k := range []int{1, 3} {
		s := results[k]
		sort.Float64s(s)
		fmt.Printf("%-12d %10.0f %10.0f %10.0f\n", k, s[0], s[len(s)/2], s[len(s)-1])
	}
	ratio := median(results[3]) / median(results[1])
	verdict := "met"
	if ratio < 2 {
		verdict = "NOT met"
	}
	fmt.Printf("\n3 replicas vs 1 (medians): %.2fx — goal ≥ 2x %s\n", ratio, verdict)
	fmt.Println("Every acknowledgement is a committed PostgreSQL transaction; replicas add CPU for HTTP, JSON and the group commit,")
	fmt.Println("so on a machine with few CPUs shared by the senders, the replicas and PostgreSQL the gain is bounded by those CPUs.")
}

type cluster struct {
	urls   []string
	secret string
	procs  []*exec.Cmd
	gl     *gitlabtest.Server
	drop   func() // the round's database
}

// startCluster starts k replicas on a fresh database and connects integration "app".
func startCluster(bin, dir, base string, k int) *cluster {
	gl := gitlabtest.NewServer()
	u := gl.AddUser(gitlabtest.User{Username: "bench"})
	p := gl.AddProject(gitlabtest.Project{ID: 1, PathWithNamespace: "bench/app", DefaultBranch: "main", Members: map[int64]int{u.ID: 40}})
	gl.SetBranch(p.ID, "main", strings.Repeat("a", 40))
	tok := gl.AddToken(gitlabtest.Token{UserID: u.ID, Scopes: []string{"api"}})
	dbURL, drop := freshPostgres(base)
	key := filepath.Join(dir, fmt.Sprintf("secret-%d.key", time.Now().UnixNano()))
	cl := &cluster{gl: gl, drop: drop}
	for i := 0; i < k; i++ {
		addr := freeAddr()
		data, err := os.MkdirTemp(dir, "replica")
		must(err)
		cmd := exec.Command(bin, "serve", "--listen", addr, "--data-dir", data, "--database-url", dbURL)
		cmd.Env = append(os.Environ(), "GLENV_ADMIN_TOKEN="+admin, "GLENV_RUNTIME=record", "GLENV_LOG_LEVEL=error",
			"GLENV_SECRET_KEY_FILE="+key, "GLENV_RECONCILE_INTERVAL=1h")
		cmd.Stderr = os.Stderr
		must(cmd.Start())
		cl.procs = append(cl.procs, cmd)
		cl.urls = append(cl.urls, "http://"+addr)
		waitReady("http://" + addr)
	}
	var res struct {
		WebhookSecret string `json:"webhook_secret"`
	}
	b, _ := json.Marshal(map[string]any{"type": "gitlab", "token": tok, "base_url": gl.URL, "gitlab_project": "bench/app", "name": "app"})
	req, _ := http.NewRequest(http.MethodPost, cl.urls[0]+"/api/v1/integrations", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err := http.DefaultClient.Do(req)
	must(err)
	must(json.NewDecoder(resp.Body).Decode(&res))
	resp.Body.Close()
	if resp.StatusCode != 201 {
		panic(fmt.Sprintf("integration:add answered %d", resp.StatusCode))
	}
	cl.secret = res.WebhookSecret
	return cl
}

func (cl *cluster) stop() {
	for _, p := range cl.procs {
		p.Process.Signal(syscall.SIGTERM)
	}
	for _, p := range cl.procs {
		p.Wait()
	}
	cl.gl.Close()
	cl.drop()
}

// load sends n distinct deliveries from c goroutines, spread round-robin
// over targets, and returns acknowledgements per second.
func load(client *http.Client, targets []string, secret string, body []byte, n, c int) (float64, int64) {
	var next, errs atomic.Int64
	var wg sync.WaitGroup
	stamp := time.Now().UnixNano()
	start := time.Now()
	for w := 0; w < c; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				b := bytes.Replace(body, []byte("refs/heads/ms-viewport"), []byte(fmt.Sprintf("refs/heads/b-%d", i)), 1)
				req, _ := http.NewRequest(http.MethodPost, targets[i%len(targets)]+"/hooks/gitlab/app", bytes.NewReader(b))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-Gitlab-Event", "Push Hook")
				req.Header.Set("X-Gitlab-Token", secret)
				req.Header.Set("Idempotency-Key", fmt.Sprintf("bench-%d-%d", stamp, i))
				resp, err := client.Do(req)
				if err != nil {
					errs.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					errs.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return float64(n) / time.Since(start).Seconds(), errs.Load()
}

func median(s []float64) float64 {
	c := append([]float64(nil), s...)
	sort.Float64s(c)
	return c[len(c)/2]
}

func waitReady(u string) {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(u + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	panic(u + " not ready after 60s")
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	defer l.Close()
	return l.Addr().String()
}

// payload is GitLab's push payload for a created branch, padded with commits to size.
func payload(size int) []byte {
	b, err := benchkit.PushPayload(size)
	must(err)
	return b
}

// freshPostgres creates an empty database and returns its URL and how to drop it.
func freshPostgres(base string) (string, func()) {
	adm, err := sql.Open("pgx", base)
	must(err)
	name := fmt.Sprintf("glenv_bench_%d", time.Now().UnixNano())
	_, err = adm.Exec("CREATE DATABASE " + name)
	must(err)
	u, err := url.Parse(base)
	must(err)
	u.Path = "/" + name
	return u.String(), func() {
		adm.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
		adm.Close()
	}
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}
