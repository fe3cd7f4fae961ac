// Package kube runs environments on Kubernetes (--runtime kubernetes), as
// Lagoon does: one namespace per environment holding a Deployment of the
// .glenv.yml image (the checkout delivered by an init container from a
// signed glenv URL), a Service, an Ingress for the environment's host, and
// PersistentVolumeClaims for services.files cloned from the parent's.
//
// The object builders here are pure functions of a Spec; runtime.go applies
// them and watches the Deployment. Secrets (variables, database URLs, the
// tree URL) only ever go into a Secret the pod references, never into the
// Deployment's spec.
package kube

import (
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Names of the objects inside an environment's namespace: one app per
// environment, so fixed names keep lookups free of any listing.
const (
	AppName    = "app"
	SecretName = "app-env"
	// AppPort is where the app listens ($PORT) inside its pod.
	AppPort = 8080
	// appDir is where the checkout lands in every container.
	appDir = "/app"
	// dataDir holds services.files volumes: /data/files/<name>.
	dataDir = "/data"
)

// Labels and annotations glenv puts on what it creates.
const (
	LabelManagedBy   = "app.kubernetes.io/managed-by"
	LabelIntegration = "glenv.io/integration"
	LabelEnvironment = "glenv.io/environment" // the environment's slug (names may hold '/')
	LabelMR          = "glenv.io/merge-request"
	LabelSHA         = "glenv.io/sha"
	AnnotationName   = "glenv.io/environment-name"
	AnnotationSHA    = "glenv.io/sha"
	// AnnotationEnvironmentID and AnnotationActivity on the Deployment
	// name the environment and the deploy activity it rolls out.
	AnnotationEnvironmentID = "glenv.io/environment-id"
	AnnotationActivity      = "glenv.io/activity"
	// AnnotationDatabases lists the environment's services.postgresql
	// databases on its namespace, so removal knows what to drop.
	AnnotationDatabases = "glenv.io/databases"
)

// Spec is everything one environment's objects derive from.
type Spec struct {
	Integration string
	EnvName     string
	Slug        string
	HostLabel   string // <slug>--<integration>: one DNS label
	Host        string // the full host name the Ingress routes
	MRIID       int64
	SHA         string
	// EnvID and ActivityID name the deploy on the Deployment (annotations),
	// so the shared rollout watch reports its end to the right activity,
	// after a restart too.
	EnvID      int64
	ActivityID int64

	Image      string
	FetchImage string // the init container that downloads the tree (needs wget and tar)
	Build      []string
	Run        string
	Health     string
	Env        map[string]string // .glenv.yml env: not secret, in the spec
	Files      []string          // services.files
	FilesSize  string            // each PVC's request, e.g. 1Gi
	Databases  []string          // services.postgresql database names on the services server

	// Secret is the content of the environment's Secret: variables,
	// DATABASE_URL*, GLENV_TREE_URL.
	Secret map[string]string

	IngressClass string // empty: the cluster's default class
	StorageClass string // empty: the cluster's default class
	// CloneFrom is the parent's namespace whose files PVCs the new ones
	// are cloned from (CSI volume cloning); empty: start empty.
	CloneFrom string
}

// TreeURLKey is the Secret key holding the signed URL of the tree tarball.
const TreeURLKey = "GLENV_TREE_URL"

// Namespace is the environment's namespace: glenv-<host label>, which fits
// in Kubernetes' 63 characters unless the host label is longer than 57; then
// it is cut and a hash of the whole label keeps it unique.
func Namespace(hostLabel string) string {
	const prefix, max = "glenv-", 63
	if len(prefix)+len(hostLabel) <= max {
		return prefix + hostLabel
	}
	sum := sha256.Sum256([]byte(hostLabel))
	h := hex.EncodeToString(sum[:])[:8]
	cut := strings.TrimRight(hostLabel[:max-len(prefix)-1-len(h)], "-")
	return prefix + cut + "-" + h
}

// labels name what the objects belong to; every value is a valid label value
// (the slug and integration are DNS labels, the SHA 40 hex characters).
func (s Spec) labels() map[string]string {
	l := map[string]string{
		LabelManagedBy:   "glenv",
		LabelIntegration: s.Integration,
		LabelEnvironment: s.Slug,
		LabelSHA:         s.SHA,
	}
	if s.MRIID > 0 {
		l[LabelMR] = strconv.FormatInt(s.MRIID, 10)
	}
	return l
}

// selector is the part of the labels that never changes for an environment:
// a Deployment's selector is immutable.
func (s Spec) selector() map[string]string {
	return map[string]string{LabelManagedBy: "glenv", LabelEnvironment: s.Slug, "glenv.io/component": AppName}
}

// stableMeta is meta without the SHA: objects a push does not change keep
// the same content, so a steady push need not send them again.
func (s Spec) stableMeta(name string) metav1.ObjectMeta {
	m := s.meta(name)
	delete(m.Labels, LabelSHA)
	return m
}

func (s Spec) meta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: Namespace(s.HostLabel), Labels: s.labels(),
		Annotations: map[string]string{AnnotationName: s.EnvName}}
}

// NamespaceObject is the environment's namespace.
func NamespaceObject(s Spec) *corev1.Namespace {
	m := s.meta(Namespace(s.HostLabel))
	m.Namespace = ""
	if len(s.Databases) > 0 {
		m.Annotations[AnnotationDatabases] = strings.Join(s.Databases, ",")
	}
	return &corev1.Namespace{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"}, ObjectMeta: m}
}

// SecretObject holds everything secret the pod needs.
// It sets data, not stringData: with server-side apply a key dropped from
// stringData would stay in data, and a removed variable must go.
func SecretObject(s Spec) *corev1.Secret {
	data := make(map[string][]byte, len(s.Secret))
	for k, v := range s.Secret {
		data[k] = []byte(v)
	}
	return &corev1.Secret{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}, ObjectMeta: s.stableMeta(SecretName),
		Type: corev1.SecretTypeOpaque, Data: data}
}

func filesClaim(name string) string { return "files-" + strings.ReplaceAll(name, "_", "-") }

// Claims are the services.files volumes; with CloneFrom each is a CSI clone
// of the parent's claim of the same name (dataSourceRef across namespaces).
func Claims(s Spec) []*corev1.PersistentVolumeClaim {
	size := s.FilesSize
	if size == "" {
		size = "1Gi"
	}
	var out []*corev1.PersistentVolumeClaim
	for _, f := range s.Files {
		c := &corev1.PersistentVolumeClaim{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
			ObjectMeta: s.stableMeta(filesClaim(f)),
			Spec: corev1.PersistentVolumeClaimSpec{
				AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}},
			}}
		if s.StorageClass != "" {
			c.Spec.StorageClassName = &s.StorageClass
		}
		if s.CloneFrom != "" {
			ns := s.CloneFrom
			c.Spec.DataSourceRef = &corev1.TypedObjectReference{Kind: "PersistentVolumeClaim", Name: filesClaim(f), Namespace: &ns}
		}
		out = append(out, c)
	}
	return out
}

// DeploymentObject runs the app: an init container downloads the exact tree
// into /app, a second runs build there, and the app container runs run with
// PORT, ready once health answers. A new SHA changes the pod template (its
// label and annotation), which rolls the Deployment with no unavailable
// replica.
func DeploymentObject(s Spec) *appsv1.Deployment {
	one := int32(1)
	history := int32(2) // old ReplicaSets kept for a rollback; nothing grows without bound
	deadline := int32(600)
	zero := intstr.FromInt32(0)
	surge := intstr.FromInt32(1)
	no := false
	fetchImage := s.FetchImage
	if fetchImage == "" {
		fetchImage = DefaultFetchImage
	}
	env := []corev1.EnvVar{
		{Name: "PORT", Value: strconv.Itoa(AppPort)},
		{Name: "HOME", Value: "/tmp"},
		{Name: "GLENV_SHA", Value: s.SHA},
		{Name: "GLENV_ENVIRONMENT", Value: s.EnvName},
		{Name: "GLENV_DATA_DIR", Value: dataDir},
	}
	keys := make([]string, 0, len(s.Env))
	for k := range s.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, corev1.EnvVar{Name: k, Value: s.Env[k]})
	}
	mounts := []corev1.VolumeMount{{Name: "app", MountPath: appDir}}
	volumes := []corev1.Volume{{Name: "app", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	for _, f := range s.Files {
		vol := filesClaim(f)
		mounts = append(mounts, corev1.VolumeMount{Name: vol, MountPath: dataDir + "/files/" + f})
		volumes = append(volumes, corev1.Volume{Name: vol, VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: vol}}})
		env = append(env, corev1.EnvVar{Name: "GLENV_FILES_" + strings.ToUpper(f), Value: dataDir + "/files/" + f})
	}
	// Every variable of the Secret reaches the build and the app by
	// reference; the tree URL is only for the checkout container.
	fromSecret := []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: SecretName}}}}
	treeURL := corev1.EnvVar{Name: TreeURLKey, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: SecretName}, Key: TreeURLKey}}}
	hardened := &corev1.SecurityContext{AllowPrivilegeEscalation: &no}
	init := []corev1.Container{{
		Name: "checkout", Image: fetchImage, WorkingDir: appDir,
		Command:         []string{"sh", "-c", `wget -q -O - "$GLENV_TREE_URL" | tar -x -f - -C ` + appDir},
		Env:             []corev1.EnvVar{treeURL},
		VolumeMounts:    []corev1.VolumeMount{{Name: "app", MountPath: appDir}},
		SecurityContext: hardened,
	}}
	if len(s.Build) > 0 {
		init = append(init, corev1.Container{
			Name: "build", Image: s.Image, WorkingDir: appDir,
			Command: []string{"sh", "-c", "set -e\n" + strings.Join(s.Build, "\n")},
			Env:     env, EnvFrom: fromSecret, VolumeMounts: mounts, SecurityContext: hardened,
		})
	}
	m := s.meta(AppName)
	m.Annotations[AnnotationSHA] = s.SHA
	if s.ActivityID != 0 {
		// On the Deployment's own metadata, not its pod template: a
		// redeploy of the same SHA does not restart the pod.
		m.Annotations[AnnotationEnvironmentID] = strconv.FormatInt(s.EnvID, 10)
		m.Annotations[AnnotationActivity] = strconv.FormatInt(s.ActivityID, 10)
	}
	podLabels := s.labels()
	for k, v := range s.selector() {
		podLabels[k] = v
	}
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: m,
		Spec: appsv1.DeploymentSpec{
			Replicas:                &one,
			RevisionHistoryLimit:    &history,
			ProgressDeadlineSeconds: &deadline,
			Selector:                &metav1.LabelSelector{MatchLabels: s.selector()},
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxUnavailable: &zero, MaxSurge: &surge}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels, Annotations: map[string]string{AnnotationSHA: s.SHA}},
				Spec: corev1.PodSpec{
					// Environment code has no business with the API server.
					AutomountServiceAccountToken: &no,
					ServiceAccountName:           ServiceAccountName, // serviceaccount.go says why
					EnableServiceLinks:           &no,
					InitContainers:               init,
					Containers: []corev1.Container{{
						Name: AppName, Image: s.Image, WorkingDir: appDir,
						Command: []string{"sh", "-c", s.Run},
						Ports:   []corev1.ContainerPort{{Name: "http", ContainerPort: AppPort}},
						Env:     env, EnvFrom: fromSecret, VolumeMounts: mounts, SecurityContext: hardened,
						ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
							Path: s.Health, Port: intstr.FromString("http")}}, PeriodSeconds: 2, FailureThreshold: 3},
					}},
					Volumes: volumes,
				},
			},
		},
	}
}

// DefaultFetchImage downloads and unpacks the tree (busybox has wget and tar).
const DefaultFetchImage = "busybox:1.37"

// ServiceObject sends port 80 to the app's port.
func ServiceObject(s Spec) *corev1.Service {
	return &corev1.Service{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"}, ObjectMeta: s.stableMeta(AppName),
		Spec: corev1.ServiceSpec{Selector: s.selector(), ClusterIP: serviceClusterIP,
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}}}
}

// IngressObject routes the environment's host to its Service.
func IngressObject(s Spec) *networkingv1.Ingress {
	prefix := networkingv1.PathTypePrefix
	ing := &networkingv1.Ingress{TypeMeta: metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "Ingress"},
		ObjectMeta: s.stableMeta(AppName),
		Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{Host: s.Host,
			IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{
				Path: "/", PathType: &prefix,
				Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: AppName,
					Port: networkingv1.ServiceBackendPort{Name: "http"}}},
			}}}}}}}}
	if s.IngressClass != "" {
		class := s.IngressClass
		ing.Spec.IngressClassName = &class
	}
	return ing
}

// CloneDropped reports a claim asked to clone another namespace's claim
// that the API server stored without its dataSourceRef: it does so,
// silently, when its CrossNamespaceVolumeDataSource feature gate is off
// (pkg/api/persistentvolumeclaim/util.go, DropDisabledFields), and the
// claim is then provisioned empty.
func CloneDropped(asked, stored *corev1.PersistentVolumeClaim) bool {
	return asked.Spec.DataSourceRef != nil && asked.Spec.DataSourceRef.Namespace != nil && stored.Spec.DataSourceRef == nil
}
