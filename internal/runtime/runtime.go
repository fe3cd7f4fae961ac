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
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/glenv/glenv/internal/limits"
	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/variable"
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
	// Variables resolves an environment's variables for one deploy
	// (internal/variables): its build's and its app's, over .glenv.yml's
	// env (repo), and the sensitive values to redact from every log. fork
	// is merge request code that may come from a fork: it gets no
	// sensitive variable. nil: .glenv.yml's env only.
	Variables func(ctx context.Context, in store.Integration, env store.Environment, repo map[string]string, fork bool) (variable.Deploy, error)
	// HostResolvConf is the resolver configuration environments' DNS
	// follows (default /etc/resolv.conf). Another file is shown to pasta
	// at /etc/resolv.conf in a mount namespace of its own, which needs
	// root (tests use it to stand in for the host's resolver).
	HostResolvConf string
	// Path is PATH for git, builds and apps; default the usual system dirs.
	Path   string
	Logger *slog.Logger
}

// Databases creates the PostgreSQL databases of services.postgresql, one
// role per database. internal/data implements it.
type Databases interface {
	// Ensure creates db if it does not exist and returns its URL. Its role
	// may hold at most connLimit connections (0: the server's default).
	Ensure(ctx context.Context, db string, connLimit int) (url string, err error)
	// Clone replaces db by a copy of from (an empty db when from does not
	// exist) and returns its URL.
	Clone(ctx context.Context, db, from string, connLimit int) (url string, err error)
	// Drop removes db and its role; a missing db is not an error.
	Drop(ctx context.Context, db string) error
	// Databases lists the databases whose names start with prefix: what
	// an environment holds when its state file was lost.
	Databases(ctx context.Context, prefix string) ([]string, error)
}

// Runtime runs environments. Its methods are safe for concurrent use.
type Runtime struct {
	opts   Options
	dir    string
	sb     *sandbox
	gitBin string
	http   *http.Client // fetches (smarthttp.go)
	log    *slog.Logger
	locks  keyLocks
	ports  ports
	pins   pins
	// commits remembers each fetched commit's tree and .glenv.yml.
	commits commitCache
	// spare is the next deploy's app network, made ahead (prenet.go).
	spare spareNet
	// beforeSwitch, when set (tests only), runs as a deploy of the
	// environment it is given is about to switch traffic.
	beforeSwitch func(envID int64)
	// maintaining holds the cache repositories git maintenance runs on;
	// Close waits for upkeep, and none starts after it (upkeepClosed).
	maintaining  sync.Map
	upkeepMu     sync.Mutex
	upkeepClosed bool
	upkeep       sync.WaitGroup

	mu    sync.RWMutex
	envs  map[int64]*running
	hosts map[string]int64

	supervisors atomic.Int64 // goroutines supervising an app
	stopWatch   context.CancelFunc
	quit        chan struct{} // closed when Close begins: nothing waits to settle then
	quitOnce    sync.Once
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
	// first is closed once it finished its first request (settle.go);
	// nil: nothing waits for it.
	first *firstAnswer
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
	// Nothing glenv inherited may reach an app (fds.go).
	if err := closeInheritedOnExec(); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	for _, d := range []string{dir, filepath.Join(dir, "repos"), filepath.Join(dir, "builds"), filepath.Join(dir, "envs"), filepath.Join(dir, "tmp")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("runtime dir: %w", err)
		}
	}
	// Build homes and pid files a killed glenv left behind, and the pasta
	// daemons those pid files name.
	if n := StopLeftPasta(dir); n > 0 {
		opts.Logger.Info("stopped the network helpers (pasta) a killed glenv left running", "count", n)
	}
	if olds, err := os.ReadDir(filepath.Join(dir, "tmp")); err == nil {
		for _, o := range olds {
			_ = os.RemoveAll(filepath.Join(dir, "tmp", o.Name()))
		}
	}
	r := &Runtime{opts: opts, dir: dir, log: opts.Logger, envs: map[int64]*running{}, hosts: map[string]int64{},
		ports: ports{inUse: map[int]bool{}}, quit: make(chan struct{})}
	r.http = fetchClient()
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
		return b.Addr, func() { b.inflight.Add(-1); b.first.done() }, true
	}
}

// Deploy fetches, builds and starts req.SHA, and switches the environment's
// traffic to it once its health path answers 2xx; the process it replaces
// stops after its requests in flight finished. From then on the app is
// supervised: when it exits on its own it is started again (RestartPolicy).
// A cancelled ctx (a newer push) stops the deploy and whatever it started.
//
// It is a pipeline of stages, each in the file of its name: fetch
// (fetch.go), configure (configure.go), build (build.go), prepare data
// (prepare.go), start (start.go) and switch (switch.go). A stage that fails
// ends the deploy; what the earlier ones made is kept for the next one
// (the fetched commit, the build) or undone by the stage itself.
func (r *Runtime) Deploy(ctx context.Context, req DeployRequest) (err error) {
	d, err := r.newDeploy(req)
	if err != nil {
		return err
	}
	// The error becomes the activity's result, which GitLab shows.
	defer func() { err = d.redactErr(err) }()
	unlock, err := r.locks.lock(ctx, "env:"+strconv.FormatInt(d.env.ID, 10))
	if err != nil {
		return err
	}
	defer unlock()
	if err := os.MkdirAll(r.envDir(d.env.ID), 0o700); err != nil {
		return err
	}
	d.phases = newPhases()
	// The app's network is made while the code is fetched and built.
	d.ahead = r.netAhead(ctx, d.logf)
	defer d.ahead.release(r)
	if d.ahead != nil {
		// The next deploy's network is made once this one is done and its
		// new process answered a first request, not while its app starts
		// or answers: pasta's start would compete with both (prenet.go).
		// With it, the next deploy's sandbox is staged (prestage.go).
		defer func() { r.spare.refillFor(r, d.switched, d.env.ID, d.uid) }()
	}
	// The app's sandbox is set up while the code is fetched (stage.go);
	// whatever the deploy does not use of it goes when it ends.
	d.staging = r.stageApp(d)
	defer func() { d.takeStaged().discard() }()
	if err := r.fetchSource(ctx, d); err != nil {
		return err
	}
	defer d.pack.close()
	d.phases.done("fetch")
	if unchanged, err := r.configure(ctx, d); err != nil || unchanged {
		return err
	}
	d.phases.done("configure")
	if err := r.buildStage(ctx, d); err != nil {
		return err
	}
	d.phases.done("build")
	// Until the state names it, nothing else protects the build from pruning.
	defer r.pins.unpin(d.buildKey)
	if err := r.prepareData(ctx, d); err != nil {
		return err
	}
	d.phases.done("data")
	a, p, err := r.start(ctx, d)
	if err != nil {
		return err
	}
	if err := r.switchStage(d, a, p); err != nil {
		return err
	}
	d.phases.done("switch")
	d.logf("%s%s", PhasesPrefix, d.phases)
	return nil
}

// deploy is one Deploy as it moves through its stages: each stage reads
// what the ones before it filled in.
type deploy struct {
	req  DeployRequest
	env  store.Environment
	log  func(string)                  // raw output (build steps, hooks)
	logf func(format string, a ...any) // one timestamped line
	// noSecrets: merge request code from a fork (store.Environment.FromFork).
	noSecrets bool
	uid       int // the environment's uid when glenv is root

	repo     string    // fetch: the cache repository holding req.SHA
	pack     *packView // fetch: the pack it came in, when it was fetched now
	cfg      AppConfig // configure
	st       envState  // configure: what the environment ran and holds
	secrets  map[string]string
	buildKey string // build
	buildDir string
	appEnv   []string  // prepare data: the app's variables
	started  time.Time // start: when the new process was started

	// vars are the variables (configure, when Options.Variables is set);
	// sensitive the values redacted from every line logged, set before
	// any command runs.
	vars      *variable.Deploy
	sensitive []string

	switched *Backend  // switch: the new process's, once traffic goes to it
	phases   *phases   // how long each stage took, for the log
	ahead    *netAhead // the app's network, made while the deploy runs
	// staging is the app's sandbox, being set up while the deploy
	// fetches (stage.go); nil once taken, or when none is staged.
	staging   <-chan *stagedApp
	staged    *stagedApp // build: taken from staging; start: nil once used
	freshData bool       // prepare data: the data directory was made anew
}

// newDeploy checks that req may run here and sets up its logging.
func (r *Runtime) newDeploy(req DeployRequest) (*deploy, error) {
	d := &deploy{req: req, env: req.Env}
	d.log = func(s string) {
		if req.Log != nil {
			req.Log(d.redact(s))
		}
	}
	d.logf = func(format string, args ...any) {
		d.log(time.Now().UTC().Format("15:04:05.000") + " " + fmt.Sprintf(format, args...) + "\n")
	}
	if err := r.refuseUnsandboxed(d.env); err != nil {
		return nil, err
	}
	if !r.sb.enabled() {
		d.logf("warning: no sandbox; the build and app run as glenv's own user")
	}
	d.noSecrets = d.env.Kind == "mr" && d.env.FromFork
	d.uid = r.sb.uidFor(d.env.ID)
	return d, nil
}

// redactor hides the deploy's token and sensitive values in text that
// may be logged.
func (d *deploy) redactor() func(string) string { return d.redact }

// redactErr is err with its text redacted; errors.Is and As still see
// the original.
func (d *deploy) redactErr(err error) error {
	if err == nil || len(d.sensitive) == 0 {
		return err
	}
	if text := d.redact(err.Error()); text != err.Error() {
		return &redactedErr{err: err, text: text}
	}
	return err
}

type redactedErr struct {
	err  error
	text string
}

func (r *redactedErr) Error() string { return r.text }
func (r *redactedErr) Unwrap() error { return r.err }

func (d *deploy) redact(s string) string {
	s = redact(s, d.req.Token)
	for _, v := range d.sensitive {
		s = strings.ReplaceAll(s, v, "[REDACTED]")
	}
	return s
}

// buildEnv and runEnv are the variables of the build steps and of the
// app and hooks.clone beyond glenv's own: .glenv.yml's env, with the
// variables over it when they are resolved.
func (d *deploy) buildEnv() map[string]string {
	if d.vars != nil {
		return d.vars.Build
	}
	return d.cfg.Env
}

func (d *deploy) runEnv() map[string]string {
	if d.vars != nil {
		return d.vars.Run
	}
	return d.cfg.Env
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
	r.spare.dropStaged(env.ID) // after the app left r.envs, as Pause
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
			b.out()
		}
		rn.retiring.Wait()
	}
	st, err := r.loadState(ctx, env.ID)
	if err != nil {
		return err
	}
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
	if r.sb.cg != nil {
		// Nothing of it runs any more; its cgroup (and limits) go too.
		r.sb.cg.removeEnv(r.sb.uidFor(env.ID))
	}
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
	// The sandbox staged for the next deploy mounts the data this drops.
	r.spare.dropStaged(envID)
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
func (r *Runtime) Restore(ctx context.Context, reqs []DeployRequest) error {
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
	r.quitOnce.Do(func() { close(r.quit) })
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
	r.upkeepMu.Lock()
	r.upkeepClosed = true
	r.upkeepMu.Unlock()
	r.upkeep.Wait()
	r.spare.close()
	if r.sb.cg != nil {
		// Nothing of this runtime runs any more: its cgroups go too, or
		// every runtime that ever closed (each test's, each data dir's)
		// would leave its base and environment cgroups behind for good.
		r.sb.cg.clear()
		r.sb.cg.close()
	}
}
