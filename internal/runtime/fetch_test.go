package runtime

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestGitLsTreeEntries(t *testing.T) {
	for _, tc := range []struct {
		name, out string
		want      treeEntry
		err       string
	}{
		{"a path that is not in the tree is empty", "", treeEntry{}, ""},
		{"a file has its mode, object and size", "100644 blob 2e65efe2a145dda7ee51d1741299f848e5bf752e     12\t.glenv.yml\x00",
			treeEntry{mode: "100644", kind: "blob", oid: "2e65efe2a145dda7ee51d1741299f848e5bf752e", size: 12}, ""},
		{"a directory has no size", "040000 tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904       -\t.glenv.yml\x00",
			treeEntry{mode: "040000", kind: "tree", oid: "4b825dc642cb6eb9a060e54bf8d69288fbee4904", size: -1}, ""},
		{"anything else is git's answer we do not understand", "garbage\x00", treeEntry{}, "unexpected git ls-tree output"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseTreeEntry([]byte(tc.out))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("want %q, got %v", tc.err, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v %v, want %+v", got, err, tc.want)
			}
		})
	}
}

// gitRepo commits files (and a symlink link.yml → .glenv.yml) into a new
// repository and returns it with the commit's SHA.
func gitRepo(t *testing.T, files map[string]string) (string, string) {
	t.Helper()
	dir := t.TempDir()
	run := func(args ...string) string {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + dir, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
			"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com"}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v %s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	run("init", "--quiet")
	for name, content := range files {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(".glenv.yml", filepath.Join(dir, "link.yml")); err != nil {
		t.Fatal(err)
	}
	run("add", "-A")
	run("commit", "--quiet", "-m", "files")
	return filepath.Join(dir, ".git"), run("rev-parse", "HEAD")
}

func TestReadFileTellsAMissingFileFromEverythingElse(t *testing.T) {
	r, err := New(Options{Dir: t.TempDir(), DisableSandbox: true})
	if err != nil {
		t.Fatal(err)
	}
	repo, sha := gitRepo(t, map[string]string{".glenv.yml": "run: x\nhealth: /\n", "big.yml": strings.Repeat("#", MaxRepoFile+1), "dir/a": "a"})
	ctx := t.Context()
	if b, err := r.readFile(ctx, repo, sha, ".glenv.yml"); err != nil || string(b) != "run: x\nhealth: /\n" {
		t.Fatalf("a regular file: %q %v", b, err)
	}
	for _, tc := range []struct {
		name, repo, sha, file string
		notExist              bool
		want                  string
	}{
		{"a file the commit lacks is not found", repo, sha, "missing.yml", true, ""},
		{"a file over the size cap is refused with the cap", repo, sha, "big.yml", false, "over the 256 KiB glenv reads from a repository"},
		{"a symlink is not read through", repo, sha, "link.yml", false, "is a symlink"},
		{"a directory is not a file", repo, sha, "dir", false, "is a directory"},
		{"a commit git does not have names git's answer", repo, strings.Repeat("a", 40), ".glenv.yml", false, "git ls-tree"},
		{"a broken repository names git's answer", t.TempDir(), sha, ".glenv.yml", false, "not a git repository"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := r.readFile(ctx, tc.repo, tc.sha, tc.file)
			if got := errors.Is(err, os.ErrNotExist); got != tc.notExist {
				t.Fatalf("not-exist = %v, want %v (%v)", got, tc.notExist, err)
			}
			if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("want %q, got %v", tc.want, err)
			}
		})
	}
}

func TestFetchedKnowsGlenvsOwnRefs(t *testing.T) {
	sha := strings.Repeat("ab", 20)
	other := strings.Repeat("cd", 20)
	loose := t.TempDir()
	if err := os.MkdirAll(filepath.Join(loose, "refs", "glenv"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(loose, "refs", "glenv", sha), []byte(sha+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	packed := t.TempDir()
	if err := os.WriteFile(filepath.Join(packed, "packed-refs"), []byte("# pack-refs with: peeled fully-peeled sorted \n"+sha+" refs/glenv/"+sha+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, repo, sha string
		want            bool
	}{
		{"a commit glenv fetched is found by its ref file", loose, sha, true},
		{"a commit whose ref git packed is found in packed-refs", packed, sha, true},
		{"a commit glenv never fetched is fetched", loose, other, false},
		{"an empty repository has nothing", t.TempDir(), sha, false},
		{"a name that is not an object name never becomes a path", loose, "../../" + sha[:34], false},
		{"an abbreviated name is not trusted", loose, sha[:12], false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := fetched(tc.repo, tc.sha); got != tc.want {
				t.Fatalf("fetched = %v, want %v", got, tc.want)
			}
		})
	}
}
