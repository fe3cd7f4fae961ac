package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/glenv/glenv/internal/gitsha"
)

// configure is the deploy's second stage: the commit's .glenv.yml, read
// and validated, the environment's state, and the variables the
// integration gives its builds and apps. unchanged is true when the app
// already runs and the push touched nothing under the file's paths: the
// deploy ends there, keeping it.
func (r *Runtime) configure(ctx context.Context, d *deploy) (unchanged bool, err error) {
	raw, err := r.cachedFile(ctx, d.repo, d.req.SHA, ConfigFile)
	if errors.Is(err, os.ErrNotExist) {
		return false, MissingConfig(d.req.SHA)
	}
	if err != nil {
		return false, err
	}
	if d.cfg, err = ParseAppConfig(raw); err != nil {
		return false, err
	}
	if d.st, err = r.loadState(ctx, d.env.ID); err != nil {
		return false, err
	}
	if r.unchanged(ctx, d) {
		d.logf("no change under paths (%s) since %s: keeping it running", strings.Join(d.cfg.Paths, ", "), gitsha.Short(d.st.SHA))
		return true, nil
	}
	if r.opts.Secrets != nil && !d.noSecrets {
		d.secrets = r.opts.Secrets(d.req.Integration)
	}
	if r.opts.Variables != nil {
		vs, err := r.opts.Variables(ctx, d.req.Integration, d.env, d.cfg.Env, d.noSecrets)
		if err != nil {
			return false, fmt.Errorf("read the environment's variables: %w", err)
		}
		d.vars, d.sensitive = &vs, vs.Sensitive
		if vs.Withheld > 0 {
			d.logf("%d variable(s) withheld: %s", vs.Withheld, ForkWithheld)
		}
	}
	return false, nil
}

// unchanged reports whether the running app may stay: it is up, the file
// has a paths filter and no file under it changed since the running SHA.
func (r *Runtime) unchanged(ctx context.Context, d *deploy) bool {
	r.mu.RLock()
	var current *app
	if rn := r.envs[d.env.ID]; rn != nil {
		current = rn.app
	}
	r.mu.RUnlock()
	if current == nil || !current.up() || len(d.cfg.Paths) == 0 || d.st.SHA == "" || d.st.SHA == d.req.SHA {
		return false
	}
	changed, err := r.changedPaths(ctx, d.repo, d.st.SHA, d.req.SHA)
	return err == nil && !touches(changed, d.cfg.Paths)
}
