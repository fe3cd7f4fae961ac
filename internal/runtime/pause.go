package runtime

import (
	"context"
	"strconv"
)

// Pause stops an idle environment's app and keeps everything else: its
// build, fetched commits, data directory and databases stay, so waking it
// is a deploy of a built tree (Deploy reuses the build, as Restore does),
// not a build. Nothing of the environment runs afterwards; its host has no
// backend until the next deploy. It implements jobs.AppPauser.
func (r *Runtime) Pause(ctx context.Context, envID int64) error {
	unlock, err := r.locks.lock(ctx, "env:"+strconv.FormatInt(envID, 10))
	if err != nil {
		return err
	}
	defer unlock()
	r.mu.Lock()
	rn := r.envs[envID]
	delete(r.envs, envID)
	var a *app
	if rn != nil {
		a = rn.app
		if r.hosts[rn.host] == envID {
			delete(r.hosts, rn.host)
		}
	}
	r.mu.Unlock()
	// After the app left r.envs: a sandbox staged for it later is
	// discarded where the spare is filled (prestage.go).
	r.spare.dropStaged(envID)
	if rn == nil {
		return nil
	}
	var p *proc
	if a != nil {
		// Supervision ends before the stop, so no restart races it.
		p = a.halt()
	}
	b := rn.backend.Swap(nil)
	if p != nil {
		r.retire(b, p)
	} else if b != nil {
		b.out()
	}
	rn.retiring.Wait()
	return nil
}
