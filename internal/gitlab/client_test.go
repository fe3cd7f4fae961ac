package gitlab

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/glenv/glenv/internal/gitlabtest"
)

func world(t *testing.T) (*gitlabtest.Server, gitlabtest.Project, string) {
	gl := gitlabtest.New(t)
	u := gl.AddUser(gitlabtest.User{Username: "m"})
	p := gl.AddProject(gitlabtest.Project{PathWithNamespace: "group/app", DefaultBranch: "main", Members: map[int64]int{u.ID: 40}})
	gl.SetBranch(p.ID, "main", strings.Repeat("a", 40))
	return gl, p, gl.AddToken(gitlabtest.Token{UserID: u.ID, Scopes: []string{"api"}})
}

func count(gl *gitlabtest.Server, method, pathPart string) int {
	n := 0
	for _, c := range gl.Calls() {
		if c.Method == method && strings.Contains(c.Path, pathPart) {
			n++
		}
	}
	return n
}

func TestRetriesNeverDuplicateAWrite(t *testing.T) {
	gl, p, tok := world(t)
	c, err := New(gl.URL, tok, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	// A 503 on a POST is not retried: the hook may have been created.
	remove := gl.AddFault(gitlabtest.Fault{Method: "POST", PathPattern: "/hooks$", Status: 503, Times: 1})
	if _, err := c.EnsureHook(ctx, p.ID, "http://glenv.example/hooks/gitlab/app", "s"); err == nil {
		t.Fatal("a 503 on POST reported success")
	}
	remove()
	if n := count(gl, "POST", "/hooks"); n != 1 {
		t.Fatalf("POST /hooks sent %d times after a 503, want 1", n)
	}
	// A 503 on a GET is retried.
	gl.ResetCalls()
	gl.AddFault(gitlabtest.Fault{Method: "GET", PathPattern: "/repository/branches", Status: 503, Times: 2})
	branches, err := c.ListBranches(ctx, p.ID)
	if err != nil || branches["main"] == "" {
		t.Fatalf("GET after two 503s: %v %v", branches, err)
	}
	if n := count(gl, "GET", "/repository/branches"); n != 3 {
		t.Fatalf("GET sent %d times, want 3", n)
	}
	// A 429 is retried for any method, after RateLimit-Reset.
	gl.ResetCalls()
	gl.AddFault(gitlabtest.Fault{Method: "POST", PathPattern: "/hooks$", Status: 429, Times: 1, ResetAfter: time.Second})
	start := time.Now()
	if _, err := c.EnsureHook(ctx, p.ID, "http://glenv.example/hooks/gitlab/app2", "s"); err != nil {
		t.Fatalf("POST after a 429: %v", err)
	}
	if n := count(gl, "POST", "/hooks"); n != 2 || time.Since(start) < 500*time.Millisecond {
		t.Fatalf("POST sent %d times in %v; want 2, after waiting for the reset", n, time.Since(start))
	}
	if len(gl.Hooks(p.ID)) != 1 {
		t.Fatalf("hooks = %d, want exactly 1 (the first POST failed before creating)", len(gl.Hooks(p.ID)))
	}
}

func TestErrorsSayWhatToDo(t *testing.T) {
	gl, p, tok := world(t)
	expired := time.Now().AddDate(0, 0, -1)
	readAPI := gl.AddToken(gitlabtest.Token{UserID: 1, Scopes: []string{"read_api"}})
	old := gl.AddToken(gitlabtest.Token{UserID: 1, Scopes: []string{"api"}, ExpiresAt: &expired})
	tests := []struct {
		name  string
		token string
		base  string
		call  func(*Client) error
		kind  error
		want  string
	}{
		{"unknown project", tok, gl.URL, func(c *Client) error { _, err := c.GetProject(context.Background(), "group/none"); return err }, ErrNotFound, "check the path"},
		{"expired token", old, gl.URL, func(c *Client) error { _, err := c.TokenSelf(context.Background()); return err }, ErrUnauthorized, "expired"},
		{"missing scope", readAPI, gl.URL, func(c *Client) error {
			_, err := c.EnsureHook(context.Background(), p.ID, "http://x/hooks/gitlab/a", "s")
			return err
		}, ErrForbidden, "api scope"},
		{"unreachable", tok, "http://127.0.0.1:1", func(c *Client) error { _, err := c.TokenSelf(context.Background()); return err }, ErrUnreachable, "127.0.0.1:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.base, tt.token, Options{})
			if err != nil {
				t.Fatal(err)
			}
			err = tt.call(c)
			if !errors.Is(err, tt.kind) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v; want %v mentioning %q", err, tt.kind, tt.want)
			}
		})
	}
}

func TestBaseURLRules(t *testing.T) {
	for raw, ok := range map[string]bool{
		"https://gitlab.com": true, "http://10.0.0.5:8080/gitlab": true, "gitlab.com": false, "ftp://x": false,
		"https://u:p@gitlab.com": false, "https://gitlab.com/api/v4": false, "https://gitlab.com/?a=b": false,
	} {
		if err := ValidateBaseURL(raw); (err == nil) != ok {
			t.Errorf("ValidateBaseURL(%q) = %v, want ok=%v", raw, err, ok)
		}
	}
}
