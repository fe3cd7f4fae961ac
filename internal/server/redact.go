package server

import (
	"context"

	"github.com/glenv/glenv/internal/jobs"
	"github.com/glenv/glenv/internal/redact"
	"github.com/glenv/glenv/internal/runtime"
	"github.com/glenv/glenv/internal/store"
)

// redactingRuntime is the one boundary where the runtime's errors and log
// lines become activity results and logs, which GitLab notes, commit
// statuses and public log links show: host paths are replaced there (see
// internal/redact), so nothing downstream has to remember to.
type redactingRuntime struct {
	rt    jobs.Runtime
	paths *redact.Paths
}

func (r redactingRuntime) Deploy(ctx context.Context, req jobs.DeployRequest) error {
	if log := req.Log; log != nil {
		req.Log = func(line string) { log(r.paths.Text(line)) }
	}
	return r.paths.Error(r.rt.Deploy(ctx, req))
}

func (r redactingRuntime) Remove(ctx context.Context, env store.Environment, log func(string)) error {
	if log != nil {
		inner := log
		log = func(line string) { inner(r.paths.Text(line)) }
	}
	return r.paths.Error(r.rt.Remove(ctx, env, log))
}

// ResetData passes environment:sync --data through to runtimes that keep data.
func (r redactingRuntime) ResetData(ctx context.Context, envID int64) error {
	if d, ok := r.rt.(jobs.DataResetter); ok {
		return r.paths.Error(d.ResetData(ctx, envID))
	}
	return nil
}

// Pause stops a paused environment's app when the runtime can (jobs.AppPauser).
func (r redactingRuntime) Pause(ctx context.Context, envID int64) error {
	if p, ok := r.rt.(jobs.AppPauser); ok {
		return r.paths.Error(p.Pause(ctx, envID))
	}
	return nil
}

// Prebuild builds without running when the runtime can (jobs.Prebuilder);
// otherwise the prebuild completes with nothing done.
func (r redactingRuntime) Prebuild(ctx context.Context, req jobs.DeployRequest) error {
	p, ok := r.rt.(jobs.Prebuilder)
	if !ok {
		return nil
	}
	if log := req.Log; log != nil {
		req.Log = func(line string) { log(r.paths.Text(line)) }
	}
	return r.paths.Error(p.Prebuild(ctx, req))
}

// hostPaths are the directories glenv's texts must not show.
func hostPaths(dataDir, secretKeyFile string) *redact.Paths {
	names := map[string]string{dataDir: "<data-dir>", secretKeyFile: "<secret-key-file>"}
	return redact.NewPaths(names)
}

// redactingRollouts is redactingRuntime for a runtime whose deploys end
// after Deploy returns (runtime.Rollouts: Kubernetes); its failures are
// redacted as the deploy's errors are.
type redactingRollouts struct {
	redactingRuntime
	ro runtime.Rollouts
}

func (r redactingRollouts) WatchRollouts(ended func(context.Context, runtime.RolloutEnd) error) {
	r.ro.WatchRollouts(func(ctx context.Context, end runtime.RolloutEnd) error {
		end.Failure = r.paths.Text(end.Failure)
		return ended(ctx, end)
	})
}

func (r redactingRollouts) RolloutState(ctx context.Context, env store.Environment) (bool, string, error) {
	done, failure, err := r.ro.RolloutState(ctx, env)
	return done, r.paths.Text(failure), r.paths.Error(err)
}
