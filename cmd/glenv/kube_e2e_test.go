package main_test

import (
	"archive/tar"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/glenv/glenv/internal/gitlabtest"
	"github.com/glenv/glenv/internal/kube"
	"github.com/glenv/glenv/internal/kube/kubetest"
)

// A merge request on --runtime kubernetes: its namespace, Deployment,
// Service and Ingress appear, the Deployment becoming Available (kwok's fake
// node) makes the environment active with feedback in GitLab, a push rolls
// the Deployment, and closing the MR leaves no namespace.
func TestOnKubernetesAMergeRequestGetsANamespaceRollsOnPushAndIsGoneOnClose(t *testing.T) {
	cluster := kubetest.Shared(t)
	c := cluster.Client
	ctx := t.Context()
	gl := newGitLab(t)
	pid := gl.Project.ID
	yml := "image: python:3.13-slim\nrun: python3 -m http.server $PORT\nhealth: /\n"
	shaMain := gl.Commit(t, pid, gitlabtest.Commit{Branch: "main", Files: map[string]string{".glenv.yml": yml, "index.html": "main\n"}})
	g := startGlenv(t, "", "GLENV_RUNTIME=kubernetes", "GLENV_KUBECONFIG="+cluster.Kubeconfig, "GLENV_KUBERNETES_INGRESS_CLASS=nginx")
	var res integrationJSON
	g.mustJSON(&res, addArgs(gl)...)
	g.waitEnvLong("app", "main", func(e envJSON, ok bool) bool { return ok && e.State == "active" && e.DeployedSHA == shaMain })

	sha1 := gl.Commit(t, pid, gitlabtest.Commit{Branch: "feature-x", Files: map[string]string{".glenv.yml": yml, "index.html": "mr 1\n"}})
	t0 := time.Now().Add(-time.Hour)
	gl.SetMergeRequest(pid, gitlabtest.MergeRequest{IID: 1, Title: "MR 1", SourceBranch: "feature-x", TargetBranch: "main", SHA: sha1})
	if code, body := g.deliver("app", res.WebhookSecret, "Merge Request Hook", mrPayload(t, pid, "merge_request_open.json", 1, sha1, t0), ""); code != 202 {
		t.Fatalf("MR open: %d %s", code, body)
	}
	waitKubeEnv(g, "mr-1", sha1)

	ns := kube.Namespace("mr-1--app")
	nsObj, err := c.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("namespace %s: %v\n%s", ns, err, g.tail())
	}
	if nsObj.Labels[kube.LabelIntegration] != "app" || nsObj.Labels[kube.LabelMR] != "1" || nsObj.Labels[kube.LabelSHA] != sha1 {
		t.Errorf("namespace labels %v", nsObj.Labels)
	}
	d, err := c.AppsV1().Deployments(ns).Get(ctx, kube.AppName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if done, _ := kube.Rollout(d); !done || d.Spec.Template.Spec.Containers[0].Image != "python:3.13-slim" {
		t.Errorf("Deployment not rolled out or wrong image: %+v", d.Status)
	}
	if _, err := c.CoreV1().Services(ns).Get(ctx, kube.AppName, metav1.GetOptions{}); err != nil {
		t.Errorf("Service: %v", err)
	}
	ing, err := c.NetworkingV1().Ingresses(ns).Get(ctx, kube.AppName, metav1.GetOptions{})
	if err != nil || ing.Spec.Rules[0].Host != "mr-1--app.localhost" || *ing.Spec.IngressClassName != "nginx" {
		t.Errorf("Ingress %+v: %v", ing, err)
	}

	// The checkout container's URL opens the exact tree, from glenv;
	// tampered with, it opens nothing.
	sec, err := c.CoreV1().Secrets(ns).Get(ctx, kube.SecretName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	treeURL := string(sec.Data[kube.TreeURLKey])
	if files := tarFiles(t, treeURL); files["index.html"] != "mr 1\n" || files[".glenv.yml"] != yml {
		t.Fatalf("tree at %s holds %v", treeURL, files)
	}
	if resp, err := http.Get(strings.Replace(treeURL, sha1, shaMain, 1)); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("a tree URL re-pointed at another SHA: %v %v, want 404", resp, err)
	}

	// Feedback reached GitLab.
	var success bool
	for _, st := range gl.Statuses(pid, sha1) {
		if st.Name == "glenv/mr-1" && st.Status == "success" {
			success = true
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for !success && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond) // feedback runs as its own job after the deploy
		for _, st := range gl.Statuses(pid, sha1) {
			success = success || st.Name == "glenv/mr-1" && st.Status == "success"
		}
	}
	if !success {
		t.Errorf("no success status glenv/mr-1 on %s: %+v", sha1, gl.Statuses(pid, sha1))
	}

	// environment:logs reads the serving pod's log through the API
	// server. kwok's node has no kubelet to answer, so the answer is the
	// API server's refusal, naming the pod glenv asked.
	if _, stderr, code := g.run("", "environment:logs", "mr-1", "-i", "app"); code == 0 || !strings.Contains(stderr, "pod "+ns+"/app-") {
		t.Errorf("environment:logs on kwok: exit %d, stderr %q; want the pod's log asked for", code, stderr)
	}

	// A push rolls the Deployment to the new SHA.
	sha2 := gl.Commit(t, pid, gitlabtest.Commit{Branch: "feature-x", Files: map[string]string{"index.html": "mr 2\n"}})
	gl.SetMergeRequest(pid, gitlabtest.MergeRequest{IID: 1, Title: "MR 1", SourceBranch: "feature-x", TargetBranch: "main", SHA: sha2})
	if code, body := g.deliver("app", res.WebhookSecret, "Merge Request Hook",
		mrPayload(t, pid, "merge_request_update.json", 1, sha2, t0.Add(time.Minute)).mr("action", "update", "oldrev", sha1), ""); code != 202 {
		t.Fatalf("MR update: %d %s", code, body)
	}
	waitKubeEnv(g, "mr-1", sha2)
	d, err = c.AppsV1().Deployments(ns).Get(ctx, kube.AppName, metav1.GetOptions{})
	if err != nil || d.Spec.Template.Annotations[kube.AnnotationSHA] != sha2 {
		t.Fatalf("Deployment not rolled to %s: %v %v", sha2, d.Spec.Template.Annotations, err)
	}

	// Closing the MR deletes the namespace: the environment is gone only
	// once the namespace is.
	if code, body := g.deliver("app", res.WebhookSecret, "Merge Request Hook",
		mrPayload(t, pid, "merge_request_close.json", 1, sha2, t0.Add(2*time.Minute)), ""); code != 202 {
		t.Fatalf("MR close: %d %s", code, body)
	}
	g.waitEnvLong("app", "mr-1", func(e envJSON, ok bool) bool { return !ok })
	if _, err := c.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("namespace %s still there after the MR closed: %v", ns, err)
	}
	if _, err := c.CoreV1().Namespaces().Get(ctx, kube.Namespace("main--app"), metav1.GetOptions{}); err != nil {
		t.Fatalf("main's namespace went too: %v", err)
	}
}

func tarFiles(t *testing.T, url string) map[string]string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	files := map[string]string{}
	tr := tar.NewReader(resp.Body)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		files[h.Name] = string(b)
	}
}

// waitKubeEnv waits until the environment serves sha; when it fails
// instead, the test ends with its deploy's log.
func waitKubeEnv(g *glenv, name, sha string) envJSON {
	g.t.Helper()
	return g.waitEnvLong("app", name, func(e envJSON, ok bool) bool {
		if ok && e.State == "failed" {
			var acts []activityJSON
			g.apiGet(fmt.Sprintf("/api/v1/activities?environment_id=%d", e.ID), &acts)
			var logs strings.Builder
			for _, a := range acts {
				fmt.Fprintf(&logs, "--- %s %s %s: %s\n%s\n", a.Kind, a.State, a.SHA, a.Result, g.activityLog(a.ID))
			}
			g.t.Fatalf("the deploy of %s on %s failed:\n%s", sha[:8], name, logs.String())
		}
		return ok && e.State == "active" && e.DeployedSHA == sha
	})
}
