package kube_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/glenv/glenv/internal/gitlabtest"
	"github.com/glenv/glenv/internal/kube"
	"github.com/glenv/glenv/internal/kube/kubetest"
	"github.com/glenv/glenv/internal/runtime"
	"github.com/glenv/glenv/internal/store"
)

// Counter is an http.RoundTripper counting the requests glenv sends to the
// Kubernetes API (a watch counts once, when it opens).
type Counter struct {
	next  http.RoundTripper
	mu    sync.Mutex
	calls []string
}

func (c *Counter) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.calls = append(c.calls, r.Method+" "+r.URL.Path+"?"+r.URL.RawQuery)
	c.mu.Unlock()
	return c.next.RoundTrip(r)
}

// Take returns the calls since the last Take.
func (c *Counter) Take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.calls
	c.calls = nil
	return out
}

type kubeWorld struct {
	cluster *kubetest.Cluster
	calls   *Counter
	rt      *kube.Runtime
	opts    kube.Options // rt's, for another runtime on the same cluster
	gl      *gitlabtest.Server
	project gitlabtest.Project
	token   string
	gitURL  string
	logf    func(string, ...any)
}

func newKubeWorld(t *testing.T) *kubeWorld { return newKubeWorldTB(t) }

// newKubeWorldTB starts a world whose runtime's options the optional
// functions adjust.
func newKubeWorldTB(t testing.TB, adjust ...func(*kube.Options)) *kubeWorld {
	t.Helper()
	w := &kubeWorld{cluster: kubetest.Shared(t), calls: &Counter{}, logf: t.Logf}
	cfg := rest.CopyConfig(w.cluster.Config)
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { w.calls.next = rt; return w.calls }
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	w.gl = gitlabtest.New(t)
	t.Cleanup(w.gl.RemoveRepos)
	dev := w.gl.AddUser(gitlabtest.User{Username: "glenv-bot"})
	w.project = w.gl.AddProject(gitlabtest.Project{PathWithNamespace: "group/app", Members: map[int64]int{dev.ID: 40}})
	w.token = w.gl.AddToken(gitlabtest.Token{UserID: dev.ID, Scopes: []string{"api"}})
	hs := httptest.NewServer(w.gl.GitHandler())
	t.Cleanup(hs.Close)
	w.gitURL = hs.URL
	opts := kube.Options{Client: client, Source: &kube.Source{Dir: t.TempDir()}, EnvDomain: "preview.test",
		IngressClass: "nginx", TreeURL: func(integration, sha string) string {
			return "http://glenv.test" + kube.TreePath + integration + "/" + sha + "?sig=test"
		},
		Secrets: func(store.Integration) map[string]string { return map[string]string{"API_KEY": "s3cret"} }}
	for _, f := range adjust {
		f(&opts)
	}
	w.rt, err = kube.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	w.opts = opts
	return w
}

func (w *kubeWorld) request(env store.Environment, sha string) runtime.DeployRequest {
	return runtime.DeployRequest{
		Integration: store.Integration{Name: "app", BaseURL: w.gitURL, ProjectPath: "group/app", ProjectID: w.project.ID},
		Token:       w.token, Env: env, SHA: sha, Log: func(s string) { w.logf("%s", s) },
	}
}

const glenvYML = "image: python:3.13-slim\nbuild: pip install -r requirements.txt\nrun: python3 -m http.server $PORT\nhealth: /healthz\n"

func TestAMergeRequestRunsInItsNamespaceRollsOnPushAndIsGoneOnRemove(t *testing.T) {
	w := newKubeWorld(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	c := w.cluster.Client
	sha1 := w.gl.Commit(t, w.project.ID, gitlabtest.Commit{Branch: "feature", Files: map[string]string{".glenv.yml": glenvYML, "requirements.txt": ""}})
	env := store.Environment{ID: 7, Name: "mr-7", Slug: "mr-7", Kind: "mr", MRIID: 7, IntegrationName: "app", Host: "mr-7--app"}
	if err := w.rt.Deploy(ctx, w.request(env, sha1)); err != nil {
		t.Fatalf("first deploy: %v", err)
	}
	first := w.calls.Take()
	ns := "glenv-mr-7--app"
	nsObj, err := c.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if nsObj.Labels[kube.LabelIntegration] != "app" || nsObj.Labels[kube.LabelMR] != "7" || nsObj.Labels[kube.LabelSHA] != sha1 {
		t.Errorf("namespace labels %v", nsObj.Labels)
	}
	d, err := c.AppsV1().Deployments(ns).Get(ctx, kube.AppName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if done, _ := kube.Rollout(d); !done || d.Spec.Template.Annotations[kube.AnnotationSHA] != sha1 {
		t.Fatalf("after Deploy the Deployment is not rolled out at %s: %+v", sha1, d.Status)
	}
	if _, err := c.CoreV1().Services(ns).Get(ctx, kube.AppName, metav1.GetOptions{}); err != nil {
		t.Errorf("Service: %v", err)
	}
	ing, err := c.NetworkingV1().Ingresses(ns).Get(ctx, kube.AppName, metav1.GetOptions{})
	if err != nil || ing.Spec.Rules[0].Host != "mr-7--app.preview.test" || *ing.Spec.IngressClassName != "nginx" {
		t.Errorf("Ingress %+v %v", ing, err)
	}
	sec, err := c.CoreV1().Secrets(ns).Get(ctx, kube.SecretName, metav1.GetOptions{})
	if err != nil || string(sec.Data["API_KEY"]) != "s3cret" {
		t.Errorf("Secret: %v", err)
	}
	// Secrets only in Secrets: the Deployment as the API server stores it
	// (what `kubectl get -o yaml` shows anyone who may read Deployments)
	// holds neither a variable's value nor the signed tree URL.
	spec, _ := json.Marshal(d)
	for _, secret := range []string{"s3cret", string(sec.Data[kube.TreeURLKey])} {
		if secret == "" || strings.Contains(string(spec), secret) {
			t.Errorf("the Deployment's spec holds the secret %q (or the Secret lacks it):\n%s", secret, spec)
		}
	}
	t.Logf("first deploy: %d Kubernetes API calls", len(first))

	// environment:logs --follow asks the API server for the serving pod's
	// app container, followed. kwok's pods run nothing and its node has
	// no kubelet to answer, so what is tested is the request glenv sends
	// and that a failure comes back as an error, not a hang.
	lctx, lcancel := context.WithTimeout(ctx, 20*time.Second)
	stream, err := w.rt.Logs(lctx, env, true)
	if err == nil {
		stream.Close()
	}
	lcancel()
	var logCall string
	for _, call := range w.calls.Take() {
		if strings.Contains(call, "/log?") {
			logCall = call
		}
	}
	if !strings.HasPrefix(logCall, "GET /api/v1/namespaces/"+ns+"/pods/app-") || !strings.Contains(logCall, "container=app") || !strings.Contains(logCall, "follow=true") {
		t.Errorf("environment:logs --follow sent %q, want GET …/pods/app-…/log?container=app&follow=true (err %v)", logCall, err)
	}
	t.Logf("logs --follow on kwok: %v", err)

	// A steady push: a new SHA rolls the Deployment, with few calls.
	sha2 := w.gl.Commit(t, w.project.ID, gitlabtest.Commit{Branch: "feature", Files: map[string]string{"app.py": "print(2)\n"}})
	if err := w.rt.Deploy(ctx, w.request(env, sha2)); err != nil {
		t.Fatalf("second deploy: %v", err)
	}
	steady := w.calls.Take()
	if len(steady) > 5 {
		t.Errorf("a steady push made %d Kubernetes API calls, want at most 5:\n%s", len(steady), strings.Join(steady, "\n"))
	}
	t.Logf("steady push: %d Kubernetes API calls:\n%s", len(steady), strings.Join(steady, "\n"))
	d, err = c.AppsV1().Deployments(ns).Get(ctx, kube.AppName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if done, _ := kube.Rollout(d); !done || d.Spec.Template.Labels[kube.LabelSHA] != sha2 {
		t.Fatalf("the push did not roll the Deployment to %s: %v %+v", sha2, d.Spec.Template.Labels, d.Status)
	}

	// Remove deletes the namespace and returns once it is gone.
	if err := w.rt.Remove(ctx, env, func(s string) { t.Log(s) }); err != nil {
		t.Fatalf("remove: %v", err)
	}
	if _, err := c.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("namespace %s still there after Remove: %v", ns, err)
	}
}

func TestFilesAreClaimsClonedFromTheParentsAndABadImageIsRefused(t *testing.T) {
	w := newKubeWorldTB(t, func(o *kube.Options) { o.StorageClass = kubetest.StorageClassClone })
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	c := w.cluster.Client

	noImage := w.gl.Commit(t, w.project.ID, gitlabtest.Commit{Branch: "plain", Files: map[string]string{".glenv.yml": "run: x\nhealth: /\n"}})
	env := store.Environment{ID: 9, Name: "mr-9", Slug: "mr-9", Kind: "mr", MRIID: 9, IntegrationName: "app", Host: "mr-9--app"}
	var ce *runtime.ConfigError
	if err := w.rt.Deploy(ctx, w.request(env, noImage)); !errors.As(err, &ce) || !strings.Contains(err.Error(), "image: required") {
		t.Fatalf("deploy without image: %v, want a config error naming image", err)
	}

	// The parent runs with its own files volume; the MR's is a CSI clone
	// of it (the class's provisioner is a CSI driver), which the test
	// provisioner makes and binds.
	sha := w.gl.Commit(t, w.project.ID, gitlabtest.Commit{Branch: "files",
		Files: map[string]string{".glenv.yml": glenvYML + "services:\n  files: [uploads]\n"}})
	parent := store.Environment{ID: 1, Name: "main", Slug: "main", Host: "main--app"}
	if err := w.rt.Deploy(ctx, w.request(parent, sha)); err != nil {
		t.Fatalf("deploy the parent: %v", err)
	}
	req := w.request(env, sha)
	req.Parent, req.CloneParentData = &parent, true
	if err := w.rt.Deploy(ctx, req); err != nil {
		t.Fatalf("deploy the MR: %v", err)
	}
	claim, err := c.CoreV1().PersistentVolumeClaims("glenv-mr-9--app").Get(ctx, "files-uploads", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the claim files-uploads: %v", err)
	}
	ref := claim.Spec.DataSourceRef
	if ref == nil || ref.Kind != "PersistentVolumeClaim" || ref.Name != "files-uploads" {
		t.Fatalf("claim %s dataSourceRef %+v, want a clone of the parent's files-uploads", claim.Name, ref)
	}
	if ref.Namespace == nil || *ref.Namespace != "glenv-main--app" {
		t.Fatalf("claim clones from namespace %v, want the parent's glenv-main--app", ref.Namespace)
	}
	if claim.Status.Phase != "Bound" || *claim.Spec.StorageClassName != kubetest.StorageClassClone {
		t.Fatalf("claim %s is %s in class %v, want Bound in %s", claim.Name, claim.Status.Phase, claim.Spec.StorageClassName, kubetest.StorageClassClone)
	}
	pv, err := c.CoreV1().PersistentVolumes().Get(ctx, claim.Spec.VolumeName, metav1.GetOptions{})
	if err != nil || pv.Annotations[kubetest.AnnotationClonedFrom] != "glenv-main--app/files-uploads" {
		t.Fatalf("the claim's volume %s: %v; want one the provisioner cloned from glenv-main--app/files-uploads", claim.Spec.VolumeName, err)
	}
	d, err := c.AppsV1().Deployments("glenv-mr-9--app").Get(ctx, kube.AppName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mounted := false
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == "files-uploads" {
			mounted = true
		}
	}
	if !mounted {
		t.Fatalf("the Deployment does not mount files-uploads: %+v", d.Spec.Template.Spec.Volumes)
	}
}
