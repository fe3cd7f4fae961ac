package kube

import (
	"encoding/json"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const sha1 = "1111111111111111111111111111111111111111"

func baseSpec() Spec {
	return Spec{Integration: "shop", EnvName: "mr-7", Slug: "mr-7", HostLabel: "mr-7--shop", Host: "mr-7--shop.preview.example.com",
		MRIID: 7, SHA: sha1, Image: "python:3.13-slim", Build: []string{"pip install -r requirements.txt", "make"},
		Run: "python3 -m http.server $PORT", Health: "/healthz", Env: map[string]string{"MODE": "preview"},
		Secret: map[string]string{TreeURLKey: "https://glenv.example.com/kube/tree/shop/" + sha1 + "?sig=x", "API_KEY": "s3cret"}}
}

func TestNamespace(t *testing.T) {
	long := strings.Repeat("a", 30) + "--" + strings.Repeat("b", 30) // 62, the longest host label
	tests := []struct {
		name, label string
		want        string
	}{
		{"a short host label is prefixed with glenv-", "mr-7--shop", "glenv-mr-7--shop"},
		{"a label of 57 characters still fits whole", strings.Repeat("x", 57), "glenv-" + strings.Repeat("x", 57)},
		{"a longer label is cut and keeps a hash of the whole", long, Namespace(long)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Namespace(tt.label)
			if got != tt.want || len(got) > 63 || strings.HasSuffix(got, "-") {
				t.Fatalf("Namespace(%q) = %q (%d chars), want %q, at most 63, not ending in -", tt.label, got, len(got), tt.want)
			}
		})
	}
	a, b := Namespace(long), Namespace(long[:61]+"c")
	if a == b || len(a) != 63 {
		t.Fatalf("two long labels differing at the end map to %q and %q; want distinct 63-character names", a, b)
	}
}

func TestObjects(t *testing.T) {
	tests := []struct {
		name  string
		spec  func(Spec) Spec
		check func(t *testing.T, s Spec)
	}{
		{"the namespace's labels name the integration, environment, MR and SHA", nil, func(t *testing.T, s Spec) {
			ns := NamespaceObject(s)
			want := map[string]string{LabelIntegration: "shop", LabelEnvironment: "mr-7", LabelMR: "7", LabelSHA: sha1, LabelManagedBy: "glenv"}
			for k, v := range want {
				if ns.Labels[k] != v {
					t.Errorf("label %s = %q, want %q", k, ns.Labels[k], v)
				}
			}
			if ns.Name != "glenv-mr-7--shop" || ns.Annotations[AnnotationName] != "mr-7" {
				t.Errorf("namespace %q annotations %v", ns.Name, ns.Annotations)
			}
		}},
		{"a branch environment has no MR label", func(s Spec) Spec { s.MRIID = 0; return s }, func(t *testing.T, s Spec) {
			if _, ok := NamespaceObject(s).Labels[LabelMR]; ok {
				t.Error("branch environment labelled with a merge request")
			}
		}},
		{"secrets are in the Secret and never in the Deployment's spec", nil, func(t *testing.T, s Spec) {
			body, _ := json.Marshal(DeploymentObject(s))
			for _, secret := range []string{"s3cret", "sig=x"} {
				if strings.Contains(string(body), secret) {
					t.Errorf("Deployment spec contains %q", secret)
				}
			}
			sec := SecretObject(s)
			if string(sec.Data["API_KEY"]) != "s3cret" || len(sec.Data[TreeURLKey]) == 0 {
				t.Errorf("Secret data %v", sec.Data)
			}
			app := DeploymentObject(s).Spec.Template.Spec.Containers[0]
			if len(app.EnvFrom) != 1 || app.EnvFrom[0].SecretRef.Name != SecretName {
				t.Errorf("app envFrom %+v, want the Secret", app.EnvFrom)
			}
		}},
		{"the init containers check out the tree then build, the app runs with PORT", nil, func(t *testing.T, s Spec) {
			pod := DeploymentObject(s).Spec.Template.Spec
			if len(pod.InitContainers) != 2 || pod.InitContainers[0].Name != "checkout" || pod.InitContainers[1].Name != "build" {
				t.Fatalf("init containers %+v", pod.InitContainers)
			}
			co := pod.InitContainers[0]
			if co.Env[0].ValueFrom == nil || co.Env[0].ValueFrom.SecretKeyRef.Key != TreeURLKey {
				t.Errorf("checkout gets the tree URL %+v, want a secretKeyRef", co.Env[0])
			}
			if b := pod.InitContainers[1]; b.Image != "python:3.13-slim" || !strings.Contains(b.Command[2], "pip install -r requirements.txt\nmake") {
				t.Errorf("build container %+v", b)
			}
			app := pod.Containers[0]
			if app.Image != s.Image || app.Command[2] != s.Run || envValue(app.Env, "PORT") != "8080" || envValue(app.Env, "MODE") != "preview" {
				t.Errorf("app container %+v", app)
			}
			if p := app.ReadinessProbe.HTTPGet; p == nil || p.Path != "/healthz" || p.Port.StrVal != "http" {
				t.Errorf("readiness probe %+v, want GET /healthz on the app port", app.ReadinessProbe)
			}
			if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
				t.Error("environment pods must not get a service account token")
			}
			// The pod runs as glenv's own service account, made with the
			// namespace: never waiting for the controller-manager's default.
			sa := ServiceAccountObject(s)
			if pod.ServiceAccountName != sa.Name || sa.Namespace != Namespace(s.HostLabel) || sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
				t.Errorf("pod runs as %q; glenv's service account %s/%s automount %v", pod.ServiceAccountName, sa.Namespace, sa.Name, sa.AutomountServiceAccountToken)
			}
		}},
		{"no build steps means no build container", func(s Spec) Spec { s.Build = nil; return s }, func(t *testing.T, s Spec) {
			if n := len(DeploymentObject(s).Spec.Template.Spec.InitContainers); n != 1 {
				t.Errorf("%d init containers, want only the checkout", n)
			}
		}},
		{"rolling updates never take the running replica away", nil, func(t *testing.T, s Spec) {
			st := DeploymentObject(s).Spec.Strategy
			if st.Type != appsv1.RollingUpdateDeploymentStrategyType || st.RollingUpdate.MaxUnavailable.IntValue() != 0 || st.RollingUpdate.MaxSurge.IntValue() != 1 {
				t.Errorf("strategy %+v", st)
			}
		}},
		{"a new SHA changes the pod template and not the selector", nil, func(t *testing.T, s Spec) {
			a := DeploymentObject(s)
			s.SHA = strings.Repeat("2", 40)
			b := DeploymentObject(s)
			if a.Spec.Template.Annotations[AnnotationSHA] == b.Spec.Template.Annotations[AnnotationSHA] ||
				b.Spec.Template.Labels[LabelSHA] != s.SHA {
				t.Error("the pod template does not change with the SHA, so nothing rolls")
			}
			if !equalMaps(a.Spec.Selector.MatchLabels, b.Spec.Selector.MatchLabels) {
				t.Error("the selector changed with the SHA; Kubernetes refuses that")
			}
			if !equalJSON(ServiceObject(s), ServiceObject(baseSpec())) || !equalJSON(IngressObject(s), IngressObject(baseSpec())) {
				t.Error("Service or Ingress changed with the SHA; a steady push would send them again")
			}
		}},
		{"the Ingress routes the environment's host with the ingress class", func(s Spec) Spec { s.IngressClass = "nginx"; return s }, func(t *testing.T, s Spec) {
			ing := IngressObject(s)
			if ing.Spec.IngressClassName == nil || *ing.Spec.IngressClassName != "nginx" || ing.Spec.Rules[0].Host != s.Host ||
				ing.Spec.Rules[0].HTTP.Paths[0].Backend.Service.Name != AppName {
				t.Errorf("ingress %+v", ing.Spec)
			}
		}},
		{"without an ingress class the cluster's default is used", nil, func(t *testing.T, s Spec) {
			if IngressObject(s).Spec.IngressClassName != nil {
				t.Error("ingress class set although none was configured")
			}
		}},
		{"files become claims mounted at GLENV_FILES_<NAME>", func(s Spec) Spec { s.Files = []string{"uploads", "cache_x"}; return s }, func(t *testing.T, s Spec) {
			cs := Claims(s)
			if len(cs) != 2 || cs[0].Name != "files-uploads" || cs[1].Name != "files-cache-x" || cs[0].Spec.DataSourceRef != nil {
				t.Fatalf("claims %+v", cs)
			}
			app := DeploymentObject(s).Spec.Template.Spec.Containers[0]
			if envValue(app.Env, "GLENV_FILES_UPLOADS") != "/data/files/uploads" {
				t.Errorf("env %+v", app.Env)
			}
		}},
		{"files of a clone come from the parent's claims (CSI volume cloning)", func(s Spec) Spec {
			s.Files = []string{"uploads"}
			s.CloneFrom = "glenv-main--shop"
			s.StorageClass = "csi-fast"
			return s
		}, func(t *testing.T, s Spec) {
			c := Claims(s)[0]
			ref := c.Spec.DataSourceRef
			if ref == nil || ref.Kind != "PersistentVolumeClaim" || ref.Name != "files-uploads" || *ref.Namespace != "glenv-main--shop" {
				t.Errorf("dataSourceRef %+v", ref)
			}
			if *c.Spec.StorageClassName != "csi-fast" || c.Spec.AccessModes[0] != corev1.ReadWriteOnce {
				t.Errorf("claim spec %+v", c.Spec)
			}
		}},
		{"the namespace lists its databases for removal", func(s Spec) Spec { s.Databases = []string{"g3_main", "g3_x"}; return s }, func(t *testing.T, s Spec) {
			if got := NamespaceObject(s).Annotations[AnnotationDatabases]; got != "g3_main,g3_x" {
				t.Errorf("databases annotation %q", got)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := baseSpec()
			if tt.spec != nil {
				s = tt.spec(s)
			}
			tt.check(t, s)
		})
	}
}

func TestRollout(t *testing.T) {
	two := int32(2)
	dep := func(gen, observed int64, replicas, updated, available int32, conds ...appsv1.DeploymentCondition) *appsv1.Deployment {
		return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Generation: gen}, Spec: appsv1.DeploymentSpec{Replicas: &two},
			Status: appsv1.DeploymentStatus{ObservedGeneration: observed, Replicas: replicas, UpdatedReplicas: updated, AvailableReplicas: available, Conditions: conds}}
	}
	avail := appsv1.DeploymentCondition{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue}
	stuck := appsv1.DeploymentCondition{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse, Reason: "ProgressDeadlineExceeded", Message: "ReplicaSet has timed out"}
	tests := []struct {
		name     string
		d        *appsv1.Deployment
		done     bool
		failWith string
	}{
		{"a spec the controller has not seen is not rolled out", dep(3, 2, 2, 2, 2, avail), false, ""},
		{"all replicas updated and available is rolled out", dep(3, 3, 2, 2, 2, avail), true, ""},
		{"new replicas still being created wait", dep(3, 3, 2, 1, 2, avail), false, ""},
		{"old replicas still terminating wait", dep(3, 3, 3, 2, 2, avail), false, ""},
		{"new replicas not yet available wait", dep(3, 3, 2, 2, 1, avail), false, ""},
		{"without the Available condition it waits", dep(3, 3, 2, 2, 2), false, ""},
		{"ProgressDeadlineExceeded fails the deploy", dep(3, 3, 2, 1, 0, stuck), false, "ProgressDeadlineExceeded: ReplicaSet has timed out"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			done, failure := Rollout(tt.d)
			if done != tt.done || (tt.failWith == "") != (failure == "") || !strings.Contains(failure, tt.failWith) {
				t.Fatalf("Rollout = %v, %q; want %v, %q", done, failure, tt.done, tt.failWith)
			}
		})
	}
}

func envValue(env []corev1.EnvVar, name string) string {
	for _, e := range env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func equalJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}
