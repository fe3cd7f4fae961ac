package server

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/glenv/glenv/internal/config"
	"github.com/glenv/glenv/internal/jobs"
	"github.com/glenv/glenv/internal/proxy"
	"github.com/glenv/glenv/internal/replica"
	"github.com/glenv/glenv/internal/secret"
	"github.com/glenv/glenv/internal/store"
)

// replicas is this process's part in running several replicas: on SQLite
// the lock that keeps it alone, on PostgreSQL its registration.
type replicas struct {
	unlock   func() // SQLite: release the single-serve lock
	registry *replica.Registry
	owning   bool // the process runtime: environments have owners
}

// lockSQLite refuses a second serve on the same SQLite file (issue 16).
func lockSQLite(cfg config.Config) (func(), error) {
	path := store.SQLiteFile(cfg.DatabaseURL, cfg.DataDir)
	if path == "" {
		return func() {}, nil
	}
	return replica.LockSQLite(path)
}

// joinReplicas registers this replica on PostgreSQL. With the process
// runtime, the environments' runtime jobs go to their owner's queue.
func joinReplicas(ctx context.Context, st *store.Store, cfg config.Config, log *slog.Logger, r *replicas, deps *jobs.Deps, qc *jobs.QueueConfig) error {
	if st.Dialect != store.Postgres {
		return nil
	}
	reg, err := replica.Register(ctx, st, replica.Options{Address: cfg.ReplicaAddress, Heartbeat: cfg.ReplicaHeartbeat,
		DeadAfter: cfg.ReplicaDeadAfter, Logger: log})
	if err != nil {
		return err
	}
	r.registry = reg
	qc.ClientID = replica.ClientID(reg.ID())
	if cfg.Runtime == "process" {
		r.owning = true
		deps.Placement = replica.Placement{R: reg}
		qc.OwnQueue = reg.Queue()
	}
	return nil
}

// relays is the proxy's way to the replicas that run other environments
// (nil unless environments have owners).
func (r *replicas) relays(box *secret.Box) proxy.Replicas {
	if r.registry == nil || !r.owning {
		return nil
	}
	return &replica.Relays{R: r.registry, Box: box}
}

// appLogs relays requests for app output to the replica that runs the
// environment, whose disk holds it (next alone unless environments have
// owners).
func (r *replicas) appLogs(box *secret.Box, next http.Handler) http.Handler {
	if r.registry == nil || !r.owning {
		return next
	}
	return &replica.AppLogs{Relays: &replica.Relays{R: r.registry, Box: box}, Next: next}
}

// run heartbeats until ctx ends; lost ends the serve when the others
// declared this replica dead.
func (r *replicas) run(ctx context.Context, q *jobs.Environments, lost func()) {
	if r.registry == nil {
		return
	}
	r.registry.Run(ctx, q.TakeOver, lost)
}

// leave marks this replica stopped before the database closes.
func (r *replicas) leave(ctx context.Context, log *slog.Logger) {
	if r.registry == nil {
		return
	}
	if err := r.registry.Leave(ctx); err != nil {
		log.Warn("mark replica stopped", "err", err)
	}
}

func (r *replicas) close() {
	if r.unlock != nil {
		r.unlock()
	}
}
