// Package server wires glenv together: config → store → secret box → queue →
// HTTP routes, and starts and drains them. It holds no logic of its own
// beyond the order things start and stop in.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/riverqueue/river"

	"github.com/glenv/glenv/internal/activitylog"
	"github.com/glenv/glenv/internal/api"
	"github.com/glenv/glenv/internal/auth"
	"github.com/glenv/glenv/internal/config"
	"github.com/glenv/glenv/internal/data"
	"github.com/glenv/glenv/internal/envapi"
	"github.com/glenv/glenv/internal/feedback"
	"github.com/glenv/glenv/internal/gitlab"
	"github.com/glenv/glenv/internal/idle"
	"github.com/glenv/glenv/internal/integration"
	"github.com/glenv/glenv/internal/jobs"
	"github.com/glenv/glenv/internal/kube"
	"github.com/glenv/glenv/internal/lifecycle"
	"github.com/glenv/glenv/internal/proxy"
	"github.com/glenv/glenv/internal/redact"
	"github.com/glenv/glenv/internal/retention"
	"github.com/glenv/glenv/internal/runtime"
	"github.com/glenv/glenv/internal/secret"
	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/variables"
	"github.com/glenv/glenv/internal/web"
	"github.com/glenv/glenv/internal/webhook"
)

// Server is a running glenv.
type Server struct {
	cfg      config.Config
	log      *slog.Logger
	store    *store.Store
	queue    *jobs.Queue
	receiver *webhook.Receiver
	http     *http.Server
	front    *proxy.Front // ahead of http: forwards plain environment requests itself
	listener net.Listener
	box      *secret.Box
	runtime  *runtime.Runtime // nil with --runtime record or kubernetes
	services *data.Services
	paths    *redact.Paths // host paths kept out of what people outside see
	visits   *idle.Visits  // last counted request per environment (--pause-after)
	source   *kube.Source  // --runtime kubernetes: commits served to checkout containers
	vars     *variables.Service
	hub      *web.Hub      // the dashboard's change feed of environment states
	kube     *kube.Runtime // --runtime kubernetes
	replicas replicas      // several serve replicas (PostgreSQL), or SQLite's single-serve lock

	// KubeTransport wraps the Kubernetes client's transport (tests count
	// the calls through it).
	KubeTransport func(http.RoundTripper) http.RoundTripper
}

// Options are what tests may add to a Server.
type Options struct {
	// KubeTransport wraps the Kubernetes client's transport.
	KubeTransport func(http.RoundTripper) http.RoundTripper
}

// New opens everything glenv needs; Run serves until ctx ends.
func New(ctx context.Context, cfg config.Config, log *slog.Logger) (*Server, error) {
	return NewWith(ctx, cfg, log, Options{})
}

// NewWith is New with test options.
func NewWith(ctx context.Context, cfg config.Config, log *slog.Logger, opts Options) (*Server, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("--data-dir %s: %w", cfg.DataDir, err)
	}
	box, err := secret.LoadOrCreateKey(cfg.SecretKeyFile)
	if err != nil {
		return nil, err
	}
	unlock, err := lockSQLite(cfg)
	if err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, cfg.DatabaseURL, cfg.DataDir)
	if err != nil {
		unlock()
		return nil, err
	}
	log.Info("database ready", "dialect", st.Dialect, "location", st.Location)
	if err := seedAdminToken(ctx, st, cfg, log); err != nil {
		st.Close()
		return nil, err
	}
	s := &Server{cfg: cfg, log: log, store: st, KubeTransport: opts.KubeTransport, replicas: replicas{unlock: unlock}}
	tokenFor := func(in store.Integration) (string, error) { return box.Open(in.TokenSealed) }
	remoteFor := func(in store.Integration) (jobs.Remote, error) {
		token, err := tokenFor(in)
		if err != nil {
			return nil, err
		}
		c, err := gitlab.New(in.BaseURL, token, gitlab.Options{})
		if err != nil {
			return nil, err
		}
		return remote{c}, nil
	}
	s.box = box
	s.vars = &variables.Service{Store: st, Box: box}
	var rt jobs.Runtime = jobs.RecordRuntime{}
	var backends proxy.Backends = noBackends{}
	if cfg.Runtime == "process" {
		s.services = &data.Services{URL: cfg.ServicesDatabaseURL, Dir: filepath.Join(cfg.DataDir, "postgresql"),
			ConnectionLimit: cfg.ServicesConnectionLimit, Logger: log}
		s.runtime, err = runtime.New(runtime.Options{Dir: filepath.Join(cfg.DataDir, "runtime"),
			Hide: []string{cfg.DataDir, cfg.SecretKeyFile}, UnsafeNoSandbox: cfg.UnsafeNoSandbox,
			DenyEgress: cfg.EnvironmentEgress == "deny", Limits: cfg.EnvironmentLimits, DiskReserve: cfg.DiskReserve,
			Databases: s.services, Logger: log, Variables: s.vars.ForDeploy,
			OnGiveUp: func(envID int64, reason string) {
				if err := s.queue.AppGaveUp(context.Background(), envID, reason); err != nil {
					log.Warn("mark environment failed", "environment_id", envID, "err", err)
				}
			}})
		if err != nil {
			st.Close()
			return nil, err
		}
		rt, backends = s.runtime, s.runtime
	}
	if cfg.Runtime == "kubernetes" {
		// Environments are reached through the cluster's Ingress, not
		// glenv's proxy: their hosts here answer with the status page.
		k, err := s.newKube(cfg, log)
		if err != nil {
			st.Close()
			return nil, err
		}
		rt, s.kube = k, k
	}
	s.paths = hostPaths(cfg.DataDir, cfg.SecretKeyFile)
	if ro, ok := rt.(runtime.Rollouts); ok {
		rt = redactingRollouts{redactingRuntime{rt: rt, paths: s.paths}, ro}
	} else {
		rt = redactingRuntime{rt: rt, paths: s.paths}
	}
	health := feedback.NewHealth()
	fb := feedback.Deps{Store: st, Token: tokenFor, EnvURL: s.envURL, PublicURL: cfg.PublicURL, LogURL: s.logURL,
		Health: health, Logger: log,
		DashboardURL: func(e store.Environment) string { return web.EnvironmentPath(cfg.PublicURL, e) }}
	keep := retention.New(st, retention.Settings{DeliveryBodies: cfg.DeliveryBodyRetention, Deliveries: cfg.DeliveryRetention,
		DeletedEnvironments: cfg.DeletedEnvironmentRetention, LogMaxSize: cfg.ActivityLogMaxSize, Logs: cfg.ActivityLogRetention,
		ActivityHistory: cfg.ActivityHistory}, log)
	s.visits = idle.NewVisits(nil)
	idleCheck := &idle.Checker{Store: st, Visits: s.visits, Log: log}
	logs := activitylog.New(st, activitylog.Options{MaxSize: cfg.ActivityLogMaxSize, Logger: log})
	s.hub = web.NewHub(st, log)
	deps := jobs.Deps{RemoteFor: remoteFor, TokenFor: tokenFor, Runtime: rt, Logger: log, Logs: logs,
		Register: []func(*river.Workers){feedback.Register(fb), retention.Register(keep), envapi.Register(st, &s.queue, log), idle.Register(idleCheck)}, Feedback: true,
		Changed: s.hub.Changed}
	queueCfg := jobs.QueueConfig{ReconcileInterval: cfg.ReconcileInterval, RescueAfter: cfg.JobRescueAfter, Logger: log, Workers: cfg.Workers}
	if err := joinReplicas(ctx, st, cfg, log, &s.replicas, &deps, &queueCfg); err != nil {
		st.Close()
		s.replicas.close()
		return nil, err
	}
	s.queue, err = jobs.NewQueue(st, deps, queueCfg)
	if err != nil {
		st.Close()
		s.replicas.close()
		return nil, fmt.Errorf("start job queue: %w", err)
	}
	s.queue.River.PeriodicJobs().AddMany(feedback.PeriodicJobs(cfg.ReconcileInterval))
	if cfg.RetentionInterval > 0 { // zero only in a Config that skipped Validate
		s.queue.River.PeriodicJobs().AddMany(retention.PeriodicJobs(cfg.RetentionInterval))
	}
	s.queue.River.PeriodicJobs().AddMany(envapi.PeriodicJobs())
	idleCheck.Pauser = s.queue
	s.vars.Redeploy = s.queue
	s.queue.River.PeriodicJobs().AddMany(idle.PeriodicJobs())
	svc := &integration.Service{Store: st, Box: box, PublicURL: cfg.PublicURL, Applier: s.queue, Log: log}
	svc.Limits, svc.ConnectionLimit = cfg.EnvironmentLimits, cfg.ServicesConnectionLimit
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newStoreCollector(st), health)
	flushers := 1 // SQLite has one writer
	if st.Dialect == store.Postgres {
		flushers = webhook.PostgresFlushers
	}
	s.receiver = webhook.NewReceiver(webhook.Options{Secrets: svc, Persist: s.persist, Flushers: flushers, Log: log,
		Registerer: reg, Prepare: st.PrepareBody})
	// The delivery drain yields to acknowledgements in progress (internal/jobs/yield.go).
	s.queue.Acks = s.receiver
	svc.Changed = s.receiver.Forget
	people := &auth.Service{Store: st, Box: box, PublicURL: cfg.PublicURL, Admins: cfg.AdminList(), Log: log, EnvURL: s.envURL}
	a := &api.API{Store: st, Auth: people, Integrations: svc, Queue: s.queue, Log: log, EnvURL: s.envURL, Variables: s.vars}
	if s.runtime != nil {
		a.AppLog = s.runtime.AppLog
	}
	if s.kube != nil {
		a.AppLogStream = s.kubeLogs
	}

	mux := http.NewServeMux()
	mux.Handle("/hooks/gitlab/{integration}", s.receiver)
	apiV1 := a.Handler()
	mux.Handle("/api/v1/", apiV1)
	mux.Handle("/api/v4/", envapi.NewWithAuth(st, s.queue, log, s.envURL, people))
	people.Routes(mux)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /logs/{id}", s.publicLog)
	if s.source != nil {
		mux.HandleFunc("GET "+kube.TreePath+"{integration}/{sha}", s.kubeTree)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", s.readyz)
	dashboard := &web.Web{Store: st, Auth: people, API: apiV1, Hub: s.hub, Log: log, PublicURL: cfg.PublicURL,
		EnvURL: s.envURL, AppLog: a.AppLog, Health: health}
	if err := dashboard.Routes(mux, s.home); err != nil {
		st.Close()
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	scheme := "http"
	if strings.HasPrefix(cfg.PublicURL, "https://") {
		scheme = "https"
	}
	environments := proxy.New(proxy.Options{EnvDomain: cfg.EnvDomain, Backends: backends, Logger: log,
		Next: bodyDeadline(controlPlaneBodyWithin, s.replicas.appLogs(box, mux)), PublicScheme: scheme, Gate: people.EnvGate, GateOpen: people.EnvOpen,
		Lookup: func(ctx context.Context, host string) (store.Environment, error) {
			return store.GetEnvironmentByHost(ctx, st.Reader(), host)
		},
		Visits: s.visits, Wake: s.queue.Wake, Replicas: s.replicas.relays(box)})
	// No ReadTimeout or WriteTimeout for the whole server: environments
	// stream and take uploads, and logs are followed for hours. Headers
	// must arrive in 10 s; control-plane bodies are bounded by bodyDeadline
	// and the receiver's own deadline.
	s.http = &http.Server{Handler: environments, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	s.front = proxy.NewFront(environments, s.http)
	return s, nil
}

// persist is the receiver's group commit: the deliveries and their job in
// one transaction (jobs.Environments.AcceptDeliveries).
func (s *Server) persist(ctx context.Context, batch []*store.Delivery, queue []bool) ([]bool, error) {
	return s.queue.AcceptDeliveries(ctx, batch, queue)
}

func (s *Server) envURL(e store.Environment) string {
	scheme := "http"
	if strings.HasPrefix(s.cfg.PublicURL, "https://") {
		scheme = "https"
	}
	port := ""
	if _, p, err := net.SplitHostPort(strings.TrimPrefix(strings.TrimPrefix(s.cfg.PublicURL, "https://"), "http://")); err == nil && s.cfg.Runtime != "kubernetes" {
		// On Kubernetes the cluster's Ingress serves environments, on its
		// own ports, not glenv's listener.
		port = ":" + p
	}
	return fmt.Sprintf("%s://%s.%s%s/", scheme, e.Host, s.cfg.EnvDomain, port)
}

// Addr is the address the server listens on (after Listen).
func (s *Server) Addr() string { return s.listener.Addr().String() }

// Listen binds the listener, so callers know the address before Run.
func (s *Server) Listen() error {
	l, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("--listen %s: %w", s.cfg.Listen, err)
	}
	s.listener = l
	return nil
}

// Run serves until ctx is cancelled, then drains: no new requests, in-flight
// ones finish, accepted deliveries are committed, running jobs end.
func (s *Server) Run(ctx context.Context) error {
	defer s.replicas.close()
	// The other replicas may declare this one dead (it stopped
	// heartbeating for too long) and run its environments: it stops then.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wasLost atomic.Bool
	lost := func() { wasLost.Store(true); cancel() }
	if s.listener == nil {
		if err := s.Listen(); err != nil {
			return err
		}
	}
	// The restart goes through the state machine before any job runs:
	// environments caught mid-deploy get a new deploy job, active ones are
	// started again from their builds (in the background, after the commit).
	start, err := s.queue.Restart(ctx)
	if err != nil {
		s.log.Warn("restore environments", "err", err)
	}
	if err := s.queue.Start(ctx); err != nil {
		return fmt.Errorf("start job queue: %w", err)
	}
	if s.runtime != nil {
		go s.restore(ctx, start)
	}
	go s.hub.Run(ctx)
	visitsDone := make(chan struct{})
	visitsCtx, stopVisits := context.WithCancel(context.Background())
	defer stopVisits()
	go func() {
		defer close(visitsDone)
		s.visits.Run(visitsCtx, s.store, time.Minute, s.log)
	}()
	replicasDone := make(chan struct{})
	go func() { defer close(replicasDone); s.replicas.run(ctx, s.queue, lost) }()
	errc := make(chan error, 1)
	go func() { errc <- s.front.Serve(s.listener) }()
	s.log.Info("glenv serving", "listen", s.Addr(), "public_url", s.cfg.PublicURL, "env_domain", s.cfg.EnvDomain)
	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	s.log.Info("draining")
	drain, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	herr := s.front.Shutdown(drain) // and s.http's

	s.receiver.Close()
	stopVisits() // writes the last requests once more
	<-visitsDone
	qerr := s.queue.Stop(drain)
	<-replicasDone
	s.replicas.leave(drain, s.log)
	if s.runtime != nil {
		s.runtime.Close()
	}
	if s.kube != nil {
		s.kube.Close()
	}
	if s.services != nil {
		_ = s.services.Close()
	}
	serr := s.store.Close()
	s.log.Info("stopped")
	var lerr error
	if wasLost.Load() {
		// Exit non-zero, so a supervisor starts this replica again.
		lerr = errors.New("the other replicas declared this one dead (no heartbeat for --replica-dead-after) and run its environments now; start it again to rejoin")
	}
	return errors.Join(herr, qerr, serr, lerr)
}

// restore starts the apps of active environments again after a restart:
// their builds are on disk, so nothing is fetched or built again.
func (s *Server) restore(ctx context.Context, envs []store.Environment) {
	var reqs []runtime.DeployRequest
	integrations := map[string]*runtime.DeployRequest{}
	for _, e := range envs {
		base, ok := integrations[e.IntegrationName]
		if !ok {
			in, err := store.GetIntegration(ctx, s.store.Reader(), e.IntegrationName)
			if err != nil {
				s.log.Warn("restore environment: its integration", "integration", e.IntegrationName, "environment", e.Name, "err", err)
				integrations[e.IntegrationName] = nil
				continue
			}
			token, err := s.box.Open(in.TokenSealed)
			if err != nil {
				s.log.Warn("restore environments: open token", "integration", in.Name, "err", err)
				integrations[e.IntegrationName] = nil
				continue
			}
			base = &runtime.DeployRequest{Integration: in, Token: token}
			integrations[e.IntegrationName] = base
		}
		if base == nil {
			continue
		}
		reqs = append(reqs, runtime.DeployRequest{Integration: base.Integration, Token: base.Token, Env: e, SHA: e.DeployedSHA, Log: func(string) {}})
	}
	if err := s.runtime.Restore(ctx, reqs); err != nil {
		s.log.Warn("restore environments", "err", err)
	}
	s.log.Info("environments restored", "count", len(reqs))
}

// noBackends serves no environment: with --runtime record every
// environment host answers with its status page.
type noBackends struct{}

func (noBackends) Acquire(string) (string, func(), bool) { return "", nil, false }

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		http.Error(w, "database unreachable: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	if ok, err := s.store.Migrated(ctx); err != nil || !ok {
		http.Error(w, "database migrations not applied", http.StatusServiceUnavailable)
		return
	}
	// A full disk fails every webhook: say so before it is full.
	if s.cfg.DiskReserve > 0 {
		if err := runtime.CheckFree(s.cfg.DataDir, s.cfg.DiskReserve); err != nil {
			http.Error(w, "disk: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
	}
	if s.services != nil {
		// Deploys of apps with services.postgresql fail while it is down.
		if err := s.services.Ready(ctx); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
	}
	fmt.Fprintln(w, "ready")
}

func (s *Server) home(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "glenv — preview environments for GitLab\n\nAPI: %s/api/v1/ (Authorization: Bearer <token>)\nGitLab-compatible API: %s/api/v4/projects/:id/environments\nWebhooks: %s/hooks/gitlab/<integration>\n",
		s.cfg.PublicURL, s.cfg.PublicURL, s.cfg.PublicURL)
}

// seedAdminToken makes sure an admin can reach the API: GLENV_ADMIN_TOKEN is
// stored as an admin token; without it, the first start writes a fresh one to
// <data-dir>/admin-token (0600).
func seedAdminToken(ctx context.Context, st *store.Store, cfg config.Config, log *slog.Logger) error {
	if cfg.AdminToken != "" {
		if len(cfg.AdminToken) < 16 {
			return fmt.Errorf("GLENV_ADMIN_TOKEN: must be at least 16 characters; generate one with `head -c24 /dev/urandom | base64`")
		}
		return store.EnsureAPIToken(ctx, st.DB, "admin (GLENV_ADMIN_TOKEN)", store.RoleAdmin, cfg.AdminToken)
	}
	path := filepath.Join(cfg.DataDir, "admin-token")
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	if n, err := store.CountAPITokens(ctx, st.Reader()); err != nil || n > 0 {
		return err
	}
	value := store.NewTokenValue()
	if err := os.WriteFile(path, []byte(value+"\n"), 0o600); err != nil {
		return fmt.Errorf("write admin token: %w", err)
	}
	if _, err := store.CreateAPIToken(ctx, st.DB, "admin (first start)", store.RoleAdmin, value); err != nil {
		return err
	}
	log.Info("admin API token written; use it with --api-token or GLENV_API_TOKEN", "path", path)
	return nil
}

// remote adapts the GitLab client to what reconcile reads.
type remote struct{ c *gitlab.Client }

func (r remote) ListBranches(ctx context.Context, pid int64) (map[string]string, error) {
	return r.c.ListBranches(ctx, pid)
}
func (r remote) ListTags(ctx context.Context, pid int64) (map[string]string, error) {
	return r.c.ListTags(ctx, pid)
}
func (r remote) DefaultBranch(ctx context.Context, pid int64) (string, error) {
	p, err := r.c.GetProject(ctx, strconv.FormatInt(pid, 10))
	return p.DefaultBranch, err
}
func (r remote) ListOpenMergeRequests(ctx context.Context, pid int64) ([]lifecycle.MergeRequest, error) {
	mrs, err := r.c.ListOpenMergeRequests(ctx, pid)
	return integration.MergeRequests(mrs), err
}
