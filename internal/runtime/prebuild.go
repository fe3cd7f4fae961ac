package runtime

import (
	"context"
	"os"
	"strconv"

	"github.com/glenv/glenv/internal/gitsha"
)

// Prebuild fetches and builds req.SHA for an environment that does not run
// (issue 17, --prebuild-branches), without preparing data or starting
// anything: the build is kept under the key a deploy of the same tree and
// settings looks for, so activating the environment later reuses it and
// starts in the time of a redeploy of a built tree (Gitpod's prebuilds).
// The environment's state names the build, so pruning keeps it until the
// environment is removed or another prebuild replaces it.
//
// It holds the environment's lock like Deploy: an activation arriving
// during a prebuild waits for it and then reuses its build instead of
// building the same tree twice.
func (r *Runtime) Prebuild(ctx context.Context, req DeployRequest) error {
	d, err := r.newDeploy(req)
	if err != nil {
		return err
	}
	unlock, err := r.locks.lock(ctx, "env:"+strconv.FormatInt(d.env.ID, 10))
	if err != nil {
		return err
	}
	defer unlock()
	if err := os.MkdirAll(r.envDir(d.env.ID), 0o700); err != nil {
		return err
	}
	if err := r.fetchSource(ctx, d); err != nil {
		return err
	}
	defer d.pack.close()
	if _, err := r.configure(ctx, d); err != nil {
		return err
	}
	if err := r.buildStage(ctx, d); err != nil {
		return err
	}
	defer r.pins.unpin(d.buildKey)
	st := d.st
	old := st.Prebuild
	st.Prebuild = d.buildKey
	if err := r.saveState(d.env.ID, st); err != nil {
		return err
	}
	d.logf("prebuilt %s as %s: activating the environment reuses it", gitsha.Short(req.SHA), d.buildKey)
	if old != "" && old != d.buildKey {
		go r.pruneBuilds()
	}
	return nil
}
