package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/glenv/glenv/internal/data"
	"github.com/glenv/glenv/internal/store"
)

// The environment's data directory (envs/<id>/data, /data in the sandbox)
// belongs to its app, which may change it at any moment, also while glenv
// works on it as root. So glenv never touches it through a path:
//
//   - A fresh directory (first deploy, or after environment:sync --data) is
//     made in envs/<id>/data.new, which no sandbox has ever seen and which
//     lies in glenv's private envs/<id> (root, 0700): the parent's files are
//     cloned, the tree is given to the environment's uid, hooks.clone runs,
//     and only then is it renamed into place.
//   - A directory the app has had is never walked or chowned again; only
//     missing top-level directories (home, files/<name>) are made, by
//     descriptor, refusing symlinks (data.EnsureDirs).

// prepareData is the deploy's fourth stage: the environment's data
// directory and databases. The first deploy of an environment with
// CloneParentData copies the parent's files and databases and then runs
// hooks.clone; later deploys keep the data. It fills in the app's
// variables.
func (r *Runtime) prepareData(ctx context.Context, d *deploy) error {
	env := d.env
	marker := filepath.Join(r.envDir(env.ID), "data.ok")
	_, err := os.Stat(marker)
	fresh := err != nil
	d.freshData = fresh
	var parent *store.Environment
	if fresh && d.req.CloneParentData && d.req.Parent != nil {
		if d.noSecrets {
			d.logf("not cloning %s's data: %s", d.req.Parent.Name, ForkWithheld)
		} else {
			parent = d.req.Parent
		}
	}
	dir := r.dataDir(env.ID)
	if fresh {
		dir = filepath.Join(r.envDir(env.ID), "data.new")
		if err := r.freshData(ctx, d, dir, parent); err != nil {
			return err
		}
	} else if err := r.keepData(d); err != nil {
		return err
	}
	urls, err := r.databases(ctx, d, parent)
	if err != nil {
		return err
	}
	if fresh && parent != nil && d.cfg.Clone != "" {
		d.logf("hooks.clone: %s", d.cfg.Clone)
		j := job{shell: d.cfg.Clone, appDir: d.buildDir, dataDir: dir, uid: d.uid}
		j.env = r.dataVars(d, j, urls)
		if err := runToEnd(ctx, r.sb.command(j), d.log, d.redactor()); err != nil {
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			return fmt.Errorf("hooks.clone (`%s`) failed: %v; the cloned data was not cleaned, so the app was not started (the next deploy clones again)", d.cfg.Clone, err)
		}
	}
	if fresh {
		if err := r.swapInData(d, dir); err != nil {
			return err
		}
		if err := os.WriteFile(marker, nil, 0o600); err != nil {
			return err
		}
	}
	d.appEnv = r.dataVars(d, job{appDir: d.buildDir, dataDir: r.dataDir(env.ID)}, urls)
	return nil
}

// owner is the uid:gid the environment's files belong to, or -1 when
// glenv keeps them (not root, or no sandbox: everything runs as glenv).
func (r *Runtime) owner(d *deploy) int {
	if r.sb.enabled() && r.sb.asRoot {
		return d.uid
	}
	return -1
}

// freshData makes a new data directory at dir, private to glenv until
// swapInData: the parent's files are cloned into it, then it is given to
// the environment's uid.
func (r *Runtime) freshData(ctx context.Context, d *deploy, dir string, parent *store.Environment) error {
	// A leftover of a deploy that died half-way; nobody else ever saw it.
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return err
	}
	if err := data.EnsureDirs(dir, -1, -1, "home", "files"); err != nil {
		return err
	}
	for _, name := range d.cfg.Files {
		dst := filepath.Join(dir, "files", name)
		if parent != nil {
			started := time.Now()
			stats, err := data.CloneDirBeneath(ctx, r.dataDir(parent.ID), "files/"+name, dst)
			switch {
			case err == nil:
				d.logf("cloned files %s from %s: %s in %s", name, parent.Name, stats, time.Since(started).Round(time.Millisecond))
				continue
			case errors.Is(err, os.ErrNotExist):
				// The parent has no such directory (yet): start empty.
			default:
				return fmt.Errorf("clone files %s from %s: %w", name, parent.Name, err)
			}
		}
		if err := os.Mkdir(dst, 0o700); err != nil {
			return err
		}
	}
	if uid := r.owner(d); uid >= 0 {
		if err := data.ChownTree(dir, uid, uid); err != nil {
			return fmt.Errorf("give the data to the environment's uid: %w", err)
		}
	}
	return nil
}

// keepData makes sure the data directory the environment has kept has
// its top-level directories, without following anything the app put
// there.
func (r *Runtime) keepData(d *deploy) error {
	rels := []string{"data", "data/home", "data/files"}
	for _, name := range d.cfg.Files {
		rels = append(rels, "data/files/"+name)
	}
	uid := r.owner(d)
	if err := data.EnsureDirs(r.envDir(d.env.ID), uid, uid, rels...); err != nil {
		if errors.Is(err, data.ErrLink) {
			return fmt.Errorf("the environment's data: %w; remove that link from the app's data (or take a fresh copy with `glenv environment:sync --data`)", err)
		}
		return err
	}
	return nil
}

// swapInData puts the prepared directory in the place of the old one. The
// old app may still run on the old directory (its sandbox holds it, not
// its path); it is removed, which never follows a symlink (os.RemoveAll
// works by descriptor too).
func (r *Runtime) swapInData(d *deploy, dir string) error {
	dd := r.dataDir(d.env.ID)
	old := filepath.Join(r.envDir(d.env.ID), "data.old")
	if err := os.RemoveAll(old); err != nil {
		return err
	}
	if err := os.Rename(dd, old); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := os.Rename(dir, dd); err != nil {
		return err
	}
	if err := os.RemoveAll(old); err != nil {
		// The old app may still be writing; the next fresh copy or
		// Remove takes what is left.
		r.log.Warn("remove an environment's old data", "environment", d.env.Name, "err", err)
	}
	return nil
}

// databases makes the environment's services.postgresql databases, cloned
// from the parent's when it has one, and returns their URLs by name.
func (r *Runtime) databases(ctx context.Context, d *deploy, parent *store.Environment) (map[string]string, error) {
	urls := map[string]string{}
	for _, name := range d.cfg.Postgres {
		if r.opts.Databases == nil {
			return nil, fmt.Errorf("services.postgresql: no PostgreSQL for services; start glenv with --services-database-url, or install the postgresql package (initdb, pg_ctl) so glenv runs its own")
		}
		db := dbName(d.env.ID, name)
		// Recorded before it exists, so that Remove frees it whatever
		// happens next.
		if !slices.Contains(d.st.Databases, db) {
			d.st.Databases = append(d.st.Databases, db)
			if err := r.saveState(d.env.ID, d.st); err != nil {
				return nil, err
			}
		}
		limit, err := connectionLimit(name, d.cfg.ConnectionLimits[name], d.req.Integration)
		if err != nil {
			return nil, err
		}
		var url string
		if parent != nil {
			started := time.Now()
			url, err = r.opts.Databases.Clone(ctx, db, dbName(parent.ID, name), limit)
			if err == nil {
				d.logf("cloned database %s from %s in %s", name, parent.Name, time.Since(started).Round(time.Millisecond))
			}
		} else {
			url, err = r.opts.Databases.Ensure(ctx, db, limit)
		}
		if err != nil {
			return nil, fmt.Errorf("services.postgresql %s: %w", name, err)
		}
		urls[name] = url
	}
	return urls, nil
}

// dataVars are the variables of hooks.clone and the app for the data
// directory j sees.
func (r *Runtime) dataVars(d *deploy, j job, urls map[string]string) []string {
	in := r.sb.dataPath(j)
	vars := []string{"HOME=" + in + "/home", "GLENV_DATA_DIR=" + in, "GLENV_SHA=" + d.req.SHA, "GLENV_ENVIRONMENT=" + d.env.Name}
	for _, name := range d.cfg.Files {
		vars = append(vars, "GLENV_FILES_"+strings.ToUpper(name)+"="+in+"/files/"+name)
	}
	for i, name := range d.cfg.Postgres {
		if i == 0 {
			vars = append(vars, "DATABASE_URL="+urls[name])
		}
		vars = append(vars, "DATABASE_URL_"+strings.ToUpper(name)+"="+urls[name])
	}
	for k, v := range d.runEnv() {
		vars = append(vars, k+"="+v)
	}
	return vars
}

func (r *Runtime) dataDir(id int64) string { return filepath.Join(r.envDir(id), "data") }

// dbName is an environment's database for a service: g<env id>_<name>,
// within PostgreSQL's 63 characters.
func dbName(envID int64, name string) string {
	return "g" + strconv.FormatInt(envID, 10) + "_" + name
}

// ForkWithheld says, in a deploy's log, why fork code went without
// something glenv has: DESIGN.md's rule, for every runtime.
const ForkWithheld = "code from a fork (a merge request from another project, built with build-forks) gets none of glenv's variables, secrets or its parent's data"
