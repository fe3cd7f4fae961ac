package runtime

import (
	"os"
	"slices"
	"strconv"
)

// A redeploy's app sandbox is staged while its commit is fetched
// (stage.go), but bwrap's set-up then competes for the machine's CPUs with
// the fetch itself (the GitLab side's upload-pack, the pack's writing):
// on two cores the fetch took 28 ms over a lone fetch request, most of it
// beside the staging. So when the spare namespace is made (prenet.go),
// once a deploy's new process answered its first request, the next
// deploy's sandbox is staged in it at once, from the app that now runs:
// the push that follows finds its sandbox set up, and only its commit is
// left to fetch. It is exactly what stageApp would start then, but for
// GLENV_SHA, which is not known before the push: the gate passes it
// (sandbox.go's gateScript exports the SHA written with the gate's line).
//
// It is one sandbox at most (the spare's), running nothing but glenv's
// gate shell. The next deploy of any environment takes or discards it:
// it is used only by a deploy of its environment whose running app is
// still the one it was staged from, with the same data directory; the
// start stage then checks it as any staged sandbox (matches). Pause,
// Remove, ResetData, Close, the app's exit and its replacement by a
// redeploy (switchTo) discard it, so nothing of an environment's app runs
// after those.

// prestaged is a sandbox staged in the spare namespace before any push.
type prestaged struct {
	s    *stagedApp
	env  int64
	from *app        // the running app it was staged from
	data os.FileInfo // its data directory, as mounted
}

// prestage stages the next deploy's sandbox of env in ns; nil where
// stageApp would stage none.
func (r *Runtime) prestage(env int64, uid int, ns *netNS) *prestaged {
	old := r.stageableApp(env, uid)
	if old == nil || !old.up() || !hasVar(old.job.env, "GLENV_SHA") {
		return nil
	}
	data, err := os.Stat(old.job.dataDir)
	if err != nil {
		return nil
	}
	j := old.job
	j.env = append(slices.Clip(old.job.env), "PORT="+strconv.Itoa(ns.port))
	j.port, j.net, j.gated = ns.port, ns, true
	s := r.launchStaged(j, old.redact, old.logPath)
	if s == nil {
		return nil
	}
	return &prestaged{s: s, env: env, from: old, data: data}
}

// takeFor hands the sandbox over to a deploy of sha to env whose running
// app is old and whose namespace is ns, with the deploy's redaction of
// token and GLENV_SHA set at its gate; nil when it was staged for anything
// else or is gone (the caller discards it then).
func (p *prestaged) takeFor(env int64, old *app, ns *netNS, sha, token string) *stagedApp {
	if p == nil || p.env != env || p.from != old || p.s.j.net != ns || !isHex(sha) {
		return nil
	}
	if fi, err := os.Stat(old.job.dataDir); err != nil || !os.SameFile(fi, p.data) {
		return nil
	}
	select {
	case <-p.s.p.done:
		return nil
	default:
	}
	p.s.p.cmd.gateSHA = sha
	p.s.early = true
	plain := func(t string) string { return redact(t, token) }
	p.s.redact.Store(&plain)
	return p.s
}

// discard kills the sandbox; the namespace stays (nothing ran in it but
// glenv's gate shell).
func (p *prestaged) discard() {
	if p != nil {
		p.s.discard()
	}
}

// hasVar reports whether env sets name.
func hasVar(env []string, name string) bool {
	return slices.ContainsFunc(env, func(kv string) bool { return len(kv) > len(name) && kv[len(name)] == '=' && kv[:len(name)] == name })
}

// runningApp is the environment's app, nil when none runs.
func (r *Runtime) runningApp(env int64) *app {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if rn := r.envs[env]; rn != nil {
		return rn.app
	}
	return nil
}
