package runtime

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/glenv/glenv/internal/gitsha"
)

// buildStage is the deploy's third stage: the build of the commit's tree
// with the file's build settings, made now or reused, and pinned against
// pruning until the deploy ends.
func (r *Runtime) buildStage(ctx context.Context, d *deploy) (err error) {
	// The environment's limits (cgroups) hold for its build steps as for
	// its app.
	if err := r.applyLimits(d.req.Integration, d.cfg, d.uid, d.logf); err != nil {
		return err
	}
	vars := buildVars{env: d.buildEnv(), secrets: d.secrets, redact: d.redact}
	if d.vars != nil {
		vars.digest = d.vars.BuildDigest
	}
	if d.staged = d.takeStaged(); d.staged != nil && len(d.cfg.Build) == 0 {
		// A checkout made now goes into the staged sandbox's /app.
		vars.stage = d.staged
	}
	d.buildKey, d.buildDir, err = r.build(ctx, d.req, d.repo, d.pack, d.cfg, vars, d.uid, d.logf, d.log)
	return err
}

// buildVars are what a build's steps get beyond glenv's own variables:
// env (.glenv.yml's, with the build-visible variables over it), the
// integration's Secrets, and digest, a keyed digest of env that makes a
// build with other values another build without naming the values.
// redact hides secrets in the steps' output (nil: the token only).
type buildVars struct {
	env, secrets map[string]string
	digest       string
	redact       func(string) string
	// stage, when set, is a staged sandbox whose /app (an empty
	// directory) the commit is checked out into and which is then renamed
	// to the build's place, when the build has no steps and is made now.
	stage *stagedApp
}

// build returns the build of the commit's tree with cfg's build settings,
// running the build commands when no such build exists yet.
func (r *Runtime) build(ctx context.Context, req DeployRequest, repo string, pack *packView, cfg AppConfig, vars buildVars,
	uid int, logf func(string, ...any), log func(string)) (key, dir string, err error) {
	secrets := vars.secrets
	tree, err := r.cachedTree(ctx, repo, req.SHA)
	if err != nil {
		return "", "", err
	}
	settings, _ := json.Marshal(struct {
		Integration string
		Build       []string
		Env         map[string]string
		Secrets     []string
		Sandbox     bool
		Variables   string `json:",omitempty"`
	}{req.Integration.Name, cfg.Build, cfg.Env, sortedKeys(secrets), r.sb.enabled(), vars.digest})
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
		logf("reusing build %s of tree %s", key, gitsha.Short(tree))
		return key, dir, nil
	}
	_ = os.RemoveAll(dir)
	if err := r.checkoutInto(ctx, pack, repo, req.SHA, dir, vars.stage, len(cfg.Build) == 0); err != nil {
		_ = os.RemoveAll(dir)
		return "", "", err
	}
	if len(cfg.Build) == 0 {
		logf("checked out %s (no build steps)", gitsha.Short(req.SHA))
	}
	if err := r.sb.chown(dir, uid); err != nil {
		return "", "", err
	}
	if len(cfg.Build) > 0 {
		if err := r.runSteps(ctx, req, cfg, vars, dir, uid, logf, log); err != nil {
			return "", "", err
		}
	}
	marker := fmt.Sprintf("tree %s\nsha %s\nbuilt %s\n", tree, req.SHA, time.Now().UTC().Format(time.RFC3339))
	if err := os.WriteFile(dir+".ok", []byte(marker), 0o644); err != nil {
		return "", "", err
	}
	if len(cfg.Build) > 0 {
		logf("built %s as %s", gitsha.Short(req.SHA), key)
	}
	r.pins.pin(key)
	return key, dir, nil
}

// checkoutInto checks the commit out into dir: through the staged
// sandbox's /app, renamed into place once the sandbox has mounted it, when
// one is given for a build without steps.
func (r *Runtime) checkoutInto(ctx context.Context, pack *packView, repo, sha, dir string, s *stagedApp, noSteps bool) error {
	if s == nil || !noSteps {
		return r.checkoutOf(ctx, pack, repo, sha, dir)
	}
	if err := r.checkoutOf(ctx, pack, repo, sha, s.slot); err != nil {
		return err
	}
	// Renamed before bwrap bound it, /app would be missing; and a sandbox
	// that failed is not used, whatever the build's name.
	s.p.cmd.waitSetUp(ctx)
	return os.Rename(s.slot, dir)
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// runSteps runs the build steps in dir, each in its sandbox; a failed one
// removes dir.
func (r *Runtime) runSteps(ctx context.Context, req DeployRequest, cfg AppConfig, vars buildVars, dir string, uid int,
	logf func(string, ...any), log func(string)) error {
	secrets := vars.secrets
	// A writable HOME for the whole build (package managers keep their
	// caches there), gone with it.
	hostHome, err := os.MkdirTemp(filepath.Join(r.dir, "tmp"), "build-home-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(hostHome)
	if err := r.sb.chown(hostHome, uid); err != nil {
		return err
	}
	env := []string{"HOME=" + r.sb.homePath(hostHome), "GLENV_SHA=" + req.SHA, "GLENV_ENVIRONMENT=" + req.Env.Name}
	for k, v := range vars.env {
		env = append(env, k+"="+v)
	}
	for k, v := range secrets {
		env = append(env, k+"="+v)
	}
	for i, step := range cfg.Build {
		logf("build step %d/%d: %s", i+1, len(cfg.Build), step)
		cmd := r.sb.command(job{shell: step, appDir: dir, appWritable: true, home: hostHome, env: env, uid: uid})
		redactor := vars.redact
		if redactor == nil {
			redactor = func(s string) string { return redact(s, req.Token) }
		}
		if err := runToEnd(ctx, cmd, log, redactor); err != nil {
			_ = os.RemoveAll(dir)
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			return fmt.Errorf("build step %d (`%s`) failed: %v; its output is in the activity log", i+1, step, err)
		}
	}
	return nil
}
