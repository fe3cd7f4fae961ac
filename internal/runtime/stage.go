package runtime

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/glenv/glenv/internal/limits"
)

// A redeploy's app sandbox is staged while the commit is fetched: bwrap,
// its mounts and namespaces, setpriv and the shell take a sandbox's start
// far longer than their CPU on a busy machine (mount and namespace set-up
// wait on the kernel), and none of it needs the new commit except what is
// in /app. So a deploy of an environment whose app runs starts the new
// app's sandbox at once, in the namespace made ahead (prenet.go), exactly
// as its start would (same command, variables, uid, data, limits and
// namespace) with two differences: /app is an empty directory of its own,
// into which the build then checks the commit out before renaming it into
// the build's place (a bind mount follows the directory, not its name);
// and the sandbox's shell waits on a pipe (its gate) before it runs the
// command. Once the build is there, the start stage compares the command
// it would launch with the staged one: when they are the same, it opens the
// gate and only the app's own start is left; otherwise (.glenv.yml, a
// variable or the limits changed, a build step, a reused build, fresh
// data) the staged sandbox is killed, having run nothing but its shell
// waiting on the gate, and the app starts as before, in the same namespace.
//
// What is staged is guessed from the running app: its command as first
// started, with the new commit's GLENV_SHA. Pushes rarely change more.

// stagedApp is a sandbox started ahead for the deploy's app.
type stagedApp struct {
	slot string        // its /app: empty until the build is checked out into it
	dir  os.FileInfo   // the slot's directory, whatever its name becomes
	j    job           // as launched
	lim  limits.Limits // the environment's limits at its launch
	p    *proc
	// early: staged before the push, in the spare (prestage.go).
	early bool
	// redact is the output's redaction: the token's until the deploy's
	// variables are known, then the deploy's.
	redact atomic.Pointer[func(string) string]
}

// stageApp starts the sandbox of the deploy's app ahead, in the background,
// where it can (glenv makes the app's namespace ahead, the environment's
// app runs and uses no database port, and its data stays): the result is
// read with take, once. A nil channel: nothing was staged. A sandbox
// staged before the push came into the spare namespace the deploy took
// (prestage.go) is handed over at once when it was staged from the app
// that runs now; any other is discarded here.
func (r *Runtime) stageApp(d *deploy) <-chan *stagedApp {
	if d.ahead == nil || d.ahead.ns == nil {
		return nil
	}
	pre := d.ahead.pre
	d.ahead.pre = nil
	old := r.stageableApp(d.env.ID, d.uid)
	if old == nil {
		pre.discard()
		return nil
	}
	j := old.job
	j.env = stagedEnv(old.job.env, d.req.SHA, d.ahead.ns.port)
	j.port, j.net, j.gated = d.ahead.ns.port, d.ahead.ns, true
	ch := make(chan *stagedApp, 1)
	if s := pre.takeFor(d.env.ID, old, d.ahead.ns, d.req.SHA, d.req.Token); s != nil {
		s.j.env = j.env // as the gate makes it: GLENV_SHA is the push's
		ch <- s
		return ch
	}
	pre.discard()
	plain := func(t string) string { return redact(t, d.req.Token) }
	go func() { ch <- r.launchStaged(j, plain, old.logPath) }()
	return ch
}

// stageableApp is the environment's running app when a sandbox may be
// staged from it: it runs as uid, uses no database port (the namespace
// made ahead forwards none) and its data stays (data.ok).
func (r *Runtime) stageableApp(envID int64, uid int) *app {
	r.mu.RLock()
	var old *app
	if rn := r.envs[envID]; rn != nil {
		old = rn.app
	}
	r.mu.RUnlock()
	if old == nil || old.job.uid != uid || len(dbPorts(old.job.env)) > 0 {
		return nil
	}
	if _, err := os.Stat(filepath.Join(r.envDir(envID), "data.ok")); err != nil {
		return nil
	}
	return old
}

// stagedEnv is the running app's environment for a deploy of sha on port:
// its own with the new GLENV_SHA and PORT.
func stagedEnv(env []string, sha string, port int) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if strings.HasPrefix(kv, "GLENV_SHA=") {
			kv = "GLENV_SHA=" + sha
		}
		out = append(out, kv)
	}
	return append(out, "PORT="+strconv.Itoa(port))
}

// launchStaged starts j in an empty slot of its own, its output redacted
// by plain until the deploy's redaction is known; nil when it could not
// (the app then starts as before).
func (r *Runtime) launchStaged(j job, plain func(string) string, logPath string) *stagedApp {
	slot, err := os.MkdirTemp(filepath.Join(r.dir, "tmp"), "app-")
	if err != nil {
		return nil
	}
	// As a build's checkout: the environment's, readable by its uid.
	if err := os.Chmod(slot, 0o755); err != nil || r.sb.chown(slot, j.uid) != nil {
		_ = os.RemoveAll(slot)
		return nil
	}
	fi, err := os.Stat(slot)
	if err != nil {
		_ = os.RemoveAll(slot)
		return nil
	}
	j.appDir = slot
	s := &stagedApp{slot: slot, dir: fi, j: j, lim: r.sb.limitsFor(j.uid)}
	s.redact.Store(&plain)
	out, err := newOutput(logPath)
	if err != nil {
		_ = os.RemoveAll(slot)
		return nil
	}
	p, err := start(r.sb.command(j), out, func(t string) string { return (*s.redact.Load())(t) })
	if err != nil {
		out.close()
		_ = os.RemoveAll(slot)
		r.log.Warn("stage an app's sandbox ahead", "err", err)
		return nil
	}
	p.port = j.port
	s.p = p
	return s
}

// takeStaged waits for the staged sandbox, if one is being staged, and
// returns it (nil when none was staged or it failed); it is the caller's
// to use or discard from then on.
func (d *deploy) takeStaged() *stagedApp {
	if d.staging != nil {
		d.staged = <-d.staging
		d.staging = nil
	}
	s := d.staged
	d.staged = nil
	return s
}

// matches reports whether the staged sandbox runs what the start stage
// would launch: j (with PORT, as launchIn adds it) in the namespace ns, in
// the build the slot became, with the limits lim.
func (s *stagedApp) matches(j job, ns *netNS, buildDir string, lim limits.Limits) bool {
	if !s.p.cmd.isSetUp() {
		return false // failed, or (the build did not wait for it) not yet
	}
	// The build is the very directory the sandbox shows at /app (not one
	// made anew at the slot's name, nor an older build).
	if fi, err := os.Stat(buildDir); err != nil || !os.SameFile(fi, s.dir) {
		return false
	}
	want := j
	want.net = ns
	want.env = append(slices.Clip(j.env), "PORT="+strconv.Itoa(j.port))
	got := s.j
	return got.shell == want.shell && got.dataDir == want.dataDir && got.uid == want.uid && got.port == want.port &&
		got.net == want.net && !got.appWritable && !want.appWritable && got.home == want.home && want.home == "" &&
		s.lim == lim && maps.Equal(envMap(got.env), envMap(want.env))
}

// envMap is env as a process gets it: the last value of a name wins.
func envMap(env []string) map[string]string {
	m := make(map[string]string, len(env))
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

// discard kills the staged sandbox (which ran nothing but its shell,
// waiting on the gate) and removes its slot if the build did not take it.
// The namespace and pasta stay with the deploy.
func (s *stagedApp) discard() {
	if s == nil {
		return
	}
	s.p.stop(0)
	_ = os.RemoveAll(s.slot)
}

// use lets the staged sandbox's command run, with its output going to
// live as well, and the deploy's redaction.
func (s *stagedApp) use(ctx context.Context, live func(string), redactor func(string) string) (*proc, error) {
	s.redact.Store(&redactor)
	s.p.out.setLive(live)
	if err := s.p.cmd.open(ctx); err != nil {
		s.p.out.setLive(nil)
		s.p.stop(0)
		return nil, err
	}
	return s.p, nil
}
