package runtime

import (
	"context"
	"sync"
)

// commitCache remembers what never changes for a fetched commit, its tree
// and its .glenv.yml, so that a redeploy or a wake of a commit glenv has
// read before runs no git process for them (each costs more than the rest
// of its stage). It is bounded: when full it starts over.
type commitCache struct {
	mu    sync.Mutex
	trees map[string]string // repo NUL sha → tree
	files map[string][]byte // repo NUL sha NUL name → content
}

const (
	commitCacheEntries = 1024
	// Larger files are read from git each time: the cache stays within a
	// few MB however many commits it saw.
	commitCacheFileMax = 16 << 10
)

func (c *commitCache) tree(repo, sha string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.trees[repo+"\x00"+sha]
	return t, ok
}

func (c *commitCache) setTree(repo, sha, tree string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.trees == nil || len(c.trees) >= commitCacheEntries {
		c.trees = map[string]string{}
	}
	c.trees[repo+"\x00"+sha] = tree
}

func (c *commitCache) file(repo, sha, name string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.files[repo+"\x00"+sha+"\x00"+name]
	return b, ok
}

func (c *commitCache) setFile(repo, sha, name string, b []byte) {
	if len(b) > commitCacheFileMax {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.files == nil || len(c.files) >= commitCacheEntries {
		c.files = map[string][]byte{}
	}
	c.files[repo+"\x00"+sha+"\x00"+name] = b
}

// cachedTree is treeOf, remembered.
func (r *Runtime) cachedTree(ctx context.Context, repo, sha string) (string, error) {
	if t, ok := r.commits.tree(repo, sha); ok {
		return t, nil
	}
	t, err := r.treeOf(ctx, repo, sha)
	if err == nil && t != "" {
		r.commits.setTree(repo, sha, t)
	}
	return t, err
}

// cachedFile is readFile, remembered when it read a (small) file.
func (r *Runtime) cachedFile(ctx context.Context, repo, sha, name string) ([]byte, error) {
	if b, ok := r.commits.file(repo, sha, name); ok {
		return b, nil
	}
	b, err := r.readFile(ctx, repo, sha, name)
	if err == nil {
		r.commits.setFile(repo, sha, name, b)
	}
	return b, err
}
