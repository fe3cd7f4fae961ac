package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/glenv/glenv/internal/config"
	"github.com/glenv/glenv/internal/gitlabtest"
	"github.com/glenv/glenv/internal/kube"
	"github.com/glenv/glenv/internal/kube/kubetest"
	"github.com/glenv/glenv/internal/server"
	"github.com/glenv/glenv/internal/store"

	"github.com/glenv/glenv/bench/internal/benchkit"
)

const admin = "glenv_bench_admin_token_0123456789"

// throughGlenv starts a real glenv on the world's cluster, connects the
// GitLab double's project (its main branch deploys first), then posts n
// merge request open webhooks from senders at once and waits until every
// merge request's deploy finished.
func throughGlenv(ctx context.Context, w *world, calls *counter, n, workers, senders int, db string, traceAll bool) burst {
	dir := tb.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	tb.Must(err)
	listen := l.Addr().String()
	l.Close()
	cfg := config.Config{Listen: listen, DataDir: dir, EnvDomain: "preview.test", AdminToken: admin,
		// Reconcile and feedback health are not what is measured: the
		// reconcile would only find what the events said.
		ReconcileInterval: time.Hour, JobRescueAfter: 6 * time.Minute, LogLevel: "warn", LogFormat: "text",
		Runtime: "kubernetes", Kubeconfig: w.cluster.Kubeconfig, KubernetesIngressClass: "nginx", KubernetesFetchImage: "busybox:1.37",
		Workers: workers}
	if db == "postgres" {
		var drop func()
		cfg.DatabaseURL, drop = freshPostgres()
		defer drop()
	}
	tb.Must(cfg.Validate())
	gctx, stop := context.WithCancel(ctx)
	logOut, err := os.Create(filepath.Join(w.dir, "glenv.log"))
	tb.Must(err)
	defer logOut.Close()
	srv, err := server.NewWith(gctx, cfg, slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: slog.LevelWarn})),
		server.Options{KubeTransport: calls.wrap})
	tb.Must(err)
	tb.Must(srv.Listen())
	done := make(chan error, 1)
	go func() { done <- srv.Run(gctx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			fmt.Fprintln(os.Stderr, "glenv stopped:", err)
		}
	}()
	st, err := store.Open(ctx, cfg.DatabaseURL, dir)
	tb.Must(err)
	defer st.Close()

	url := "http://" + listen
	secret := addIntegration(url, w.gl)
	// main's environment deploys first: the merge requests' parent.
	waitDeploys(ctx, st, 1, "main")

	for i := range n {
		w.gl.SetMergeRequest(w.gl.Project.ID, gitlabtest.MergeRequest{IID: int64(i + 1), Title: fmt.Sprintf("MR %d", i+1),
			SourceBranch: "feature", TargetBranch: "main", SHA: w.sha})
	}
	bodies := make([][]byte, n)
	for i := range n {
		bodies[i] = mrOpen(w.gl.Project.ID, int64(i+1), w.sha)
	}
	trace, err := kubetest.StartTrace(ctx, w.cluster.Client, "glenv-mr-", traceAll)
	tb.Must(err)
	defer trace.Stop()
	b := burst{trace: trace, glenv: map[string]map[string]time.Time{}, before: []string{"acknowledged", "deploy started"}}
	calls.take()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: senders}}
	var mu sync.Mutex
	acked := map[string]time.Time{}
	next := make(chan int)
	var wg sync.WaitGroup
	b.first = time.Now()
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				req, _ := http.NewRequest(http.MethodPost, url+"/hooks/gitlab/app", bytes.NewReader(bodies[i]))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-Gitlab-Event", "Merge Request Hook")
				req.Header.Set("X-Gitlab-Token", secret)
				req.Header.Set("Idempotency-Key", fmt.Sprintf("burst-%d", i))
				resp, err := client.Do(req)
				tb.Must(err)
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					tb.Fatalf("MR %d open: answered %d, want 202", i+1, resp.StatusCode)
				}
				mu.Lock()
				at := time.Now()
				acked[kube.Namespace(fmt.Sprintf("mr-%d--app", i+1))] = at
				if at.After(b.last) {
					b.last = at
				}
				mu.Unlock()
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, a := range waitDeploys(ctx, st, n, "") {
		ns := kube.Namespace(fmt.Sprintf("%s--app", a.EnvironmentName))
		b.glenv[ns] = map[string]time.Time{"acknowledged": acked[ns], "deploy started": a.StartedAt, "noticed": a.CompletedAt}
	}
	b.calls = calls.take()
	return b
}

// addIntegration connects the double's project as integration "app" and
// returns its webhook secret.
func addIntegration(url string, gl *benchkit.GitLab) string {
	body, _ := json.Marshal(map[string]any{"type": "gitlab", "name": "app", "token": gl.Token, "base_url": gl.URL,
		"gitlab_project": gl.Project.PathWithNamespace})
	req, _ := http.NewRequest(http.MethodPost, url+"/api/v1/integrations", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+admin)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	tb.Must(err)
	defer resp.Body.Close()
	var res struct {
		WebhookSecret string `json:"webhook_secret"`
	}
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(raw, &res) != nil {
		tb.Fatalf("integration:add answered %d: %s", resp.StatusCode, raw)
	}
	return res.WebhookSecret
}

// waitDeploys waits until n deploys (of env, or of merge requests when
// env is "") ended, and returns them; a failed one ends the program. It
// asks the database twice a second: when each ended is read from the
// activities, not from when this loop noticed.
func waitDeploys(ctx context.Context, st *store.Store, n int, env string) []store.Activity {
	deadline := time.Now().Add(15 * time.Minute)
	for {
		acts, err := store.ListActivities(ctx, st.Reader(), store.ActivityFilter{Integration: "app", Kind: store.ActivityDeploy, Limit: 4 * n})
		tb.Must(err)
		var ended []store.Activity
		for _, a := range acts {
			if env != "" && a.EnvironmentName != env || env == "" && a.EnvironmentName == "main" {
				continue
			}
			switch a.State {
			case store.ActivityComplete:
				ended = append(ended, a)
			case store.ActivityFailed, store.ActivityCancelled:
				tb.Fatalf("deploy of %s %s: %s", a.EnvironmentName, a.State, a.Result)
			}
		}
		if len(ended) >= n {
			return ended
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%d of %d deploys ended within 15m", len(ended), n)
		}
		select {
		case <-ctx.Done():
			tb.Must(ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// mrOpen is GitLab's merge request open payload (the webhook tests' copy)
// for merge request iid of the project, at sha, from feature into main.
func mrOpen(projectID, iid int64, sha string) []byte {
	raw, err := os.ReadFile(filepath.Join(benchkit.RepoRoot(), "internal", "webhook", "testdata", "webhooks", "merge_request_open.json"))
	tb.Must(err)
	var p map[string]any
	tb.Must(json.Unmarshal(raw, &p))
	delete(p, "changes")
	proj := p["project"].(map[string]any)
	proj["id"], proj["default_branch"] = projectID, "main"
	oa := p["object_attributes"].(map[string]any)
	oa["iid"], oa["title"], oa["source_branch"], oa["target_branch"] = iid, fmt.Sprintf("MR %d", iid), "feature", "main"
	oa["source_project_id"], oa["target_project_id"] = projectID, projectID
	oa["last_commit"].(map[string]any)["id"] = sha
	oa["draft"], oa["work_in_progress"] = false, false
	oa["updated_at"] = time.Now().UTC().Format("2006-01-02 15:04:05 UTC")
	b, err := json.Marshal(p)
	tb.Must(err)
	return b
}
