package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/glenv/glenv/internal/api"
	"github.com/glenv/glenv/internal/config"
	"github.com/glenv/glenv/internal/data"
	"github.com/glenv/glenv/internal/kube"
	"github.com/glenv/glenv/internal/store"
)

// newKube builds the --runtime kubernetes runtime: a client from
// --kubeconfig (or the pod's service account), glenv's commit cache, and
// tree URLs signed with the secret box.
func (s *Server) newKube(cfg config.Config, log *slog.Logger) (*kube.Runtime, error) {
	var rc *rest.Config
	var err error
	if cfg.Kubeconfig != "" {
		rc, err = clientcmd.BuildConfigFromFlags("", cfg.Kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("--kubeconfig %s: %w", cfg.Kubeconfig, err)
		}
	} else if rc, err = rest.InClusterConfig(); err != nil {
		return nil, fmt.Errorf("--runtime kubernetes: no --kubeconfig given and not running in a cluster (%v); pass --kubeconfig", err)
	}
	rc.UserAgent = "glenv"
	// client-go's default (5 requests/s, bursts of 10) would queue a burst
	// of MR events behind glenv's own rate limit: 1,000 new environments
	// cost about 6,000 requests (--kubernetes-qps, config/kubernetes.go).
	// The API server's priority and fairness still protects it.
	rc.QPS, rc.Burst = float32(cfg.KubernetesQPS), cfg.KubernetesBurst
	if cfg.KubernetesQPS == 0 {
		rc.QPS = -1 // client-go: no rate limiter at all
	}
	if s.KubeTransport != nil {
		rc.WrapTransport = s.KubeTransport
	}
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	s.services = &data.Services{URL: cfg.ServicesDatabaseURL, Dir: filepath.Join(cfg.DataDir, "postgresql")}
	s.source = &kube.Source{Dir: filepath.Join(cfg.DataDir, "kube", "repos")}
	return kube.New(kube.Options{Client: client, Source: s.source, EnvDomain: cfg.EnvDomain,
		IngressClass: cfg.KubernetesIngressClass, StorageClass: cfg.KubernetesStorageClass, FetchImage: cfg.KubernetesFetchImage,
		VolumeClone: kube.VolumeClone(cfg.KubernetesVolumeClone),
		Databases:   s.services, Logger: log, Variables: s.vars.ForDeploy,
		TreeURL: func(integration, sha string) string {
			return kube.SignTreeURL(s.box.MAC, cfg.PublicURL, integration, sha, time.Now().Add(kube.TreeURLLifetime))
		}})
}

// kubeTree streams a commit's tree as a tar to an environment's checkout
// container. The signed URL stands in for a token; the tree is fetched
// with the integration's token here, server-side, when this replica does
// not hold it yet.
func (s *Server) kubeTree(w http.ResponseWriter, r *http.Request) {
	name, sha := r.PathValue("integration"), r.PathValue("sha")
	q := r.URL.Query()
	if err := kube.VerifyTreeURL(s.box.MAC, name, sha, q.Get("exp"), q.Get("sig"), time.Now()); err != nil {
		code := http.StatusNotFound
		if errors.Is(err, kube.ErrTreeExpired) {
			code = http.StatusGone
		}
		http.Error(w, err.Error(), code)
		return
	}
	in, err := store.GetIntegration(r.Context(), s.store.Reader(), name)
	if err != nil {
		http.Error(w, "integration "+name+" is gone", http.StatusNotFound)
		return
	}
	token, err := s.box.Open(in.TokenSealed)
	if err != nil {
		http.Error(w, "cannot open the integration's token", http.StatusInternalServerError)
		return
	}
	if err := s.source.Fetch(r.Context(), in.ProjectID, strings.TrimRight(in.BaseURL, "/")+"/"+in.ProjectPath+".git", token, sha); err != nil {
		s.log.Warn("tree for kubernetes checkout", "integration", name, "sha", sha, "err", err)
		http.Error(w, "cannot fetch the commit from GitLab", http.StatusBadGateway)
		return
	}
	w.Header().Set("Content-Type", "application/x-tar")
	w.Header().Set("Cache-Control", "no-store")
	if err := s.source.Archive(r.Context(), in.ProjectID, sha, w); err != nil {
		s.log.Warn("tree for kubernetes checkout", "integration", name, "sha", sha, "err", err)
	}
}

// kubeLogs reads an environment's app output from its pod, for
// environment:logs [--follow].
func (s *Server) kubeLogs(ctx context.Context, env store.Environment, follow bool) (io.ReadCloser, error) {
	rc, err := s.kube.Logs(ctx, env, follow)
	if errors.Is(err, kube.ErrNoPod) {
		return nil, api.ErrNoAppLog
	}
	return rc, err
}
