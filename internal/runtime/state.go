package runtime

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// envFiles is what glenv keeps on disk for one environment, outside
// everything the environment's sandbox can see except data/:
//
//	envs/<id>/state.json  what runs (SHA, build) and what it holds (databases)
//	envs/<id>/data/       services.files, HOME; /data in the sandbox
//	envs/<id>/data.ok     the data was prepared (and cloned, and hooked)
//	envs/<id>/app.log     the app's output
type envState struct {
	SHA       string   `json:"sha"`
	Build     string   `json:"build"`
	PrevBuild string   `json:"prev_build,omitempty"`
	Databases []string `json:"databases,omitempty"`
}

func (r *Runtime) envDir(id int64) string {
	return filepath.Join(r.dir, "envs", strconv.FormatInt(id, 10))
}

func (r *Runtime) loadState(id int64) envState {
	var st envState
	b, err := os.ReadFile(filepath.Join(r.envDir(id), "state.json"))
	if err == nil {
		_ = json.Unmarshal(b, &st)
	}
	return st
}

func (r *Runtime) saveState(id int64, st envState) error {
	b, _ := json.Marshal(st)
	path := filepath.Join(r.envDir(id), "state.json")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// pruneBuilds removes builds that no environment runs or ran just before,
// so the cache holds at most two builds per environment.
func (r *Runtime) pruneBuilds() {
	keep := map[string]bool{}
	envs, _ := os.ReadDir(filepath.Join(r.dir, "envs"))
	for _, e := range envs {
		id, err := strconv.ParseInt(e.Name(), 10, 64)
		if err != nil {
			continue
		}
		st := r.loadState(id)
		keep[st.Build], keep[st.PrevBuild] = true, true
	}
	builds, _ := os.ReadDir(filepath.Join(r.dir, "builds"))
	for _, b := range builds {
		name := b.Name()
		// Keys are hex; anything with a dot is a marker or a checkout's index.
		if strings.Contains(name, ".") || keep[name] || r.pins.pinned(name) {
			continue
		}
		// A build in progress holds its lock; leave it alone.
		if !r.locks.tryHold("build:" + name) {
			continue
		}
		_ = os.Remove(filepath.Join(r.dir, "builds", name+".ok"))
		_ = os.RemoveAll(filepath.Join(r.dir, "builds", name))
		r.locks.release("build:" + name)
	}
}

// pins are builds a deploy is about to run, which pruning must leave alone
// although no environment's state names them yet.
type pins struct {
	mu sync.Mutex
	n  map[string]int
}

func (p *pins) pin(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.n == nil {
		p.n = map[string]int{}
	}
	p.n[key]++
}

func (p *pins) unpin(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.n[key]--; p.n[key] <= 0 {
		delete(p.n, key)
	}
}

func (p *pins) pinned(key string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n[key] > 0
}

// keyLocks are mutexes by name that honour a context while waiting.
type keyLocks struct {
	mu sync.Mutex
	m  map[string]chan struct{}
}

func (k *keyLocks) ch(key string) chan struct{} {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.m == nil {
		k.m = map[string]chan struct{}{}
	}
	c := k.m[key]
	if c == nil {
		c = make(chan struct{}, 1)
		k.m[key] = c
	}
	return c
}

func (k *keyLocks) lock(ctx context.Context, key string) (func(), error) {
	c := k.ch(key)
	select {
	case c <- struct{}{}:
		return func() { <-c }, nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

func (k *keyLocks) tryHold(key string) bool {
	select {
	case k.ch(key) <- struct{}{}:
		return true
	default:
		return false
	}
}

func (k *keyLocks) release(key string) { <-k.ch(key) }
