package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// envFiles is what glenv keeps on disk for one environment, outside
// everything the environment's sandbox can see except data/:
//
//	envs/<id>/state.json  what runs (SHA, build), what it holds (databases), its prebuild
//	envs/<id>/data/       services.files, HOME; /data in the sandbox
//	envs/<id>/data.ok     the data was prepared (and cloned, and hooked)
//	envs/<id>/app.log     the app's output
type envState struct {
	SHA       string   `json:"sha"`
	Build     string   `json:"build"`
	PrevBuild string   `json:"prev_build,omitempty"`
	Databases []string `json:"databases,omitempty"`
	// Prebuild is the build a prebuild made for the environment's head
	// while it runs nothing (--prebuild-branches): kept from pruning so
	// activating it reuses the build.
	Prebuild string `json:"prebuild,omitempty"`
}

func (r *Runtime) envDir(id int64) string {
	return filepath.Join(r.dir, "envs", strconv.FormatInt(id, 10))
}

// loadState reads what glenv knows of an environment. A missing file is
// an environment that never ran. A file that cannot be parsed is moved
// aside (state.json.corrupt, for a person to look at) and logged, and what
// the environment holds is found again where it can be: its databases by
// their names on the services PostgreSQL. A file that cannot be read at
// all is an error: nothing may be decided from a state glenv cannot see.
func (r *Runtime) loadState(ctx context.Context, id int64) (envState, error) {
	st, corrupt, err := r.readState(id)
	if err != nil || corrupt == nil {
		return st, err
	}
	path := filepath.Join(r.envDir(id), "state.json")
	r.log.Error("an environment's state file is corrupt: moved aside, recovering what it held",
		"environment_id", id, "file", path+".corrupt", "err", corrupt)
	st = envState{}
	if err := os.Rename(path, path+".corrupt"); err != nil && !errors.Is(err, os.ErrNotExist) {
		return st, fmt.Errorf("move aside the corrupt state of environment %d: %w", id, err)
	}
	if r.opts.Databases != nil {
		dbs, err := r.opts.Databases.Databases(ctx, dbName(id, ""))
		if err != nil {
			return st, fmt.Errorf("find the databases of environment %d (its state file was corrupt): %w", id, err)
		}
		st.Databases = dbs
	}
	return st, r.saveState(id, st)
}

// readState reads the state file without acting on it: corrupt is set
// when the file is there but cannot be parsed.
func (r *Runtime) readState(id int64) (st envState, corrupt, err error) {
	path := filepath.Join(r.envDir(id), "state.json")
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return st, nil, nil
	}
	if err != nil {
		return st, nil, fmt.Errorf("read the state of environment %d: %w; fix the file's permissions or remove it", id, err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return envState{}, err, nil
	}
	return st, nil, nil
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
// so the cache holds at most two builds per environment. When it cannot
// tell which builds are in use (a directory or a state it cannot read) it
// removes nothing and says why: a build kept too long costs disk, one
// removed too early breaks a running app's restart.
func (r *Runtime) pruneBuilds() {
	if err := r.prune(); err != nil {
		r.log.Warn("builds not pruned", "err", err)
	}
}

func (r *Runtime) prune() error {
	keep, err := r.buildsInUse()
	if err != nil {
		return err
	}
	builds, err := os.ReadDir(filepath.Join(r.dir, "builds"))
	if err != nil {
		return err
	}
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
	return nil
}

// buildsInUse are the builds the running apps and every environment's
// state name.
func (r *Runtime) buildsInUse() (map[string]bool, error) {
	keep := map[string]bool{}
	r.mu.RLock()
	for _, rn := range r.envs {
		if rn.app != nil {
			keep[rn.app.build] = true
		}
	}
	r.mu.RUnlock()
	envs, err := os.ReadDir(filepath.Join(r.dir, "envs"))
	if err != nil {
		return nil, err
	}
	for _, e := range envs {
		id, err := strconv.ParseInt(e.Name(), 10, 64)
		if err != nil {
			continue
		}
		// A corrupt state names no build: if its app runs, r.envs has it.
		st, _, err := r.readState(id)
		if err != nil {
			return nil, err
		}
		keep[st.Build], keep[st.PrevBuild], keep[st.Prebuild] = true, true, true
	}
	return keep, nil
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
