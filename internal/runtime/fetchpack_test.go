package runtime

import (
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glenv/glenv/internal/gitlabtest"
)

// fetchWorld is the GitLab double serving one project over smart HTTP and
// a runtime without sandbox whose fetches read from it.
type fetchWorld struct {
	gl    *gitlabtest.Server
	id    int64
	token string
	url   string // the project's .git URL
	r     *Runtime
}

func newFetchWorld(t testing.TB, wrap func(http.Handler) http.Handler) *fetchWorld {
	t.Helper()
	gl := gitlabtest.New(t)
	t.Cleanup(gl.RemoveRepos)
	dev := gl.AddUser(gitlabtest.User{Username: "bot"})
	p := gl.AddProject(gitlabtest.Project{PathWithNamespace: "group/app", Members: map[int64]int{dev.ID: 40}})
	h := gl.GitHandler()
	if wrap != nil {
		h = wrap(h)
	}
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	r, err := New(Options{Dir: t.TempDir(), DisableSandbox: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return &fetchWorld{gl: gl, id: p.ID, token: gl.AddToken(gitlabtest.Token{UserID: dev.ID, Scopes: []string{"api"}}),
		url: repoURL(hs.URL, "group/app"), r: r}
}

// fetch fetches sha and returns the cache repository, its pack and the
// fetch's log.
func (w *fetchWorld) fetch(t testing.TB, sha string) (string, *packView, string) {
	t.Helper()
	var log strings.Builder
	repo, pack, err := w.r.fetch(t.Context(), w.id, w.url, w.token, sha, func(s string) { log.WriteString(s) })
	if err != nil {
		t.Fatalf("fetch %s: %v\n%s", sha, err, log.String())
	}
	t.Cleanup(pack.close)
	return repo, pack, log.String()
}

// gitIn runs git in dir and returns its trimmed output.
func gitIn(t *testing.T, dir string, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + dir, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v %s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func TestAFetchInProcessLeavesARepositoryGitReads(t *testing.T) {
	w := newFetchWorld(t, nil)
	one := w.gl.Commit(t, w.id, gitlabtest.Commit{Files: map[string]string{".glenv.yml": "run: x\nhealth: /\n", "web/a.txt": "a"}})
	two := w.gl.Commit(t, w.id, gitlabtest.Commit{Files: map[string]string{"web/a.txt": "b", "README.md": "r"}})
	w.fetch(t, one)
	repo, pack, log := w.fetch(t, two)
	if pack == nil || strings.Contains(log, "fetching with git") {
		t.Fatalf("the commit was not fetched in process:\n%s", log)
	}
	if !fetched(repo, two) {
		t.Fatal("the fetched commit has no refs/glenv ref")
	}
	// git sees both commits, cut at depth 1, and can diff them (paths filter).
	changed, err := w.r.changedPaths(t.Context(), repo, one, two)
	if err != nil || strings.Join(changed, ",") != "README.md,web/a.txt" {
		t.Fatalf("changed paths: %v %v", changed, err)
	}
	if got := gitIn(t, repo, "", "rev-list", "--count", two); got != "1" {
		t.Fatalf("git counts %s commits in the history of the fetched commit, want 1 (shallow)", got)
	}
	gitIn(t, repo, "", "fsck", "--no-dangling")
	// Its tree and .glenv.yml were read on the way: no git process for them.
	if tree, ok := w.r.commits.tree(repo, two); !ok || tree != gitIn(t, repo, "", "rev-parse", two+"^{tree}") {
		t.Fatalf("commit cache tree = %q %v", tree, ok)
	}
	if b, ok := w.r.commits.file(repo, two, ConfigFile); !ok || string(b) != "run: x\nhealth: /\n" {
		t.Fatalf("commit cache .glenv.yml = %q %v", b, ok)
	}
	// A second fetch of it needs nothing from the server.
	if _, pack, log := w.fetch(t, two); pack != nil || !strings.Contains(log, "already fetched") {
		t.Fatalf("fetched again:\n%s", log)
	}
	// git's own upkeep packs the repository without complaint.
	gitIn(t, repo, "", "gc", "--quiet")
	gitIn(t, repo, "", "fsck", "--no-dangling")
}

func TestACheckoutFromThePackIsGitsCheckout(t *testing.T) {
	for _, tc := range []struct{ name, attributes string }{
		{"a plain tree", "*.png binary\n"},
		{"a tree whose .gitattributes convert line endings", "*.txt eol=crlf\n"},
	} {
		t.Run(tc.name, func(t *testing.T) { checkoutLikeGit(t, tc.attributes) })
	}
}

func checkoutLikeGit(t *testing.T, attributes string) {
	w := newFetchWorld(t, nil)
	src := w.gl.CreateRepo(w.id)
	sha := w.gl.Commit(t, w.id, gitlabtest.Commit{Files: map[string]string{
		".glenv.yml": "run: x\nhealth: /\n", "bin/run.sh": "#!/bin/sh\necho hi\n", "deep/er/file.txt": "deep\nlines\n", "empty": "",
		"deep/.gitattributes": attributes}})
	// A symlink, an executable and a submodule, committed with git itself.
	blob := gitIn(t, src, "bin/run.sh", "hash-object", "-w", "--stdin")
	tree := gitIn(t, src, "", "ls-tree", sha)
	tree += "\n100755 blob " + blob + "\tlaunch\n120000 blob " + gitIn(t, src, "deep/er", "hash-object", "-w", "--stdin") + "\tlink\n" +
		"160000 commit " + sha + "\tvendor"
	sha = gitIn(t, src, "", "commit-tree", gitIn(t, src, tree+"\n", "mktree"), "-p", sha, "-m", "modes")
	repo, pack, _ := w.fetch(t, sha)
	if pack == nil {
		t.Fatal("not fetched in process")
	}
	mine, gits := filepath.Join(t.TempDir(), "mine"), filepath.Join(t.TempDir(), "git")
	if err := w.r.checkoutOf(t.Context(), pack, repo, sha, mine); err != nil {
		t.Fatal(err)
	}
	if err := w.r.checkout(t.Context(), repo, sha, gits); err != nil {
		t.Fatal(err)
	}
	if a, b := listing(t, mine), listing(t, gits); a != b {
		t.Fatalf("the pack's checkout differs from git's:\n%s\ngit's:\n%s", a, b)
	}
}

// listing describes every file under dir: path, type, permissions and
// content or link target.
func listing(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		b.WriteString(rel + " " + fi.Mode().String())
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			b.WriteString(" -> " + target)
		case fi.Mode().IsRegular():
			c, _ := os.ReadFile(p)
			b.WriteString(" " + string(c))
		}
		b.WriteString("\n")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestAHostileTreeNeverWritesOutsideItsCheckout(t *testing.T) {
	w := newFetchWorld(t, nil)
	src := w.gl.CreateRepo(w.id)
	w.gl.Commit(t, w.id, gitlabtest.Commit{Files: map[string]string{"x": "x"}})
	outside := t.TempDir()
	blob := gitIn(t, src, "pwned\n", "hash-object", "-w", "--stdin")
	target := gitIn(t, src, outside, "hash-object", "-w", "--stdin")
	inner := gitIn(t, src, "100644 blob "+blob+"\tpwn\n", "mktree")
	for _, tc := range []struct{ name, tree string }{
		// git mktree takes what fsck would refuse; a server may send it.
		{"an entry named ..", "100644 blob " + blob + "\t..\n"},
		{"an entry named .git", "040000 tree " + inner + "\t.GIT\n"},
		{"a symlink out, then a directory of the same name through it", "120000 blob " + target + "\ta\n040000 tree " + inner + "\ta\n"},
	} {
		t.Run(tc.name+" is refused", func(t *testing.T) {
			sha := gitIn(t, src, "", "commit-tree", gitIn(t, src, tc.tree, "mktree"), "-m", tc.name)
			repo, pack, _ := w.fetch(t, sha)
			dir := filepath.Join(t.TempDir(), "co")
			if err := w.r.checkoutOf(t.Context(), pack, repo, sha, dir); err == nil {
				t.Fatalf("checked out:\n%s", listing(t, dir))
			}
			if _, err := os.Stat(filepath.Join(outside, "pwn")); err == nil {
				t.Fatal("the checkout wrote outside its directory")
			}
		})
	}
}

func TestFetchErrorsSayWhatToDo(t *testing.T) {
	w := newFetchWorld(t, nil)
	sha := w.gl.Commit(t, w.id, gitlabtest.Commit{Files: map[string]string{"x": "x"}})
	for _, tc := range []struct{ name, token, sha, want string }{
		{"a wrong token names the token and the fix", "glpat-wrong", sha, "refused the integration's token (401); renew it"},
		{"a commit the server lacks says it may have been force-pushed away", w.token, strings.Repeat("e", 40), "is not in the repository (was it force-pushed away?)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := w.r.fetch(t.Context(), w.id, w.url, tc.token, tc.sha, func(string) {})
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "glpat-wrong") {
				t.Fatalf("want %q, got %v", tc.want, err)
			}
		})
	}
}

func TestAServerWithoutProtocolV2IsFetchedFromWithGit(t *testing.T) {
	// As a server too old for v2: the Git-Protocol header never reaches
	// upload-pack, which then reads glenv's request as protocol v0.
	w := newFetchWorld(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			r.Header.Del("Git-Protocol")
			h.ServeHTTP(rw, r)
		})
	})
	sha := w.gl.Commit(t, w.id, gitlabtest.Commit{Files: map[string]string{".glenv.yml": "run: x\nhealth: /\n"}})
	repo, pack, log := w.fetch(t, sha)
	if pack != nil || !strings.Contains(log, "fetching with git") || !fetched(repo, sha) {
		t.Fatalf("pack %v, fetched %v:\n%s", pack != nil, fetched(repo, sha), log)
	}
}
