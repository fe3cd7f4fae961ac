package kube

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/glenv/glenv/internal/gitsha"
	"github.com/glenv/glenv/internal/runtime"
	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/variable"
)

// Options configure the Kubernetes runtime.
type Options struct {
	Client kubernetes.Interface
	Source *Source
	// EnvDomain makes an environment's host: <host label>.<EnvDomain>.
	EnvDomain    string
	IngressClass string
	StorageClass string
	FetchImage   string
	FilesSize    string
	// VolumeClone says how services.files claims get the parent's data
	// (volume.go); empty is auto.
	VolumeClone VolumeClone
	// TreeURL is the signed, expiring URL the checkout container downloads
	// the commit's tree from.
	TreeURL func(integration string, sha string) string
	// Databases serves services.postgresql on the services server; nil
	// refuses such apps with a message saying how to provide one.
	Databases runtime.Databases
	// Secrets are variables for an integration's builds and apps.
	Secrets func(store.Integration) map[string]string
	Logger  *slog.Logger

	// Variables resolves an environment's variables (internal/variables),
	// as for the process runtime. The build and the app share the Secret
	// app-env here, so both get the app's (run-visible) variables.
	Variables func(ctx context.Context, in store.Integration, env store.Environment, repo map[string]string, fork bool) (variable.Deploy, error)
}

// FieldManager owns every field glenv sets through server-side apply.
const FieldManager = "glenv"

// Runtime deploys environments to Kubernetes. Safe for concurrent use.
type Runtime struct {
	opts Options
	c    kubernetes.Interface
	log  *slog.Logger

	mu sync.Mutex
	// applied remembers, per environment, a hash of each object last
	// applied, so a steady push sends only what changed (the Deployment,
	// the Secret with its fresh tree URL, the namespace's SHA label).
	// Lost on restart, which costs one full apply.
	applied map[int64]map[string]string
	// clone remembers how each storage class clones (volume_flow.go).
	clone map[string]cloneDecision

	rollouts *rollouts // the shared watch deploys wait on (rollouts.go)
}

// New returns a runtime on opts.Client.
func New(opts Options) (*Runtime, error) {
	if opts.Client == nil || opts.Source == nil || opts.TreeURL == nil {
		return nil, errors.New("kube: Client, Source and TreeURL must be set")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Runtime{opts: opts, c: opts.Client, log: opts.Logger, applied: map[int64]map[string]string{},
		rollouts: newRollouts(opts.Client)}, nil
}

// WatchRollouts makes Deploy return runtime.ErrRollingOut once it applied
// the objects, and the shared watch report each rollout's end to ended
// (internal/jobs moves the environment on). Call it before the first
// Deploy; it starts the watch at once, so a restarted glenv hears of the
// rollouts that ended while it was down.
func (r *Runtime) WatchRollouts(ended func(context.Context, runtime.RolloutEnd) error) {
	r.rollouts.watch(ended)
}

// RolloutState reads the environment's Deployment now (one API call): the
// deploy's deadline asks it last, in case the watch missed the end.
func (r *Runtime) RolloutState(ctx context.Context, env store.Environment) (bool, string, error) {
	d, err := r.c.AppsV1().Deployments(Namespace(env.Host)).Get(ctx, AppName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, "the Deployment " + Namespace(env.Host) + "/" + AppName + " is gone", nil
	}
	if err != nil {
		return false, "", fmt.Errorf("read Deployment: %w", explain(err))
	}
	done, failure := Rollout(d)
	return done, failure, nil
}

// Close stops the shared watch on glenv's Deployments.
func (r *Runtime) Close() { r.rollouts.close() }

// Deploy reads the commit's .glenv.yml, applies the environment's objects
// and returns once the Deployment rolled out the new SHA (Available, every
// replica updated) or failed (ProgressDeadlineExceeded).
func (r *Runtime) Deploy(ctx context.Context, req runtime.DeployRequest) error {
	logf := func(format string, args ...any) {
		if req.Log != nil {
			req.Log(time.Now().UTC().Format("15:04:05.000") + " " + fmt.Sprintf(format, args...) + "\n")
		}
	}
	env, in := req.Env, req.Integration
	url := strings.TrimRight(in.BaseURL, "/") + "/" + in.ProjectPath + ".git"
	if err := r.opts.Source.Fetch(ctx, in.ProjectID, url, req.Token, req.SHA); err != nil {
		return err
	}
	raw, err := r.opts.Source.ReadFile(ctx, in.ProjectID, req.SHA, runtime.ConfigFile)
	if errors.Is(err, os.ErrNotExist) {
		return runtime.MissingConfig(req.SHA)
	}
	if err != nil {
		return err
	}
	cfg, err := runtime.ParseAppConfig(raw)
	if err != nil {
		return err
	}
	if cfg.Image == "" {
		return &runtime.ConfigError{Problems: []string{"image: required with --runtime kubernetes (the container the checkout runs in); add e.g. `image: python:3.13-slim`"}}
	}
	ns := Namespace(env.Host)
	noSecrets := env.Kind == "mr" && env.FromFork
	secret := map[string]string{TreeURLKey: r.opts.TreeURL(in.Name, req.SHA)}
	if r.opts.Secrets != nil && !noSecrets {
		for k, v := range r.opts.Secrets(in) {
			secret[k] = v
		}
	}
	repoEnv := cfg.Env
	if r.opts.Variables != nil {
		vs, err := r.opts.Variables(ctx, in, env, cfg.Env, noSecrets)
		if err != nil {
			return fmt.Errorf("read the environment's variables: %w", err)
		}
		if vs.Withheld > 0 {
			logf("%d variable(s) withheld: %s", vs.Withheld, runtime.ForkWithheld)
		}
		// vs.Run holds .glenv.yml's env below the variables. A container's
		// own env beats its envFrom, so everything goes into the Secret.
		for k, v := range vs.Run {
			secret[k] = v
		}
		repoEnv = nil
	}
	var parent *store.Environment
	if req.CloneParentData && req.Parent != nil && !noSecrets && (len(cfg.Files) > 0 || len(cfg.Postgres) > 0) {
		// Only an app with data asks whether its namespace is new: one
		// API call fewer for every other new environment in a burst.
		fresh, err := r.fresh(ctx, env.ID, ns, cfg.Files)
		if err != nil {
			return err
		}
		if fresh {
			parent = req.Parent
		}
	}
	dbs, err := r.databases(ctx, env.ID, cfg.Postgres, cfg.ConnectionLimits, parent, secret, logf)
	if err != nil {
		return err
	}
	spec := Spec{Integration: in.Name, EnvName: env.Name, Slug: env.Slug, HostLabel: env.Host,
		Host: env.Host + "." + r.opts.EnvDomain, MRIID: env.MRIID, SHA: req.SHA, EnvID: env.ID, ActivityID: req.ActivityID,
		Image: cfg.Image, FetchImage: r.opts.FetchImage, Build: cfg.Build, Run: cfg.Run, Health: cfg.Health,
		Env: repoEnv, Files: cfg.Files, FilesSize: r.opts.FilesSize, Databases: dbs, Secret: secret,
		IngressClass: r.opts.IngressClass, StorageClass: r.opts.StorageClass}
	if parent != nil && len(cfg.Files) > 0 {
		spec.CloneFrom = Namespace(parent.Host)
		logf("cloning files %s from %s's volumes", strings.Join(cfg.Files, ", "), parent.Name)
	}
	d, err := r.applyAll(ctx, env.ID, spec, logf)
	if err != nil {
		r.forget(env.ID)
		return err
	}
	if done, failure := Rollout(d); failure != "" {
		return errors.New(failure)
	} else if done {
		logf("serving %s (the Deployment was rolled out already)", gitsha.Short(req.SHA))
		return nil
	}
	if r.rollouts.ended != nil {
		// The shared watch reports the rollout's end (WatchRollouts): no
		// worker waits while the cluster works.
		logf("applied %s in namespace %s; the Deployment rolls out", gitsha.Short(req.SHA), ns)
		return runtime.ErrRollingOut
	}
	logf("applied %s in namespace %s; waiting for the Deployment to roll out", gitsha.Short(req.SHA), ns)
	started := time.Now()
	if err := r.waitRolledOut(ctx, d); err != nil {
		return err
	}
	logf("serving %s (rolled out in %s)", gitsha.Short(req.SHA), time.Since(started).Round(time.Millisecond))
	return nil
}

// fresh reports whether the environment's data is still to be made from
// its parent's: it has no namespace yet, or a services.files claim is
// missing from it. A first deploy that failed after its namespace was made
// (a copy Job that failed leaves no claim) clones on its retry, instead of
// starting the environment on empty volumes. An environment applied by
// this process exists: no call.
func (r *Runtime) fresh(ctx context.Context, envID int64, ns string, files []string) (bool, error) {
	r.mu.Lock()
	_, known := r.applied[envID]
	r.mu.Unlock()
	if known {
		return false, nil
	}
	_, err := r.c.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("read namespace %s: %w", ns, err)
	}
	for _, f := range files {
		_, err := r.c.CoreV1().PersistentVolumeClaims(ns).Get(ctx, filesClaim(f), metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		if err != nil {
			return false, fmt.Errorf("read claim %s/%s: %w", ns, filesClaim(f), err)
		}
	}
	return false, nil
}

// databases makes the services.postgresql databases (cloned from the
// parent's on the first deploy) and puts their URLs in the Secret.
func (r *Runtime) databases(ctx context.Context, envID int64, names []string, connLimits map[string]int, parent *store.Environment,
	secret map[string]string, logf func(string, ...any)) ([]string, error) {
	var dbs []string
	for i, name := range names {
		if r.opts.Databases == nil {
			return nil, fmt.Errorf("services.postgresql: no PostgreSQL for services; start glenv with --services-database-url")
		}
		db := dbName(envID, name)
		dbs = append(dbs, db)
		var url string
		var err error
		if parent != nil {
			url, err = r.opts.Databases.Clone(ctx, db, dbName(parent.ID, name), connLimits[name])
			if err == nil {
				logf("cloned database %s from %s", name, parent.Name)
			}
		} else {
			url, err = r.opts.Databases.Ensure(ctx, db, connLimits[name])
		}
		if err != nil {
			return nil, fmt.Errorf("services.postgresql %s: %w", name, err)
		}
		if i == 0 {
			secret["DATABASE_URL"] = url
		}
		secret["DATABASE_URL_"+strings.ToUpper(name)] = url
	}
	return dbs, nil
}

// dbName is the same name the process runtime gives: g<env id>_<name>.
func dbName(envID int64, name string) string {
	return "g" + strconv.FormatInt(envID, 10) + "_" + name
}

// applyAll server-side applies every object whose content changed since
// this process last applied it, and returns the Deployment as the API
// server has it. The objects go in waves: the namespace (and the claims,
// which wait for their data), then the ServiceAccount, Secret, Service and
// Ingress at once (none needs another), then the Deployment, whose pods
// need the ServiceAccount (admission refuses them without it, and the
// ReplicaSet controller then backs off) and the Secret. A new environment
// costs three round trips instead of six.
func (r *Runtime) applyAll(ctx context.Context, envID int64, s Spec, logf func(string, ...any)) (*appsv1.Deployment, error) {
	first := []any{NamespaceObject(s)}
	for _, c := range Claims(s) {
		first = append(first, c)
	}
	waves := [][]any{first, {ServiceAccountObject(s), SecretObject(s), ServiceObject(s), IngressObject(s)}, {DeploymentObject(s)}}
	var applied *appsv1.Deployment
	for i, wave := range waves {
		parallel := i == 1
		g, gctx := errgroup.WithContext(ctx)
		var mu sync.Mutex
		for _, o := range wave {
			do := func() error {
				got, err := r.applyOne(gctx, envID, s, o, logf)
				if d, ok := got.(*appsv1.Deployment); ok {
					mu.Lock()
					applied = d
					mu.Unlock()
				}
				return err
			}
			if parallel {
				g.Go(do)
			} else if err := do(); err != nil {
				return nil, err
			}
		}
		if err := g.Wait(); err != nil {
			return nil, err
		}
	}
	if applied == nil {
		// The Deployment was unchanged (a redeploy of the same SHA): its
		// current state says whether it is rolled out.
		var err error
		if applied, err = r.c.AppsV1().Deployments(Namespace(s.HostLabel)).Get(ctx, AppName, metav1.GetOptions{}); err != nil {
			return nil, fmt.Errorf("read Deployment: %w", err)
		}
	}
	return applied, nil
}

// applyOne applies o unless this process applied the same content last
// (the claims through their own flow), and returns what the API server
// answered (nil when nothing was sent).
func (r *Runtime) applyOne(ctx context.Context, envID int64, s Spec, o any, logf func(string, ...any)) (any, error) {
	body, err := json.Marshal(o)
	if err != nil {
		return nil, err
	}
	key, sum := objectKey(o), hash(body)
	if r.unchanged(envID, key, sum) {
		return nil, nil
	}
	if c, ok := o.(*corev1.PersistentVolumeClaim); ok {
		if err := r.makeClaim(ctx, s, c, logf); err != nil {
			return nil, err
		}
		r.remember(envID, key, sum)
		return nil, nil
	}
	got, err := r.apply(ctx, s, o, body)
	if _, ok := o.(*corev1.Service); ok && apierrors.IsInvalid(err) {
		got, err = r.recreateService(ctx, s, o, body, logf)
	}
	if err != nil {
		return nil, fmt.Errorf("apply %s: %w", key, explain(err))
	}
	r.remember(envID, key, sum)
	return got, nil
}

func (r *Runtime) apply(ctx context.Context, s Spec, o any, body []byte) (any, error) {
	ns := Namespace(s.HostLabel)
	force := true
	po := metav1.PatchOptions{FieldManager: FieldManager, Force: &force}
	switch o := o.(type) {
	case *corev1.Namespace:
		return r.c.CoreV1().Namespaces().Patch(ctx, o.Name, types.ApplyPatchType, body, po)
	case *corev1.Secret:
		return r.c.CoreV1().Secrets(ns).Patch(ctx, o.Name, types.ApplyPatchType, body, po)
	case *corev1.ServiceAccount:
		return r.c.CoreV1().ServiceAccounts(ns).Patch(ctx, o.Name, types.ApplyPatchType, body, po)
	case *appsv1.Deployment:
		return r.c.AppsV1().Deployments(ns).Patch(ctx, o.Name, types.ApplyPatchType, body, po)
	case *corev1.Service:
		return r.c.CoreV1().Services(ns).Patch(ctx, o.Name, types.ApplyPatchType, body, po)
	case *networkingv1.Ingress:
		return r.c.NetworkingV1().Ingresses(ns).Patch(ctx, o.Name, types.ApplyPatchType, body, po)
	}
	return nil, fmt.Errorf("kube: cannot apply %T", o)
}

func objectKey(o any) string {
	m, _ := o.(metav1.ObjectMetaAccessor)
	name := ""
	if m != nil {
		name = m.GetObjectMeta().GetName()
	}
	return fmt.Sprintf("%T/%s", o, name)
}

func hash(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func (r *Runtime) unchanged(envID int64, key, sum string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.applied[envID][key] == sum
}

func (r *Runtime) remember(envID int64, key, sum string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.applied[envID] == nil {
		r.applied[envID] = map[string]string{}
	}
	r.applied[envID][key] = sum
}

func (r *Runtime) forget(envID int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.applied, envID)
}

// explain adds what to do to the API server's most common refusals.
func explain(err error) error {
	switch {
	case apierrors.IsForbidden(err):
		return fmt.Errorf("%w; give glenv's service account the RBAC rules listed in the README (Running on Kubernetes)", err)
	case apierrors.IsInvalid(err):
		return fmt.Errorf("%w; check image, health and services in .glenv.yml", err)
	}
	return err
}

// Remove deletes the environment's namespace (and so everything in it),
// waits until it is gone, then drops its databases.
func (r *Runtime) Remove(ctx context.Context, env store.Environment, log func(string)) error {
	logf := func(format string, args ...any) {
		if log != nil {
			log(time.Now().UTC().Format("15:04:05.000") + " " + fmt.Sprintf(format, args...) + "\n")
		}
	}
	r.forget(env.ID)
	name := Namespace(env.Host)
	nsc := r.c.CoreV1().Namespaces()
	ns, err := nsc.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		logf("namespace %s is already gone", name)
		return nil
	}
	if err != nil {
		return fmt.Errorf("read namespace %s: %w", name, explain(err))
	}
	var dbs []string
	if v := ns.Annotations[AnnotationDatabases]; v != "" {
		dbs = strings.Split(v, ",")
	}
	if ns.DeletionTimestamp == nil {
		bg := metav1.DeletePropagationBackground
		if err := nsc.Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &bg}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete namespace %s: %w", name, explain(err))
		}
	}
	logf("deleting namespace %s; waiting until it is gone", name)
	if err := r.waitGone(ctx, ns); err != nil {
		return err
	}
	var errs []error
	for _, db := range dbs {
		if r.opts.Databases == nil {
			errs = append(errs, fmt.Errorf("database %s: no PostgreSQL configured to drop it from", db))
			continue
		}
		if err := r.opts.Databases.Drop(ctx, db); err != nil {
			errs = append(errs, fmt.Errorf("drop database %s: %w", db, err))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	logf("removed %s: namespace %s and its databases are gone", env.Name, name)
	return nil
}

// waitGone watches the namespace from the version read before the delete
// until its Deleted event.
func (r *Runtime) waitGone(ctx context.Context, ns *corev1.Namespace) error {
	rv := ns.ResourceVersion
	for {
		w, err := r.c.CoreV1().Namespaces().Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + ns.Name,
			ResourceVersion: rv, AllowWatchBookmarks: true})
		if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
			// Too old to resume from: read where it stands now.
			cur, gerr := r.c.CoreV1().Namespaces().Get(ctx, ns.Name, metav1.GetOptions{})
			if apierrors.IsNotFound(gerr) {
				return nil
			}
			if gerr != nil {
				return gerr
			}
			rv = cur.ResourceVersion
			continue
		}
		if err != nil {
			return fmt.Errorf("watch namespace %s: %w", ns.Name, err)
		}
		gone, next, err := untilDeleted(ctx, w, rv)
		w.Stop()
		if err != nil || gone {
			return err
		}
		rv = next
	}
}

func untilDeleted(ctx context.Context, w watch.Interface, rv string) (bool, string, error) {
	for {
		select {
		case <-ctx.Done():
			return false, rv, context.Cause(ctx)
		case ev, ok := <-w.ResultChan():
			if !ok {
				return false, rv, nil
			}
			switch ev.Type {
			case watch.Deleted:
				return true, rv, nil
			case watch.Error:
				return false, rv, fmt.Errorf("watch namespace: %v", apierrors.FromObject(ev.Object))
			default:
				if m, ok := ev.Object.(metav1.Object); ok {
					rv = m.GetResourceVersion()
				}
			}
		}
	}
}
