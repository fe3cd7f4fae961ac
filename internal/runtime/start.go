package runtime

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// start is the deploy's fifth stage: the app's new process on a free port
// of 127.0.0.1, in its sandbox, waited for until its health path answers
// 2xx. A process that never gets healthy is stopped and its port freed.
func (r *Runtime) start(ctx context.Context, d *deploy) (*app, *proc, error) {
	cfg, env := d.cfg, d.env
	appEnv := d.appEnv
	for k, v := range d.secrets {
		appEnv = append(appEnv, k+"="+v)
	}
	// The namespace made ahead forwards no database port: an app with
	// services.postgresql gets bwrap's own, connected at its start.
	var ns *netNS
	var port int
	if len(cfg.Postgres) == 0 {
		ns, port = d.ahead.take()
	}
	if ns != nil {
		// Launched, the app holds the namespace and pasta; unlaunched,
		// both end here.
		defer ns.close()
	} else {
		var err error
		if port, err = r.ports.take(); err != nil {
			return nil, nil, err
		}
	}
	a := &app{r: r, name: env.Name, envID: env.ID, integ: d.req.Integration.Name, run: cfg.Run, health: cfg.Health,
		job: job{shell: cfg.Run, appDir: d.buildDir, dataDir: r.dataDir(env.ID), uid: d.uid, env: appEnv, port: port},
		sha: d.req.SHA, build: d.buildKey, redact: d.redactor(),
		logPath: filepath.Join(r.envDir(env.ID), "app.log"),
		log:     r.log.With("integration", d.req.Integration.Name, "environment", env.Name)}
	started := time.Now()
	var p *proc
	var err error
	if s := d.takeStaged(); s != nil {
		if ns != nil && s.matches(a.job, ns, d.buildDir, r.sb.limitsFor(d.uid)) {
			// Its sandbox was set up while the code was fetched: only the
			// command is left to run.
			if p, err = s.use(ctx, d.log, d.redactor()); err == nil {
				p.sha, p.build = a.sha, a.build
				if s.early {
					d.logf("the app's sandbox was set up before the push, when the previous deploy settled")
				} else {
					d.logf("the app's sandbox was set up while the commit was fetched")
				}
			} else if ctx.Err() == nil {
				d.logf("the sandbox set up ahead could not be used (%v); starting another", err)
				p, err = nil, nil
			}
			_ = os.RemoveAll(s.slot)
		} else {
			s.discard()
		}
	}
	if p == nil && err == nil {
		p, err = a.launchIn(ns, port, d.log)
	}
	if err != nil {
		r.ports.free(port)
		return nil, nil, fmt.Errorf("start `%s`: %w", cfg.Run, err)
	}
	d.logf("started `%s` on 127.0.0.1:%d; waiting for GET %s to answer 2xx", cfg.Run, port, cfg.Health)
	d.phases.done("sandbox")
	if err := waitHealthy(ctx, p, cfg.Health, r.opts.HealthTimeout); err != nil {
		p.out.setLive(nil)
		p.stop(0)
		r.ports.free(port)
		return nil, nil, err
	}
	p.out.setLive(nil)
	d.started = started
	d.phases.done("health")
	return a, p, nil
}
