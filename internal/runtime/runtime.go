// Package runtime builds and runs environments as local processes: it
// fetches the exact commit from GitLab over smart HTTP, reads and validates
// its .glenv.yml, builds it (reusing a build of the same tree and build
// settings), prepares the environment's data, starts the app on a port of
// 127.0.0.1 inside a bubblewrap sandbox, and switches traffic to it once it
// is healthy. An app that exits on its own is started again from the same
// build, with backoff, until it keeps failing (RestartPolicy). It never
// writes the GitLab token to disk or to a log, and never lets an
// environment see glenv's data dir or another environment.
package runtime

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/glenv/glenv/internal/data"
	"github.com/glenv/glenv/internal/jobs"
	"github.com/glenv/glenv/internal/lifecycle"
	"github.com/glenv/glenv/internal/limits"
	"github.com/glenv/glenv/internal/store"
)

// Options configure a Runtime.
type Options struct {
	// Dir holds the runtime's repositories, builds and environments,
	// e.g. <data-dir>/runtime. Created 0700.
	Dir string
	// Hide are paths no sandboxed command may see even where they lie
	// under a system directory the sandbox shows: glenv's data dir and
	// secret key file.
	Hide []string
	// UnsafeNoSandbox lets code run without the sandbox
	// (--unsafe-no-sandbox): merge request, branch and tag code alike is
	// refused without it where bubblewrap or pasta is missing.
	UnsafeNoSandbox bool
	// DisableSandbox runs everything without bubblewrap even when it is
	// installed (benchmarks comparing the two; tests).
	DisableSandbox bool
	// DisableIsolation keeps bubblewrap but gives commands the host's
	// network and per-process rlimits instead of a network namespace and
	// cgroups (benchmarks measuring what the isolation costs).
	DisableIsolation bool
	// DenyEgress keeps environments from the outside world too
	// (--environment-egress deny): they reach only their databases.
	DenyEgress bool
	// Limits are the server's defaults and ceilings for each environment's
	// memory, processes, CPU and disk; zero defaults are 1G, 512
	// processes, 1 CPU and 2G of disk.
	Limits limits.Server
	// DiskCheckEvery is how often the disk watchdog measures each
	// environment's writable directories (default 10s); DiskReserve is
	// the free space it keeps on glenv's own filesystem (default 1G):
	// below it, the environment writing the most is stopped.
	DiskCheckEvery time.Duration
	DiskReserve    int64
	// SandboxUIDBase: when glenv runs as root, environment N's commands
	// run as uid SandboxUIDBase+N. Default 200000.
	SandboxUIDBase int
	// HealthTimeout bounds the wait for a new process to answer its
	// health path (default 2m); StopGrace is how long a stopped app gets
	// between SIGTERM and SIGKILL (default 10s), DrainTimeout how long an
	// old process keeps serving requests that were in flight at the
	// switch (default 30s).
	HealthTimeout time.Duration
	StopGrace     time.Duration
	DrainTimeout  time.Duration
	// Restart is how an app that exits on its own after its deploy is
	// started again; see RestartPolicy for the defaults.
	Restart RestartPolicy
	// OnGiveUp is told when an environment's app kept failing and is no
	// longer restarted, so its state can say so.
	OnGiveUp func(envID int64, reason string)
	// Databases serves services.postgresql; nil refuses such apps with
	// a message saying how to provide PostgreSQL.
	Databases Databases
	// Secrets are variables for the builds and apps of an integration;
	// merge request code that may come from a fork gets none.
	Secrets func(store.Integration) map[string]string
	// Path is PATH for git, builds and apps; default the usual system dirs.
	Path   string
	Logger *slog.Logger
}

// Databases creates the PostgreSQL databases of services.postgresql, one
// role per database. internal/data implements it.
type Databases interface {
	// Ensure creates db if it does not exist and returns its URL.
	Ensure(ctx context.Context, db string) (url string, err error)
	// Clone replaces db by a copy of from (an empty db when from does not
	// exist) and returns its URL.
	Clone(ctx context.Context, db, from string) (url string, err error)
	// Drop removes db and its role; a missing db is not an error.
	Drop(ctx context.Context, db string) error
}

// Runtime runs environments. Its methods are safe for concurrent use.
type Runtime struct {
	opts   Options
	dir    string
	sb     *sandbox
	gitBin string
	log    *slog.Logger
	locks  keyLocks
	ports  ports
	pins   pins

	mu    sync.RWMutex
	envs  map[int64]*running
	hosts map[string]int64

	supervisors atomic.Int64 // goroutines supervising an app
	stopWatch   context.CancelFunc
	sandboxWhy  string // why there is no sandbox, when there is none
}

// running is an environment's app and the backend the proxy sends its
// traffic to: the app's current process, or none while it restarts.
type running struct {
	host     string
	backend  atomic.Pointer[Backend]
	app      *app // guarded by Runtime.mu
	retiring sync.WaitGroup
}

// Backend is one process the proxy may send requests to. It counts
// requests in flight so the old process of a redeploy is stopped only
// after they finished.
type Backend struct {
	Addr     string
	inflight atomic.Int64
	retired  atomic.Bool
}

const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// New prepares the runtime's directory and finds git and bubblewrap.
func New(opts Options) (*Runtime, error) {
	if opts.Dir == "" {
		return nil, errors.New("runtime: Dir must be set")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Path == "" {
		opts.Path = defaultPath
	}
	opts.Limits.Default = withDefaultLimits(opts.Limits.Default)
	if opts.DiskCheckEvery == 0 {
		opts.DiskCheckEvery = 10 * time.Second
	}
	if opts.DiskReserve == 0 {
		opts.DiskReserve = DefaultDiskReserve
	}
	if opts.SandboxUIDBase == 0 {
		opts.SandboxUIDBase = 200000
	}
	if opts.HealthTimeout == 0 {
		opts.HealthTimeout = 2 * time.Minute
	}
	if opts.StopGrace == 0 {
		opts.StopGrace = 10 * time.Second
	}
	if opts.DrainTimeout == 0 {
		opts.DrainTimeout = 30 * time.Second
	}
	opts.Restart = opts.Restart.withDefaults()
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	for _, d := range []string{dir, filepath.Join(dir, "repos"), filepath.Join(dir, "builds"), filepath.Join(dir, "envs"), filepath.Join(dir, "tmp")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("runtime dir: %w", err)
		}
	}
	// Build homes and pid files a killed glenv left behind.
	if olds, err := os.ReadDir(filepath.Join(dir, "tmp")); err == nil {
		for _, o := range olds {
			_ = os.RemoveAll(filepath.Join(dir, "tmp", o.Name()))
		}
	}
	r := &Runtime{opts: opts, dir: dir, log: opts.Logger, envs: map[int64]*running{}, hosts: map[string]int64{},
		ports: ports{inUse: map[int]bool{}}}
	r.gitBin, err = lookPath("git", opts.Path)
	if err != nil {
		return nil, errors.New("runtime: git is not installed; install the git package")
	}
	r.sb = &sandbox{path: opts.Path, uidBase: opts.SandboxUIDBase, asRoot: os.Geteuid() == 0}
	r.sb.dflt, _ = opts.Limits.Resolve(limits.Limits{})
	r.sb.prlimit, _ = lookPath("prlimit", opts.Path)
	r.setupIsolation(dir)
	for _, h := range opts.Hide {
		if abs, err := filepath.Abs(h); err == nil {
			r.sb.hide = append(r.sb.hide, abs)
		}
	}
	if !opts.DisableSandbox {
		if reason := r.probeSandbox(); reason != "" {
			r.sandboxWhy = reason
			r.log.Warn("no sandbox: builds and apps are refused unless --unsafe-no-sandbox, which runs them as glenv's own user", "reason", reason)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.stopWatch = cancel
	go r.watchDisk(ctx, opts.DiskCheckEvery)
	return r, nil
}

// Sandboxed reports whether commands run under bubblewrap.
func (r *Runtime) Sandboxed() bool { return r.sb.enabled() }

// probeSandbox enables bubblewrap when it is installed and works here.
func (r *Runtime) probeSandbox() string {
	bwrap, err := lookPath("bwrap", r.opts.Path)
	if err != nil {
		return "bubblewrap (bwrap) is not installed; install the bubblewrap package"
	}
	if r.sb.asRoot {
		if r.sb.setpriv, err = lookPath("setpriv", r.opts.Path); err != nil {
			return "setpriv is not installed (util-linux); it drops root inside the sandbox"
		}
	}
	if !r.opts.DisableIsolation && r.sb.net == nil {
		return "pasta is not installed (package passt); it gives each environment a network of its own"
	}
	probe := &sandbox{bwrap: bwrap, setpriv: r.sb.setpriv, asRoot: r.sb.asRoot, uidBase: r.sb.uidBase, path: r.sb.path,
		net: r.sb.net, prlimit: r.sb.prlimit}
	if out, err := probe.check(job{shell: "exit 0", appDir: r.dir, uid: probe.uidFor(0)}); err != nil {
		return fmt.Sprintf("the sandbox does not work here (%v: %s); bwrap needs user namespaces when glenv is not root (sysctl user.max_user_namespaces), pasta needs /dev/net/tun", err, strings.TrimSpace(out))
	}
	r.sb.bwrap = bwrap
	return ""
}

func lookPath(name, path string) (string, error) {
	for _, d := range filepath.SplitList(path) {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", exec.ErrNotFound
}

// Acquire returns the address serving host (an environment's host label)
// and a release func to call when the request is done; ok is false when
// no process serves it.
func (r *Runtime) Acquire(host string) (addr string, release func(), ok bool) {
	r.mu.RLock()
	rn := r.envs[r.hosts[host]]
	r.mu.RUnlock()
	if rn == nil {
		return "", nil, false
	}
	for {
		b := rn.backend.Load()
		if b == nil {
			return "", nil, false
		}
		b.inflight.Add(1)
		if b.retired.Load() {
			// Switched away between the load and the count: take the new one.
			b.inflight.Add(-1)
			continue
		}
		return b.Addr, func() { b.inflight.Add(-1) }, true
	}
}

// Deploy fetches, builds and starts req.SHA, and switches the environment's
// traffic to it once its health path answers 2xx; the process it replaces
// stops after its requests in flight finished. From then on the app is
// supervised: when it exits on its own it is started again (RestartPolicy).
// A cancelled ctx (a newer push) stops the deploy and whatever it started.
func (r *Runtime) Deploy(ctx context.Context, req jobs.DeployRequest) error {
	log := func(s string) {
		if req.Log != nil {
			req.Log(redact(s, req.Token))
		}
	}
	logf := func(format string, args ...any) {
		log(time.Now().UTC().Format("15:04:05.000") + " " + fmt.Sprintf(format, args...) + "\n")
	}
	env := req.Env
	untrusted := env.Kind == "mr"
	if err := r.refuseUnsandboxed(env); err != nil {
		return err
	}
	if !r.sb.enabled() {
		logf("warning: no sandbox; the build and app run as glenv's own user")
	}
	// A fork's code cannot be told apart from the project's own MR code
	// here, so with build-forks on every MR is treated as a fork's.
	noSecrets := untrusted && req.Integration.BuildForks
	unlock, err := r.locks.lock(ctx, "env:"+strconv.FormatInt(env.ID, 10))
	if err != nil {
		return err
	}
	defer unlock()
	if err := os.MkdirAll(r.envDir(env.ID), 0o700); err != nil {
		return err
	}

	url := repoURL(req.Integration.BaseURL, req.Integration.ProjectPath)
	repo, err := r.fetch(ctx, req.Integration.ProjectID, url, req.Token, req.SHA, func(s string) { logf("%s", strings.TrimSuffix(s, "\n")) })
	if err != nil {
		return err
	}
	raw, err := r.readFile(ctx, repo, req.SHA, ConfigFile)
	if errors.Is(err, os.ErrNotExist) {
		return MissingConfig(req.SHA)
	}
	if err != nil {
		return err
	}
	cfg, err := ParseAppConfig(raw)
	if err != nil {
		return err
	}
	st := r.loadState(env.ID)
	r.mu.RLock()
	var current *app
	if rn := r.envs[env.ID]; rn != nil {
		current = rn.app
	}
	r.mu.RUnlock()
	if current != nil && current.up() && len(cfg.Paths) > 0 && st.SHA != "" && st.SHA != req.SHA {
		if changed, err := r.changedPaths(ctx, repo, st.SHA, req.SHA); err == nil && !touches(changed, cfg.Paths) {
			logf("no change under paths (%s) since %s: keeping it running", strings.Join(cfg.Paths, ", "), lifecycle.ShortSHA(st.SHA))
			return nil
		}
	}
	var secrets map[string]string
	if r.opts.Secrets != nil && !noSecrets {
		secrets = r.opts.Secrets(req.Integration)
	}
	uid := r.sb.uidFor(env.ID)
	if err := r.applyLimits(cfg, uid, logf); err != nil {
		return err
	}
	buildKey, buildDir, err := r.build(ctx, req, repo, cfg, secrets, uid, logf, log)
	if err != nil {
		return err
	}
	// Until the state names it, nothing else protects the build from pruning.
	defer r.pins.unpin(buildKey)
	appEnv, err := r.prepareData(ctx, req, cfg, &st, noSecrets, buildDir, uid, logf, log)
	if err != nil {
		return err
	}
	for k, v := range secrets {
		appEnv = append(appEnv, k+"="+v)
	}

	port, err := r.ports.take()
	if err != nil {
		return err
	}
	a := &app{r: r, name: env.Name, envID: env.ID, integ: req.Integration.Name, run: cfg.Run, health: cfg.Health,
		job: job{shell: cfg.Run, appDir: buildDir, dataDir: r.dataDir(env.ID), uid: uid, env: appEnv, port: port},
		sha: req.SHA, build: buildKey, redact: func(s string) string { return redact(s, req.Token) },
		logPath: filepath.Join(r.envDir(env.ID), "app.log"),
		log:     r.log.With("integration", req.Integration.Name, "environment", env.Name)}
	started := time.Now()
	p, err := a.launch(port, log)
	if err != nil {
		r.ports.free(port)
		return fmt.Errorf("start `%s`: %w", cfg.Run, err)
	}
	logf("started `%s` on 127.0.0.1:%d; waiting for GET %s to answer 2xx", cfg.Run, port, cfg.Health)
	if err := waitHealthy(ctx, p, cfg.Health, r.opts.HealthTimeout); err != nil {
		p.out.setLive(nil)
		p.stop(0)
		r.ports.free(port)
		return err
	}
	p.out.setLive(nil)
	if st.Build != buildKey {
		st.PrevBuild = st.Build
	}
	st.SHA, st.Build = req.SHA, buildKey
	if err := r.saveState(env.ID, st); err != nil {
		p.stop(0)
		r.ports.free(port)
		return err
	}
	r.switchTo(env, a, p)
	logf("serving %s (healthy %s after start)", lifecycle.ShortSHA(req.SHA), time.Since(started).Round(time.Millisecond))
	go r.pruneBuilds()
	return nil
}

// switchTo makes a the environment's app, served by p, and retires the old
// app's process: it stops once its requests in flight are done.
func (r *Runtime) switchTo(env store.Environment, a *app, p *proc) {
	r.mu.Lock()
	rn := r.envs[env.ID]
	if rn == nil {
		rn = &running{}
		r.envs[env.ID] = rn
	}
	if rn.host != "" && rn.host != env.Host {
		delete(r.hosts, rn.host)
	}
	rn.host = env.Host
	r.hosts[env.Host] = env.ID
	oldApp := rn.app
	rn.app = a
	r.mu.Unlock()
	var old *proc
	if oldApp != nil {
		// First, so that the old app's supervisor neither restarts it nor
		// takes the backend back after the switch.
		old = oldApp.halt()
	}
	b := backendOf(p)
	oldB := rn.backend.Swap(b)
	if !a.supervise(rn, p) {
		// Close took the app before its supervision began: stop p here,
		// nothing else will.
		rn.backend.CompareAndSwap(b, nil)
		b.retired.Store(true)
		p.stop(r.opts.StopGrace)
		r.ports.free(p.port)
	}
	if old == nil {
		if oldB != nil {
			oldB.retired.Store(true)
		}
		return
	}
	rn.retiring.Add(1)
	go func() {
		defer rn.retiring.Done()
		r.retire(oldB, old)
	}()
}

func (r *Runtime) retire(b *Backend, p *proc) {
	if b != nil {
		b.retired.Store(true)
		deadline := time.Now().Add(r.opts.DrainTimeout)
		for b.inflight.Load() > 0 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
	p.stop(r.opts.StopGrace)
	r.ports.free(p.port)
}

// Remove stops the environment's processes and deletes its directory,
// databases and builds no other environment uses: nothing of it is left.
func (r *Runtime) Remove(ctx context.Context, env store.Environment, log func(string)) error {
	if log == nil {
		log = func(string) {}
	}
	logf := func(format string, args ...any) {
		log(time.Now().UTC().Format("15:04:05.000") + " " + fmt.Sprintf(format, args...) + "\n")
	}
	unlock, err := r.locks.lock(ctx, "env:"+strconv.FormatInt(env.ID, 10))
	if err != nil {
		return err
	}
	defer unlock()
	r.mu.Lock()
	rn := r.envs[env.ID]
	delete(r.envs, env.ID)
	var a *app
	if rn != nil {
		a = rn.app
		if r.hosts[rn.host] == env.ID {
			delete(r.hosts, rn.host)
		}
	}
	r.mu.Unlock()
	if rn != nil {
		var p *proc
		if a != nil {
			// Supervision ends before the stop, so no restart races it.
			p = a.halt()
		}
		b := rn.backend.Swap(nil)
		if p != nil {
			logf("stopping the app (port %d)", p.port)
			r.retire(b, p)
		} else if b != nil {
			b.retired.Store(true)
		}
		rn.retiring.Wait()
	}
	st := r.loadState(env.ID)
	var errs []error
	for _, db := range st.Databases {
		if r.opts.Databases == nil {
			errs = append(errs, fmt.Errorf("database %s: no PostgreSQL configured to drop it from", db))
			continue
		}
		if err := r.opts.Databases.Drop(ctx, db); err != nil {
			errs = append(errs, fmt.Errorf("drop database %s: %w", db, err))
			continue
		}
		logf("dropped database %s", db)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if err := os.RemoveAll(r.envDir(env.ID)); err != nil {
		return fmt.Errorf("remove %s: %w", r.envDir(env.ID), err)
	}
	r.pruneBuilds()
	r.sb.byUID.Delete(r.sb.uidFor(env.ID))
	logf("removed %s: no process, port, directory or database left", env.Name)
	return nil
}

// ResetData makes the environment's next deploy with CloneParentData take
// a fresh copy of its parent's data (environment:sync --data): the files
// and databases it has now are replaced then, and hooks.clone runs again.
func (r *Runtime) ResetData(ctx context.Context, envID int64) error {
	unlock, err := r.locks.lock(ctx, "env:"+strconv.FormatInt(envID, 10))
	if err != nil {
		return err
	}
	defer unlock()
	err = os.Remove(filepath.Join(r.envDir(envID), "data.ok"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// AppLog is the file the environment's app writes its output to (the last
// 10 MB or so), for environment:logs.
func (r *Runtime) AppLog(envID int64) string {
	return filepath.Join(r.envDir(envID), "app.log")
}

// Restore brings environments back after glenv restarted: each request is
// an active environment at its deployed SHA. Builds and fetched commits are
// on disk, so this starts processes without building again.
func (r *Runtime) Restore(ctx context.Context, reqs []jobs.DeployRequest) error {
	var errs []error
	for _, req := range reqs {
		if err := r.Deploy(ctx, req); err != nil {
			errs = append(errs, fmt.Errorf("restore %s: %w", req.Env.Name, err))
		}
	}
	return errors.Join(errs...)
}

// Close stops every app (glenv is shutting down).
func (r *Runtime) Close() {
	r.stopWatch()
	r.mu.Lock()
	envs := r.envs
	r.envs, r.hosts = map[int64]*running{}, map[string]int64{}
	apps := map[*running]*app{}
	for _, rn := range envs {
		apps[rn] = rn.app
	}
	r.mu.Unlock()
	var wg sync.WaitGroup
	for _, rn := range envs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if a := apps[rn]; a != nil {
				if p := a.halt(); p != nil {
					p.stop(r.opts.StopGrace)
					r.ports.free(p.port)
				}
			}
			rn.retiring.Wait()
		}()
	}
	wg.Wait()
	if r.sb.cg != nil {
		r.sb.cg.close()
	}
}

// build returns the build of the commit's tree with cfg's build settings,
// running the build commands when no such build exists yet.
func (r *Runtime) build(ctx context.Context, req jobs.DeployRequest, repo string, cfg AppConfig, secrets map[string]string,
	uid int, logf func(string, ...any), log func(string)) (key, dir string, err error) {
	tree, err := r.treeOf(ctx, repo, req.SHA)
	if err != nil {
		return "", "", err
	}
	settings, _ := json.Marshal(struct {
		Integration string
		Build       []string
		Env         map[string]string
		Secrets     []string
		Sandbox     bool
	}{req.Integration.Name, cfg.Build, cfg.Env, sortedKeys(secrets), r.sb.enabled()})
	sum := sha256.Sum256(append([]byte(tree+"\n"), settings...))
	key = hex.EncodeToString(sum[:12])
	dir = filepath.Join(r.dir, "builds", key)
	unlock, err := r.locks.lock(ctx, "build:"+key)
	if err != nil {
		return "", "", err
	}
	defer unlock()
	if _, err := os.Stat(dir + ".ok"); err == nil {
		r.pins.pin(key)
		logf("reusing build %s of tree %s", key, lifecycle.ShortSHA(tree))
		return key, dir, nil
	}
	_ = os.RemoveAll(dir)
	if err := r.checkout(ctx, repo, req.SHA, dir); err != nil {
		_ = os.RemoveAll(dir)
		return "", "", err
	}
	if len(cfg.Build) == 0 {
		logf("checked out %s (no build steps)", lifecycle.ShortSHA(req.SHA))
	}
	if err := r.sb.chown(dir, uid); err != nil {
		return "", "", err
	}
	// A writable HOME for the whole build (package managers keep their
	// caches there), gone with it.
	hostHome, err := os.MkdirTemp(filepath.Join(r.dir, "tmp"), "build-home-")
	if err != nil {
		return "", "", err
	}
	defer os.RemoveAll(hostHome)
	if err := r.sb.chown(hostHome, uid); err != nil {
		return "", "", err
	}
	env := []string{"HOME=" + r.sb.homePath(hostHome), "GLENV_SHA=" + req.SHA, "GLENV_ENVIRONMENT=" + req.Env.Name}
	for k, v := range cfg.Env {
		env = append(env, k+"="+v)
	}
	for k, v := range secrets {
		env = append(env, k+"="+v)
	}
	for i, step := range cfg.Build {
		logf("build step %d/%d: %s", i+1, len(cfg.Build), step)
		cmd := r.sb.command(job{shell: step, appDir: dir, appWritable: true, home: hostHome, env: env, uid: uid})
		if err := runToEnd(ctx, cmd, log, func(s string) string { return redact(s, req.Token) }); err != nil {
			_ = os.RemoveAll(dir)
			if ctx.Err() != nil {
				return "", "", context.Cause(ctx)
			}
			return "", "", fmt.Errorf("build step %d (`%s`) failed: %v; its output is in the activity log", i+1, step, err)
		}
	}
	marker := fmt.Sprintf("tree %s\nsha %s\nbuilt %s\n", tree, req.SHA, time.Now().UTC().Format(time.RFC3339))
	if err := os.WriteFile(dir+".ok", []byte(marker), 0o644); err != nil {
		return "", "", err
	}
	if len(cfg.Build) > 0 {
		logf("built %s as %s", lifecycle.ShortSHA(req.SHA), key)
	}
	r.pins.pin(key)
	return key, dir, nil
}

func (r *Runtime) dataDir(id int64) string { return filepath.Join(r.envDir(id), "data") }

// prepareData makes the environment's data directory and databases. The
// first deploy of an environment with CloneParentData copies the parent's
// files and databases and then runs hooks.clone; later deploys keep the
// data. It returns the app's environment variables.
func (r *Runtime) prepareData(ctx context.Context, req jobs.DeployRequest, cfg AppConfig, st *envState, noSecrets bool,
	buildDir string, uid int, logf func(string, ...any), log func(string)) ([]string, error) {
	env := req.Env
	dd := r.dataDir(env.ID)
	marker := filepath.Join(r.envDir(env.ID), "data.ok")
	_, err := os.Stat(marker)
	fresh := err != nil
	var parent *store.Environment
	if fresh && req.CloneParentData && req.Parent != nil {
		if noSecrets {
			logf("not cloning %s's data: merge request code that may come from a fork (build-forks) gets no secrets", req.Parent.Name)
		} else {
			parent = req.Parent
		}
	}
	if fresh {
		_ = os.RemoveAll(dd)
	}
	for _, d := range []string{"home", "files"} {
		if err := os.MkdirAll(filepath.Join(dd, d), 0o700); err != nil {
			return nil, err
		}
	}
	j := job{appDir: buildDir, dataDir: dd, uid: uid}
	in := r.sb.dataPath(j)
	vars := []string{"HOME=" + in + "/home", "GLENV_DATA_DIR=" + in, "GLENV_SHA=" + req.SHA, "GLENV_ENVIRONMENT=" + env.Name}
	for _, name := range cfg.Files {
		dst := filepath.Join(dd, "files", name)
		if _, err := os.Stat(dst); err != nil {
			src := ""
			if parent != nil {
				src = filepath.Join(r.dataDir(parent.ID), "files", name)
			}
			if _, err := os.Stat(src); src != "" && err == nil {
				started := time.Now()
				stats, err := data.CloneDir(ctx, src, dst)
				if err != nil {
					return nil, fmt.Errorf("clone files %s from %s: %w", name, parent.Name, err)
				}
				logf("cloned files %s from %s: %s in %s", name, parent.Name, stats, time.Since(started).Round(time.Millisecond))
			} else if err := os.MkdirAll(dst, 0o700); err != nil {
				return nil, err
			}
		}
		vars = append(vars, "GLENV_FILES_"+strings.ToUpper(name)+"="+in+"/files/"+name)
	}
	if err := r.sb.chown(dd, uid); err != nil {
		return nil, err
	}
	for i, name := range cfg.Postgres {
		if r.opts.Databases == nil {
			return nil, fmt.Errorf("services.postgresql: no PostgreSQL for services; start glenv with --services-database-url, or install the postgresql package (initdb, pg_ctl) so glenv runs its own")
		}
		db := dbName(env.ID, name)
		if !slices.Contains(st.Databases, db) {
			st.Databases = append(st.Databases, db)
			if err := r.saveState(env.ID, *st); err != nil {
				return nil, err
			}
		}
		var url string
		if parent != nil {
			started := time.Now()
			url, err = r.opts.Databases.Clone(ctx, db, dbName(parent.ID, name))
			if err == nil {
				logf("cloned database %s from %s in %s", name, parent.Name, time.Since(started).Round(time.Millisecond))
			}
		} else {
			url, err = r.opts.Databases.Ensure(ctx, db)
		}
		if err != nil {
			return nil, fmt.Errorf("services.postgresql %s: %w", name, err)
		}
		if i == 0 {
			vars = append(vars, "DATABASE_URL="+url)
		}
		vars = append(vars, "DATABASE_URL_"+strings.ToUpper(name)+"="+url)
	}
	for k, v := range cfg.Env {
		vars = append(vars, k+"="+v)
	}
	if fresh && parent != nil && cfg.Clone != "" {
		logf("hooks.clone: %s", cfg.Clone)
		j.shell, j.env = cfg.Clone, vars
		if err := runToEnd(ctx, r.sb.command(j), log, func(s string) string { return redact(s, req.Token) }); err != nil {
			if ctx.Err() != nil {
				return nil, context.Cause(ctx)
			}
			return nil, fmt.Errorf("hooks.clone (`%s`) failed: %v; the cloned data was not cleaned, so the app was not started (the next deploy clones again)", cfg.Clone, err)
		}
	}
	if fresh {
		if err := os.WriteFile(marker, nil, 0o600); err != nil {
			return nil, err
		}
	}
	return vars, nil
}

// dbName is an environment's database for a service: g<env id>_<name>,
// within PostgreSQL's 63 characters.
func dbName(envID int64, name string) string {
	return "g" + strconv.FormatInt(envID, 10) + "_" + name
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
