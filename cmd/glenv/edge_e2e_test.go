package main_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Hostile and unlucky requests sent to a real glenv: each is refused or
// contained, and glenv keeps serving.

func TestAPushMentioningNULIsAcceptedAndProcessedOnBothDatabases(t *testing.T) {
	for name, db := range backends(t) {
		t.Run(name, func(t *testing.T) {
			g, gl, secret := connected(t, db())
			p := pushPayload(t, gl.Project.ID, "main", sha("main-1"), sha("nul"))
			// json.Marshal writes the NUL as the escape \u0000, as GitLab does.
			p.set("commits", []any{map[string]any{"id": sha("nul"), "message": "strip \x00 from input", "title": "strip \x00"}})
			code, body := g.deliver("app", secret, "Push Hook", p, "")
			if code != http.StatusAccepted {
				t.Fatalf("push mentioning \\u0000: %d %s", code, body)
			}
			g.settle("app")
			var ds []struct {
				Status string `json:"status"`
				Result string `json:"result"`
			}
			g.apiGet("/api/v1/deliveries?limit=10&integration=app", &ds)
			for _, d := range ds {
				if d.Status == "failed" {
					t.Fatalf("delivery failed: %s\n%s", d.Result, g.tail())
				}
			}
			if e := g.envs("app")["main"]; e.HeadSHA != sha("nul") {
				t.Fatalf("main's head is %s, want %s", e.HeadSHA, sha("nul"))
			}
		})
	}
}

// holdWriteLock makes glenv's database hang for writes to deliveries until
// the returned func is called: an exclusive lock from another connection.
func holdWriteLock(t *testing.T, g *glenv) func() {
	t.Helper()
	driver, dsn, stmt := "pgx", g.dbURL, `LOCK TABLE deliveries IN ACCESS EXCLUSIVE MODE`
	if g.dbURL == "" {
		driver, dsn, stmt = "sqlite", "file:"+filepath.Join(g.dataDir, "glenv.db"), `INSERT INTO deliveries (integration_name, event, idempotency_key, event_uuid, webhook_uuid, headers, body, status, result, received_at, processed_at) SELECT integration_name, event, 'lock', '', '', '{}', '{}', 'processed', '', 0, 0 FROM deliveries LIMIT 0`
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	begin := "BEGIN"
	if driver == "sqlite" {
		begin = "BEGIN EXCLUSIVE"
	}
	if _, err := conn.ExecContext(ctx, begin); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, stmt); err != nil {
		t.Fatal(err)
	}
	done := false
	release := func() {
		if done {
			return
		}
		done = true
		conn.ExecContext(ctx, "ROLLBACK")
		conn.Close()
		db.Close()
	}
	t.Cleanup(release)
	return release
}

func TestAHungDatabaseIsAnswered503InTimeAndDoesNotHangTheShutdown(t *testing.T) {
	for name, db := range backends(t) {
		t.Run(name, func(t *testing.T) {
			g, gl, secret := connected(t, db())
			release := holdWriteLock(t, g)
			// GitLab waits 10 s for an answer; so does this client.
			client := &http.Client{Timeout: 10 * time.Second}
			code, body, err := postHookWith(client, g.URL+"/hooks/gitlab/app", secret, pushPayload(t, gl.Project.ID, "main", sha("main-1"), sha("hung")))
			if err != nil {
				t.Fatalf("no answer within GitLab's 10 s: %v\n%s", err, g.tail())
			}
			if code != http.StatusServiceUnavailable || !strings.Contains(body, "does not retry") {
				t.Fatalf("with a hung database: %d %s", code, body)
			}
			release()
			// glenv keeps serving once the database is back.
			if code, body := g.deliver("app", secret, "Push Hook", pushPayload(t, gl.Project.ID, "main", sha("main-1"), sha("after")), ""); code != http.StatusAccepted {
				t.Fatalf("after the database came back: %d %s", code, body)
			}
			// The shutdown is bounded with the database hung again.
			holdWriteLock(t, g)
			inflight := make(chan error, 1)
			go func() {
				_, _, err := postHookWith(client, g.URL+"/hooks/gitlab/app", secret, pushPayload(t, gl.Project.ID, "main", sha("main-1"), sha("drain")))
				inflight <- err
			}()
			// Whether or not the delivery reached the database yet, the
			// drain must end: its answer and the exit are both bounded.
			g.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-g.exited:
			case <-time.After(40 * time.Second):
				t.Fatalf("glenv did not stop within 40 s with a hung database:\n%s", g.tail())
			}
			select {
			case <-inflight:
			case <-time.After(15 * time.Second):
				t.Fatal("the in-flight delivery got no answer")
			}
		})
	}
}

// postHookWith posts a push delivery with client and returns the answer.
func postHookWith(client *http.Client, url, secret string, p payload) (int, string, error) {
	body, err := json.Marshal(p)
	if err != nil {
		return 0, "", err
	}
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Gitlab-Event", "Push Hook")
	req.Header.Set("X-Gitlab-Token", secret)
	req.Header.Set("Idempotency-Key", fmt.Sprintf("key-%d-%d", time.Now().UnixNano(), keySeq.Add(1)))
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}
