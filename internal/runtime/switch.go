package runtime

import (
	"time"

	"github.com/glenv/glenv/internal/gitsha"
	"github.com/glenv/glenv/internal/store"
)

// switchStage is the deploy's last stage: the state records the new SHA
// and build, traffic goes to the new process, and the old one stops once
// its requests in flight are done. Builds no environment uses any more are
// pruned afterwards.
func (r *Runtime) switchStage(d *deploy, a *app, p *proc) error {
	st := d.st
	if st.Build != d.buildKey {
		st.PrevBuild = st.Build
	}
	st.SHA, st.Build = d.req.SHA, d.buildKey
	if st.Prebuild == d.buildKey {
		st.Prebuild = "" // deployed: the state names it as the build now
	}
	if err := r.saveState(d.env.ID, st); err != nil {
		p.stop(0)
		r.ports.free(p.port)
		return err
	}
	if r.beforeSwitch != nil {
		r.beforeSwitch(d.env.ID)
	}
	d.switched = r.switchTo(d.env, a, p)
	d.logf("serving %s (healthy %s after start)", gitsha.Short(d.req.SHA), time.Since(d.started).Round(time.Millisecond))
	go func() {
		r.settled(d.switched)
		r.pruneBuilds()
	}()
	return nil
}

// switchTo makes a the environment's app, served by p, and retires the old
// app's process: it stops once its requests in flight are done and p
// answered its first (settle.go). It returns p's backend.
func (r *Runtime) switchTo(env store.Environment, a *app, p *proc) *Backend {
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
		// A sandbox staged from the old app is of no use to any deploy now
		// (takeFor wants the running app): one a refill staged after this
		// deploy began, and so never took, would otherwise wait with the old
		// app's command until the next deploy. A refill finishing later sees
		// a is running and discards its own (prenet.go).
		r.spare.dropStaged(env.ID)
		// First, so that the old app's supervisor neither restarts it nor
		// takes the backend back after the switch.
		old = oldApp.halt()
	}
	b := backendOf(p)
	b.first = newFirstAnswer()
	oldB := rn.backend.Swap(b)
	if !a.supervise(rn, p) {
		// Close took the app before its supervision began: stop p here,
		// nothing else will.
		rn.backend.CompareAndSwap(b, nil)
		b.out()
		p.stop(r.opts.StopGrace)
		r.ports.free(p.port)
	}
	if old == nil {
		if oldB != nil {
			oldB.out()
		}
		return b
	}
	if oldB != nil {
		// Out of the rotation now; it stops once the new one settled.
		oldB.out()
	}
	rn.retiring.Add(1)
	go func() {
		defer rn.retiring.Done()
		r.settled(b)
		r.retire(oldB, old)
	}()
	return b
}

func (r *Runtime) retire(b *Backend, p *proc) {
	if b != nil {
		b.out()
		deadline := time.Now().Add(r.opts.DrainTimeout)
		for b.inflight.Load() > 0 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
	p.stop(r.opts.StopGrace)
	r.ports.free(p.port)
}
