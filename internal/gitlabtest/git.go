package gitlabtest

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Git smart HTTP, as GitLab serves it at <web_url>.git: real repositories
// behind `git http-backend`, authenticated the way GitLab authenticates Git
// over HTTP (HTTP Basic, any user name, a personal access token as the
// password, scopes read_repository / write_repository / api). A push moves
// the double's branches and tags as GitLab's post-receive does.

// gitRepos are the double's repositories. They live outside Server so that
// git.go stands alone; Server.Close does not know about them, so CreateRepo
// callers (tests) remove them with RemoveRepos or t.Cleanup.
var gitRepos sync.Map // *Server → *gitState

type gitState struct {
	mu   sync.Mutex
	root string
	dirs map[int64]string // project id → bare repository
}

func (s *Server) git() *gitState {
	v, _ := gitRepos.LoadOrStore(s, &gitState{dirs: map[int64]string{}})
	return v.(*gitState)
}

// CreateRepo creates the project's bare repository (once) and returns its
// directory. Fetching by SHA is allowed as on GitLab (Gitaly sets
// uploadpack.allowAnySHA1InWant).
func (s *Server) CreateRepo(projectID int64) (dir string) {
	s.mu.Lock()
	s.mustProject(projectID)
	s.mu.Unlock()
	g := s.git()
	g.mu.Lock()
	defer g.mu.Unlock()
	if d, ok := g.dirs[projectID]; ok {
		return d
	}
	if g.root == "" {
		root, err := os.MkdirTemp("", "gitlabtest-git-")
		if err != nil {
			panic("gitlabtest: " + err.Error())
		}
		g.root = root
	}
	dir = filepath.Join(g.root, itoa(projectID)+".git")
	for _, args := range [][]string{
		{"init", "--quiet", "--bare", "--initial-branch=main", dir},
		{"-C", dir, "config", "http.receivepack", "true"},
		{"-C", dir, "config", "uploadpack.allowAnySHA1InWant", "true"},
		{"-C", dir, "config", "uploadpack.allowFilter", "true"},
	} {
		if out, err := gitCmd("", args...).CombinedOutput(); err != nil {
			panic(fmt.Sprintf("gitlabtest: git %s: %v\n%s", strings.Join(args, " "), err, out))
		}
	}
	g.dirs[projectID] = dir
	return dir
}

// RemoveRepos deletes every repository CreateRepo made.
func (s *Server) RemoveRepos() {
	g := s.git()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.root != "" {
		_ = os.RemoveAll(g.root)
	}
	g.root, g.dirs = "", map[int64]string{}
	gitRepos.Delete(s)
}

func (s *Server) repoDir(projectID int64) string {
	g := s.git()
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.dirs[projectID]
}

// GitHandler serves Git smart HTTP for /<path_with_namespace>.git/… on its
// own, for a test that mounts it elsewhere; ServeGit is the same for the
// double's own listener.
func (s *Server) GitHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !s.ServeGit(w, r, r.URL.EscapedPath(), body) {
			http.NotFound(w, r)
		}
	})
}

// ServeGit answers a Git smart HTTP request and reports whether path was
// one (…/<project>.git/info/refs, git-upload-pack or git-receive-pack).
// body is the request body, already read by the caller.
func (s *Server) ServeGit(w http.ResponseWriter, r *http.Request, path string, body []byte) bool {
	projectPath, rest, ok := splitGitPath(path)
	if !ok {
		return false
	}
	service := r.URL.Query().Get("service")
	if rest != "info/refs" {
		service = rest
	}
	push := service == "git-receive-pack"
	if service != "git-upload-pack" && !push {
		http.Error(w, "Not Found", http.StatusNotFound)
		return true
	}

	s.mu.Lock()
	p := s.findProject(projectPath)
	status, msg := s.gitAuthorize(r, p, push)
	var id int64
	if p != nil {
		id = p.ID
	}
	s.mu.Unlock()
	if status != 0 {
		if status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Basic realm="GitLab"`)
		}
		http.Error(w, msg, status)
		return true
	}
	dir := s.repoDir(id)
	if dir == "" {
		http.Error(w, "The project you were looking for could not be found or you don't have permission to view it.", http.StatusNotFound)
		return true
	}
	r2 := r.Clone(r.Context())
	r2.Body = io.NopCloser(bytes.NewReader(body))
	r2.ContentLength = int64(len(body))
	r2.URL.Path = "/" + filepath.Base(dir) + "/" + rest
	r2.URL.RawPath = ""
	h := &cgi.Handler{
		Path: gitPath(),
		Args: []string{"http-backend"},
		Env: []string{
			"GIT_PROJECT_ROOT=" + filepath.Dir(dir),
			"GIT_HTTP_EXPORT_ALL=1",
			"REMOTE_USER=gitlabtest",
			"HOME=" + filepath.Dir(dir),
			"GIT_CONFIG_NOSYSTEM=1",
		},
	}
	h.ServeHTTP(w, r2)
	if push && r.Method == http.MethodPost {
		s.syncRefs(id, dir)
	}
	return true
}

// splitGitPath splits /group/app.git/info/refs into group/app and info/refs.
func splitGitPath(path string) (project, rest string, ok bool) {
	i := strings.Index(path, ".git/")
	if i <= 1 {
		return "", "", false
	}
	project, rest = strings.TrimPrefix(path[:i], "/"), path[i+len(".git/"):]
	switch rest {
	case "info/refs", "git-upload-pack", "git-receive-pack":
		return project, rest, true
	}
	return "", "", false
}

// gitAuthorize is Gitlab::Auth for Git over HTTP: HTTP Basic with a
// personal access token as the password (the user name is not checked),
// anonymous reads of public projects, and GitLab's 401/403/404 answers.
func (s *Server) gitAuthorize(r *http.Request, p *project, push bool) (int, string) {
	_, password, hasAuth := r.BasicAuth()
	var u *User
	var scopes []string
	if hasAuth {
		rec := s.tokens[password]
		now := s.now()
		if rec == nil || rec.Revoked || s.users[rec.UserID] == nil ||
			(rec.ExpiresAt != nil && !now.Before(midnightUTC(*rec.ExpiresAt))) {
			return http.StatusUnauthorized, "HTTP Basic: Access denied. If a password was provided for Git authentication, the password was incorrect or you're required to use a token instead of a password."
		}
		rec.lastUsedAt = &now
		u, scopes = &s.users[rec.UserID].User, rec.Scopes
	}
	if p == nil {
		if u == nil {
			return http.StatusUnauthorized, "HTTP Basic: Access denied"
		}
		return http.StatusNotFound, "The project you were looking for could not be found or you don't have permission to view it."
	}
	if u == nil {
		if !push && p.Visibility == "public" {
			return 0, ""
		}
		return http.StatusUnauthorized, "HTTP Basic: Access denied"
	}
	level := s.accessLevel(p, u)
	if !p.visibleTo(level) {
		return http.StatusNotFound, "The project you were looking for could not be found or you don't have permission to view it."
	}
	if push {
		if !hasAny(scopes, []string{"api", "write_repository"}) || level < accessDeveloper {
			return http.StatusForbidden, "You are not allowed to push code to this project."
		}
		return 0, ""
	}
	if !hasAny(scopes, []string{"api", "read_repository", "write_repository"}) {
		return http.StatusForbidden, "You are not allowed to download code from this project."
	}
	return 0, ""
}

// syncRefs is post-receive: the double's branches and tags follow the
// repository's refs after a push.
func (s *Server) syncRefs(projectID int64, dir string) {
	out, err := gitCmd(dir, "for-each-ref", "--format=%(objectname) %(refname)", "refs/heads", "refs/tags").Output()
	if err != nil {
		return
	}
	heads, tags := map[string]string{}, map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		sha, ref, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if b, ok := strings.CutPrefix(ref, "refs/heads/"); ok {
			heads[b] = sha
		} else if t, ok := strings.CutPrefix(ref, "refs/tags/"); ok {
			tags[t] = s.peel(dir, sha)
		}
	}
	s.mu.Lock()
	p := s.mustProject(projectID)
	var moved, gone []string
	for b, sha := range heads {
		if p.branches[b] != sha {
			moved = append(moved, b)
		}
	}
	for b := range p.branches {
		if _, ok := heads[b]; !ok {
			gone = append(gone, b)
		}
	}
	for t, sha := range tags {
		if p.tags[t] != sha {
			p.tags[t] = sha
			s.knowCommit(p, sha)
		}
	}
	s.mu.Unlock()
	for _, b := range moved {
		s.SetBranch(projectID, b, heads[b])
	}
	for _, b := range gone {
		s.DeleteBranch(projectID, b)
	}
}

func (s *Server) peel(dir, sha string) string {
	out, err := gitCmd(dir, "rev-parse", sha+"^{commit}").Output()
	if err != nil {
		return sha
	}
	return strings.TrimSpace(string(out))
}

// Commit describes a commit a test makes on a branch of the double.
type Commit struct {
	Branch  string            // "main" when empty
	Dir     string            // copy this directory's files into the tree first (optional)
	Files   map[string]string // then write these files (path → content)
	Delete  []string          // then remove these paths
	Message string
}

// Commit commits c on top of the branch (or as its first commit), pushes
// it to the project's repository (created if needed) and moves the branch
// there with SetBranch, as a push to GitLab would. It returns the SHA.
func (s *Server) Commit(t testing.TB, projectID int64, c Commit) string {
	t.Helper()
	dir := s.CreateRepo(projectID)
	if c.Branch == "" {
		c.Branch = "main"
	}
	if c.Message == "" {
		c.Message = "commit at " + time.Now().Format(time.RFC3339Nano)
	}
	work := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		out, err := gitCmd(work, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if gitCmd(dir, "rev-parse", "--verify", "--quiet", "refs/heads/"+c.Branch).Run() == nil {
		run("clone", "--quiet", "--single-branch", "--branch", c.Branch, dir, ".")
	} else {
		run("init", "--quiet", "--initial-branch="+c.Branch)
	}
	if c.Dir != "" {
		if out, err := exec.Command("cp", "-a", c.Dir+"/.", work).CombinedOutput(); err != nil {
			t.Fatalf("copy %s: %v\n%s", c.Dir, err, out)
		}
	}
	for name, content := range c.Files {
		path := filepath.Join(work, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range c.Delete {
		_ = os.RemoveAll(filepath.Join(work, filepath.FromSlash(name)))
	}
	run("add", "--all")
	run("commit", "--quiet", "--allow-empty", "-m", c.Message)
	sha := run("rev-parse", "HEAD")
	run("push", "--quiet", "--force", dir, "HEAD:refs/heads/"+c.Branch)
	s.syncRefs(projectID, dir)
	return sha
}

func gitPath() string {
	if p, err := exec.LookPath("git"); err == nil {
		return p
	}
	return "/usr/bin/git"
}

// gitCmd runs git with a fixed identity and no user or system config, so
// tests do not depend on the machine's git setup.
func gitCmd(dir string, args ...string) *exec.Cmd {
	cmd := exec.Command(gitPath(), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_AUTHOR_NAME=GitLab Double", "GIT_AUTHOR_EMAIL=double@example.com",
		"GIT_COMMITTER_NAME=GitLab Double", "GIT_COMMITTER_EMAIL=double@example.com",
		"GIT_TERMINAL_PROMPT=0")
	return cmd
}
