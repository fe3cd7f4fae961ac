package runtime

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestCommitCache(t *testing.T) {
	r, err := New(Options{Dir: t.TempDir(), DisableSandbox: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	repo, sha := gitRepo(t, map[string]string{".glenv.yml": "run: x\nhealth: /\n", "big.yml": strings.Repeat("#", commitCacheFileMax+1)})
	ctx := t.Context()
	tree, err := r.cachedTree(ctx, repo, sha)
	if err != nil || len(tree) != 40 {
		t.Fatalf("tree %q %v", tree, err)
	}
	if _, err := r.cachedFile(ctx, repo, sha, ".glenv.yml"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.cachedFile(ctx, repo, sha, "big.yml"); err != nil {
		t.Fatal(err)
	}
	// Without the repository, only what was remembered can be read.
	if err := os.RemoveAll(repo); err != nil {
		t.Fatal(err)
	}
	t.Run("a commit's tree read before needs no git", func(t *testing.T) {
		if got, err := r.cachedTree(ctx, repo, sha); err != nil || got != tree {
			t.Fatalf("tree %q %v, want %q", got, err, tree)
		}
	})
	t.Run("a commit's .glenv.yml read before needs no git", func(t *testing.T) {
		if got, err := r.cachedFile(ctx, repo, sha, ".glenv.yml"); err != nil || string(got) != "run: x\nhealth: /\n" {
			t.Fatalf("file %q %v", got, err)
		}
	})
	t.Run("a large file is not kept", func(t *testing.T) {
		if _, err := r.cachedFile(ctx, repo, sha, "big.yml"); err == nil {
			t.Fatal("a file over the cache's size was kept")
		}
	})
	t.Run("the cache never holds more than its bound", func(t *testing.T) {
		var c commitCache
		for i := range 3 * commitCacheEntries {
			c.setTree("repo", strconv.Itoa(i), "t")
			c.setFile("repo", strconv.Itoa(i), "f", []byte("x"))
		}
		if len(c.trees) > commitCacheEntries || len(c.files) > commitCacheEntries {
			t.Fatalf("%d trees, %d files kept; bound %d", len(c.trees), len(c.files), commitCacheEntries)
		}
	})
}
