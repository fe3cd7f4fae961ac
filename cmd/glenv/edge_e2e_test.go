package main_test

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
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
		driver, dsn, stmt = "sqlite", "file:"+filepath.Join(g.dataDir, "glenv.db")+"?_pragma=busy_timeout(10000)", `INSERT INTO deliveries (integration_name, event, idempotency_key, event_uuid, webhook_uuid, headers, body, status, result, received_at, processed_at) SELECT integration_name, event, 'lock', '', '', '{}', '{}', 'processed', '', 0, 0 FROM deliveries LIMIT 0`
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
			start := time.Now()
			code, body, err := postHookWith(client, g.URL+"/hooks/gitlab/app", secret, pushPayload(t, gl.Project.ID, "main", sha("main-1"), sha("hung")))
			if err != nil {
				t.Fatalf("no answer within GitLab's 10 s: %v\n%s", err, g.tail())
			}
			if code != http.StatusServiceUnavailable || !strings.Contains(body, "does not retry") {
				t.Fatalf("with a hung database: %d %s", code, body)
			}
			t.Logf("hung database: answered %d after %v", code, time.Since(start).Round(time.Millisecond))
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
			stopping := time.Now()
			select {
			case <-g.exited:
				t.Logf("hung database: glenv stopped %v after SIGTERM", time.Since(stopping).Round(time.Millisecond))
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

// apiDo sends one /api/v1 request with token and returns the status and body.
func (g *glenv) apiDo(token, method, path, body string) (int, string) {
	g.t.Helper()
	req, _ := http.NewRequest(method, g.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// headerRecorder is a listener that keeps every request's headers.
type headerRecorder struct {
	*httptest.Server
	mu  sync.Mutex
	got []http.Header
}

func newHeaderRecorder(t *testing.T) *headerRecorder {
	h := &headerRecorder{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.got = append(h.got, r.Header.Clone())
		h.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"message":"401 Unauthorized"}`)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *headerRecorder) requests() []http.Header {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]http.Header(nil), h.got...)
}

func TestNoTokenButAnAdminsChangesIntegrationsAndTheStoredTokenNeverLeaves(t *testing.T) {
	g, gl, _ := connected(t, "")
	var tok struct {
		Token string `json:"token"`
	}
	g.mustJSON(&tok, "token:create", "--name", "viewer")
	listener := newHeaderRecorder(t)
	patch := `{"base_url": "` + listener.URL + `", "dry_run": true}`
	for _, c := range []struct{ method, path, body string }{
		{http.MethodPatch, "/api/v1/integrations/app", patch},
		{http.MethodPatch, "/api/v1/integrations/app", `{"base_url": "` + listener.URL + `"}`},
		{http.MethodPost, "/api/v1/integrations/app/validate", ``},
		{http.MethodDelete, "/api/v1/integrations/app", ``},
		{http.MethodPost, "/api/v1/integrations", `{"type":"gitlab","token":"x","base_url":"` + listener.URL + `","gitlab_project":"group/app","name":"other"}`},
	} {
		if code, body := g.apiDo(tok.Token, c.method, c.path, c.body); code != http.StatusForbidden || !strings.Contains(body, "admin") {
			t.Fatalf("member %s %s: %d %s, want 403", c.method, c.path, code, body)
		}
	}
	// An admin must give the token again to move the integration.
	if code, body := g.apiDo(adminToken, http.MethodPatch, "/api/v1/integrations/app", patch); code != http.StatusBadRequest || !strings.Contains(body, `"token"`) {
		t.Fatalf("admin moved base_url without a token: %d %s", code, body)
	}
	if n := len(listener.requests()); n != 0 {
		t.Fatalf("the listener at the new base_url got %d requests", n)
	}
	// With one, that token and only that one goes to the new URL.
	g.apiDo(adminToken, http.MethodPatch, "/api/v1/integrations/app", `{"base_url": "`+listener.URL+`", "token": "glpat-for-the-new-url", "dry_run": true}`)
	for _, h := range listener.requests() {
		for k, vs := range h {
			for _, v := range vs {
				if strings.Contains(v, gl.Token) {
					t.Fatalf("the listener received the stored token in %s", k)
				}
			}
		}
	}
	var res integrationJSON
	g.mustJSON(&res, "integration:get", "app")
	if res.Integration.HookID == 0 {
		t.Fatal("the integration was changed or lost")
	}
}

// slowRequest opens a connection, sends head (headers announcing a body)
// and nothing more, and returns the status line glenv answers with, read
// within wait.
func slowRequest(t *testing.T, addr, head string, wait time.Duration) (string, error) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(wait))
	if _, err := io.WriteString(c, head); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

func TestSlowUnauthenticatedBodiesHoldNothing(t *testing.T) {
	g, _, secret := connected(t, "")
	// Clients announce a body on /api/v4 and never send it. One whose
	// headers carry a token is refused at once (401), and so is one whose
	// body no parser takes (Grape's 415) or that is larger than a body
	// read before the caller is known may be; one whose small form or JSON
	// body may carry the token (GitLab takes job_token and private_token
	// there) is refused when the few seconds such a body has are over
	// (envapi's authBodyWithin), not held for the 30 s of a known caller.
	const post = "POST /api/v4/projects/1/environments HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n"
	const small = "POST /api/v4/projects/1/environments HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n"
	for _, c := range []struct {
		name    string
		head    string
		clients int
		within  time.Duration
		status  string
	}{
		{"a token in a header", post + "PRIVATE-TOKEN: glenv_forged\r\nContent-Type: application/json\r\n\r\n{", 20, 2 * time.Second, " 401 "},
		{"a body without parameters", post + "Content-Type: text/plain\r\n\r\n{", 20, 2 * time.Second, " 415 "},
		{"a JSON body too large to be read anonymously", post + "Content-Type: application/json\r\n\r\n{", 100, 2 * time.Second, " 401 "},
		{"a JSON body that may hold the token", small + "Content-Type: application/json\r\n\r\n{", 100, 5 * time.Second, " 401 "},
	} {
		var wg sync.WaitGroup
		errs := make(chan string, c.clients)
		for i := 0; i < c.clients; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				line, err := slowRequest(t, g.addr, c.head, c.within)
				if err != nil || !strings.Contains(line, c.status) {
					errs <- fmt.Sprintf("%q %v", line, err)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Fatalf("%s: a slow unauthenticated /api/v4 request was not refused within %s: %s", c.name, c.within, e)
		}
	}
	// A webhook with the right token but a body that never comes is cut
	// off within GitLab's 10 s, not held.
	head := "POST /hooks/gitlab/app HTTP/1.1\r\nHost: x\r\nX-Gitlab-Token: " + secret + "\r\nX-Gitlab-Event: Push Hook\r\nContent-Length: 5000\r\n\r\n{"
	if line, err := slowRequest(t, g.addr, head, 10*time.Second); err != nil || !strings.Contains(line, " 400 ") {
		t.Fatalf("a webhook body that never arrives: %q %v, want 400 before 10 s", line, err)
	}
	// glenv still serves.
	var m string
	g.apiGetText("/healthz", &m)
	if strings.TrimSpace(m) != "ok" {
		t.Fatalf("healthz: %q", m)
	}
}

func TestHookURLsTellNothingAndMakeNoMetricSeries(t *testing.T) {
	g, gl, _ := connected(t, "")
	p := pushPayload(t, gl.Project.ID, "main", sha("main-1"), sha("x"))
	wrongCode, wrongBody := g.deliver("app", "wrong-secret", "Push Hook", p, "")
	unknownCode, unknownBody := g.deliver("nope", "wrong-secret", "Push Hook", p, "")
	if wrongCode != unknownCode || strings.ReplaceAll(unknownBody, "nope", "app") != wrongBody {
		t.Fatalf("an unknown integration is told apart from a wrong token:\n%d %s\n%d %s", wrongCode, wrongBody, unknownCode, unknownBody)
	}
	methods := []string{"GET", "PUT", "DELETE", "POST", "PATCH"}
	client := &http.Client{Timeout: 10 * time.Second}
	for i := 0; i < 2000; i++ {
		req, _ := http.NewRequest(methods[i%len(methods)], fmt.Sprintf("%s/hooks/gitlab/probe-%d", g.URL, i), strings.NewReader("{}"))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	var m string
	g.apiGetText("/metrics", &m)
	series := 0
	for _, line := range strings.Split(m, "\n") {
		if strings.HasPrefix(line, "glenv_webhook_deliveries_total{") {
			series++
			if strings.Contains(line, "probe-") {
				t.Fatalf("a made-up integration became a label: %s", line)
			}
		}
	}
	if series > 10 {
		t.Fatalf("%d series of glenv_webhook_deliveries_total after 2,000 requests to made-up hook URLs", series)
	}
}

func TestNamesCannotForgeRowsInCLITables(t *testing.T) {
	g, gl, secret := connected(t, "")
	// Names glenv owns are refused with control characters in them.
	for _, name := range []string{"ci\n99  forged  admin", "ci\x1b[2Jx", "ci\u202eevil"} {
		if _, stderr, code := g.run("", "token:create", "--name", name); code == 0 || !strings.Contains(stderr, "name") {
			t.Fatalf("token name %q accepted: %s", name, stderr)
		}
	}
	if _, stderr, code := g.run("", "integration:update", "app", "--label", "a\x1b[31mb"); code == 0 || !strings.Contains(stderr, "labels") {
		t.Fatalf("label with an escape accepted: %s", stderr)
	}
	// Names GitLab owns are shown escaped: git allows a line separator
	// and a bidi override in a branch name.
	branch := "fix\u2028main  active  \u202eevil"
	p := pushPayload(t, gl.Project.ID, branch, zeroSHA, sha("evil"))
	if code, body := g.deliver("app", secret, "Push Hook", p, ""); code != http.StatusAccepted {
		t.Fatalf("push: %d %s", code, body)
	}
	g.settle("app")
	out := g.mustRun("environment:list", "--integration", "app")
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	envs := g.envs("app")
	if len(lines) != len(envs)+1 || strings.ContainsAny(out, "\u2028\u202e\x1b") || !strings.Contains(out, `fix\u2028main`) {
		t.Fatalf("environment:list of %d environments printed %d lines:\n%s", len(envs), len(lines), out)
	}
}
