package gitlabtest

import (
	"encoding/base64"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// gitFixture is a double with a project whose repository holds one commit,
// reached over smart HTTP at base (the double's GitHandler on its own
// listener, so the tests do not depend on the route in routes.go).
type gitFixture struct {
	srv        *Server
	base       string
	project    Project
	sha        string
	devTok     string
	readTok    string
	outsideTok string
	readAPITok string
}

func newGitFixture(t *testing.T) *gitFixture {
	t.Helper()
	srv := New(t)
	t.Cleanup(srv.RemoveRepos)
	dev := srv.AddUser(User{Username: "dev"})
	rep := srv.AddUser(User{Username: "rep"})
	out := srv.AddUser(User{Username: "out"})
	p := srv.AddProject(Project{PathWithNamespace: "group/app", Members: map[int64]int{dev.ID: 30, rep.ID: 20}})
	hs := httptest.NewServer(srv.GitHandler())
	t.Cleanup(hs.Close)
	f := &gitFixture{srv: srv, base: hs.URL, project: p,
		devTok:     srv.AddToken(Token{UserID: dev.ID, Scopes: []string{"api"}}),
		readTok:    srv.AddToken(Token{UserID: rep.ID, Scopes: []string{"read_repository"}}),
		outsideTok: srv.AddToken(Token{UserID: out.ID, Scopes: []string{"api"}}),
		readAPITok: srv.AddToken(Token{UserID: dev.ID, Scopes: []string{"read_api"}}),
	}
	f.sha = srv.Commit(t, p.ID, Commit{Files: map[string]string{"README.md": "hello\n"}})
	return f
}

// git runs git with the token in an Authorization header passed through
// the environment, as glenv's runtime does.
func (f *gitFixture) git(t *testing.T, dir, token string, args ...string) (string, error) {
	t.Helper()
	cmd := gitCmd(dir, args...)
	if token != "" {
		cmd.Env = append(cmd.Env, "GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=http.extraHeader",
			"GIT_CONFIG_VALUE_0=Authorization: Basic "+base64.StdEncoding.EncodeToString([]byte("oauth2:"+token)))
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestGitSmartHTTP(t *testing.T) {
	f := newGitFixture(t)
	url := f.base + "/group/app.git"

	t.Run("a member's token fetches the exact SHA", func(t *testing.T) {
		dir := t.TempDir()
		f.git(t, dir, "", "init", "--quiet")
		if out, err := f.git(t, dir, f.readTok, "fetch", "--depth=1", url, f.sha); err != nil {
			t.Fatalf("fetch: %v\n%s", err, out)
		}
		out, err := f.git(t, dir, "", "show", f.sha+":README.md")
		if err != nil || out != "hello\n" {
			t.Fatalf("show: %v %q", err, out)
		}
	})
	for _, tc := range []struct {
		name, token, want string
	}{
		{"no token is asked for credentials", "", "terminal prompts disabled"},
		{"a wrong token is answered 401", "glpat-wrong", "could not read Username"},
		{"a non-member does not see the project", f.outsideTok, "not found"},
		{"a read_api token cannot read code", f.readAPITok, "403"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			f.git(t, dir, "", "init", "--quiet")
			out, err := f.git(t, dir, tc.token, "fetch", url, f.sha)
			if err == nil || !strings.Contains(strings.ToLower(out), strings.ToLower(tc.want)) {
				t.Fatalf("fetch: err %v, output %q; want it to contain %q", err, out, tc.want)
			}
		})
	}
	t.Run("a push moves the branch on the double", func(t *testing.T) {
		dir := t.TempDir()
		if out, err := f.git(t, "", f.devTok, "clone", "--quiet", url, dir); err != nil {
			t.Fatalf("clone: %v\n%s", err, out)
		}
		if err := os.WriteFile(filepath.Join(dir, "b.txt"), []byte("b"), 0o644); err != nil {
			t.Fatal(err)
		}
		f.git(t, dir, "", "add", ".")
		f.git(t, dir, "", "commit", "--quiet", "-m", "b")
		head, _ := f.git(t, dir, "", "rev-parse", "HEAD")
		head = strings.TrimSpace(head)
		if out, err := f.git(t, dir, f.devTok, "push", "--quiet", "origin", "HEAD:refs/heads/feature"); err != nil {
			t.Fatalf("push: %v\n%s", err, out)
		}
		f.srv.mu.Lock()
		got := f.srv.projects[f.project.ID].branches["feature"]
		f.srv.mu.Unlock()
		if got != head {
			t.Fatalf("branch feature at %q, want %q", got, head)
		}
		if out, err := f.git(t, dir, f.readTok, "push", "origin", "HEAD:refs/heads/other"); err == nil || !strings.Contains(out, "403") {
			t.Fatalf("a read-only token pushed: %v\n%s", err, out)
		}
	})
	t.Run("Commit moves the branch and keeps history", func(t *testing.T) {
		sha2 := f.srv.Commit(t, f.project.ID, Commit{Files: map[string]string{"b.txt": "2"}})
		f.srv.mu.Lock()
		got := f.srv.projects[f.project.ID].branches["main"]
		f.srv.mu.Unlock()
		if got != sha2 {
			t.Fatalf("main at %s, want %s", got, sha2)
		}
		out, err := exec.Command("git", "-C", f.srv.CreateRepo(f.project.ID), "rev-list", "--count", sha2).Output()
		if err != nil || strings.TrimSpace(string(out)) != "2" {
			t.Fatalf("history: %v %q", err, out)
		}
	})
}
