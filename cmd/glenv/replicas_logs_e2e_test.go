package main_test

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/glenv/glenv/internal/gitlabtest"
)

// TestReplicasShowTheAppOutputOfAnEnvironmentAnotherReplicaRuns runs two
// real replicas with the process runtime: the app's output is a file on the
// disk of the replica that runs it, and the other replica answers
// environment:logs (a page and --follow) and the dashboard's live output
// stream with it, by asking the owner.
func TestReplicasShowTheAppOutputOfAnEnvironmentAnotherReplicaRuns(t *testing.T) {
	dbURL := postgresOrFail(t)
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	gl := newGitLab(t)
	static, _ := filepath.Abs("../../examples/static")
	shaMain := gl.Commit(t, gl.Project.ID, gitlabtest.Commit{Branch: "main", Dir: static})
	keyFile := filepath.Join(t.TempDir(), "secret.key") // one key for both
	env := []string{"GLENV_RUNTIME=process", "GLENV_SECRET_KEY_FILE=" + keyFile,
		"GLENV_REPLICA_HEARTBEAT=300ms", "GLENV_REPLICA_DEAD_AFTER=3s"}
	owner := startGlenv(t, dbURL, env...)
	var res integrationJSON
	owner.mustJSON(&res, addArgs(gl)...)
	waitActive(t, owner, db, "main", shaMain) // deployed by the only replica there was
	other := startGlenv(t, dbURL, env...)
	var id int64
	if err := db.QueryRow(`SELECT id FROM environments WHERE name = 'main'`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	// The other replica relays environment traffic once it knows the owner
	// is live; the app logs each request it serves.
	expectServes(t, other, "main--app", "")

	t.Run("environment:logs at the other replica shows the requests the app served", func(t *testing.T) {
		// (Not "GET / ": the deploy log, shown when there is no app output,
		// has the health check's.)
		path := fmt.Sprintf("/paged-%d", time.Now().UnixNano())
		visit(t, owner, "main--app", path)
		pollUntil(t, 30*time.Second, "environment:logs at the other replica to show "+path, func() bool {
			out, _, code := other.run("", "environment:logs", "main", "-i", "app")
			return code == 0 && strings.Contains(out, "GET "+path+" ")
		})
	})

	t.Run("environment:logs --follow at the other replica shows a request made after it started", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, "environment:logs", "main", "-i", "app", "--follow")
		cmd.Env = append(os.Environ(), "GLENV_SERVER="+other.URL, "GLENV_API_TOKEN="+adminToken)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { cancel(); cmd.Wait() }()
		lines := lineChan(out)
		waitLine(t, lines, "GET / ") // following has begun
		path := fmt.Sprintf("/followed-%d", time.Now().UnixNano())
		visit(t, other, "main--app", path)
		waitLine(t, lines, "GET "+path+" ")
	})

	t.Run("the dashboard's live output at the other replica streams what the app writes", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/events/applog/%d?from=0", other.URL, id), nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("/events/applog/%d through the other replica: %d %s", id, resp.StatusCode, b)
		}
		lines := lineChan(resp.Body)
		waitLine(t, lines, "GET / ")
		path := fmt.Sprintf("/streamed-%d", time.Now().UnixNano())
		visit(t, owner, "main--app", path)
		waitLine(t, lines, "GET "+path+" ")
	})
}

// visit asks the environment at host for path through g.
func visit(t *testing.T, g *glenv, host, path string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, g.URL+path, nil)
	req.Host = host + ".localhost"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// lineChan delivers r's lines; it is closed at r's end.
func lineChan(r io.Reader) <-chan string {
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	return lines
}

// waitLine waits up to 30 s for a line containing want.
func waitLine(t *testing.T, lines <-chan string, want string) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("the output ended before a line with %q", want)
			}
			if strings.Contains(l, want) {
				return
			}
		case <-deadline:
			t.Fatalf("no line with %q within 30s", want)
		}
	}
}
