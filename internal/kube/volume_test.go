package kube

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestChooseClone(t *testing.T) {
	class := func(prov string, ann map[string]string) *storagev1.StorageClass {
		return &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "fast", Annotations: ann}, Provisioner: prov}
	}
	tests := []struct {
		name  string
		flag  VolumeClone
		class *storagev1.StorageClass
		csi   bool
		want  VolumeClone
		why   string
	}{
		{"the flag csi clones whatever the class", CloneCSI, class("rancher.io/local-path", nil), false, CloneCSI, "--kubernetes-volume-clone csi"},
		{"the flag copy copies whatever the class", CloneCopy, class("ebs.csi.aws.com", nil), true, CloneCopy, "--kubernetes-volume-clone copy"},
		{"auto clones where the provisioner is a CSI driver", CloneAuto, class("ebs.csi.aws.com", nil), true, CloneCSI, "is a CSI driver"},
		{"auto copies where the provisioner is no CSI driver", CloneAuto, class("rancher.io/local-path", nil), false, CloneCopy, "only CSI drivers clone"},
		{"auto copies where no class applies", CloneAuto, nil, false, CloneCopy, "no storage class"},
		{"the class's annotation beats auto's guess", CloneAuto, class("nfs.csi.k8s.io", map[string]string{AnnotationVolumeClone: "copy"}), true, CloneCopy, "annotated"},
		{"an annotation naming no mode is ignored", CloneAuto, class("nfs.csi.k8s.io", map[string]string{AnnotationVolumeClone: "rsync"}), true, CloneCSI, "is a CSI driver"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, why := ChooseClone(tt.flag, tt.class, tt.csi)
			if got != tt.want || !strings.Contains(why, tt.why) {
				t.Fatalf("ChooseClone = %s (%q), want %s (…%s…)", got, why, tt.want, tt.why)
			}
		})
	}
}

// Auto's guess that a CSI driver clones is followed until a clone binds
// or is refused; an admin's word is not, and a class that provisions only
// for a scheduled pod cannot be (its claims wait for the Deployment).
func TestVerifyCloneOnlyWhereAutoGuessedAndTheClassBindsAtOnce(t *testing.T) {
	immediate, wait := storagev1.VolumeBindingImmediate, storagev1.VolumeBindingWaitForFirstConsumer
	class := func(ann map[string]string, mode *storagev1.VolumeBindingMode) *storagev1.StorageClass {
		return &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "fast", Annotations: ann}, Provisioner: "ebs.csi.aws.com", VolumeBindingMode: mode}
	}
	tests := []struct {
		name  string
		mode  VolumeClone
		class *storagev1.StorageClass
		want  bool
	}{
		{"auto's guess on an immediate class is followed", CloneCSI, class(nil, &immediate), true},
		{"no binding mode is Immediate, the API's default", CloneCSI, class(nil, nil), true},
		{"a WaitForFirstConsumer class is not", CloneCSI, class(nil, &wait), false},
		{"a class annotated csi is the admin's word", CloneCSI, class(map[string]string{AnnotationVolumeClone: "csi"}, &immediate), false},
		{"an annotation naming no mode leaves the guess a guess", CloneCSI, class(map[string]string{AnnotationVolumeClone: "rsync"}, &immediate), true},
		{"a copy has no clone to follow", CloneCopy, class(nil, &immediate), false},
		{"no class, nothing to follow", CloneCSI, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := VerifyClone(tt.mode, tt.class); got != tt.want {
				t.Fatalf("VerifyClone = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseVolumeClone(t *testing.T) {
	for in, want := range map[string]VolumeClone{"": CloneAuto, "auto": CloneAuto, "csi": CloneCSI, "copy": CloneCopy} {
		if got, err := ParseVolumeClone(in); err != nil || got != want {
			t.Errorf("ParseVolumeClone(%q) = %s, %v; want %s", in, got, err, want)
		}
	}
	if _, err := ParseVolumeClone("rsync"); err == nil || !strings.Contains(err.Error(), "--kubernetes-volume-clone") {
		t.Errorf("an unknown mode: %v, want an error naming the flag", err)
	}
}

func TestDefaultClassIsTheNewestAnnotatedOne(t *testing.T) {
	at := func(name string, def bool, age time.Duration) storagev1.StorageClass {
		c := storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(time.Unix(1e9, 0).Add(-age))}}
		if def {
			c.Annotations = map[string]string{"storageclass.kubernetes.io/is-default-class": "true"}
		}
		return c
	}
	if got := DefaultClass([]storagev1.StorageClass{at("a", false, 0)}); got != nil {
		t.Fatalf("no class annotated default: got %s", got.Name)
	}
	if got := DefaultClass([]storagev1.StorageClass{at("old", true, time.Hour), at("new", true, 0), at("plain", false, 0)}); got == nil || got.Name != "new" {
		t.Fatalf("two defaults: got %v, want the newer", got)
	}
}

func copySpec() Spec {
	s := baseSpec()
	s.Files, s.FilesSize, s.StorageClass, s.CloneFrom = []string{"uploads"}, "2Gi", "local", "glenv-main--shop"
	return s
}

func TestCopyJobCopiesTheParentsClaimReadOnlyAsNonRootWithLimits(t *testing.T) {
	s := copySpec()
	j := CopyJob(s, "uploads", "busybox:1.37")
	if j.Namespace != "glenv-main--shop" {
		t.Errorf("the Job runs in %s, want the parent's namespace (a pod mounts only claims of its own)", j.Namespace)
	}
	if j.Name != copyName("glenv-mr-7--shop", "files-uploads") || len(j.Name) > 52 {
		t.Errorf("Job name %q: want the stable copy name, short enough for its pods' names", j.Name)
	}
	if j.Labels[LabelCopyTo] != "glenv-mr-7--shop" || j.Labels[LabelCopyClaim] != "files-uploads" {
		t.Errorf("labels %v: want what the copy is for", j.Labels)
	}
	js := j.Spec
	if js.ActiveDeadlineSeconds == nil || *js.ActiveDeadlineSeconds != copyDeadlineSeconds || js.BackoffLimit == nil || *js.BackoffLimit != copyBackoffLimit {
		t.Errorf("deadline %v, backoff %v: want %d s and %d", js.ActiveDeadlineSeconds, js.BackoffLimit, copyDeadlineSeconds, copyBackoffLimit)
	}
	if p := js.PodFailurePolicy; p == nil || len(p.Rules) != 2 || p.Rules[1].Action != batchv1.PodFailurePolicyActionFailJob {
		t.Errorf("pod failure policy %+v: want a failing tar to fail the Job at once, not after retries", p)
	}
	if js.TTLSecondsAfterFinished == nil {
		t.Error("no ttlSecondsAfterFinished: a Job glenv could not delete would stay for good")
	}
	pod := js.Template.Spec
	if pod.RestartPolicy != corev1.RestartPolicyNever || pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Errorf("restart %s, service account token %v", pod.RestartPolicy, pod.AutomountServiceAccountToken)
	}
	vols := map[string]*corev1.PersistentVolumeClaimVolumeSource{}
	for _, v := range pod.Volumes {
		vols[v.Name] = v.PersistentVolumeClaim
	}
	if vols["from"] == nil || vols["from"].ClaimName != "files-uploads" || !vols["from"].ReadOnly {
		t.Errorf("from: %+v, want the parent's files-uploads read-only", vols["from"])
	}
	if len(pod.Volumes) != 3 || vols["to"] == nil || vols["to"].ClaimName != j.Name || vols["to"].ReadOnly {
		t.Errorf("to: %+v, want the staging claim %s writable", vols["to"], j.Name)
	}
	c := pod.Containers[0]
	for _, m := range c.VolumeMounts {
		if m.Name == "from" && !m.ReadOnly {
			t.Error("the parent's volume is mounted writable in the container")
		}
	}
	if c.Image != "busybox:1.37" || !strings.Contains(c.Command[2], "tar -c") || strings.Contains(c.Command[2], "-h") || !strings.Contains(c.Command[2], "-p") {
		t.Errorf("image %s command %q: want tar that keeps modes (-p) and never follows a symlink (no -h)", c.Image, c.Command)
	}
	// The restricted Pod Security Standard.
	psc, sc := pod.SecurityContext, c.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Errorf("pod security context %+v: want a non-root user", psc)
	}
	if psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("seccomp %+v, want RuntimeDefault", psc.SeccompProfile)
	}
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.Capabilities == nil ||
		len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("container security context %+v: want no privilege escalation, every capability dropped, a read-only root", sc)
	}
	if pod.Affinity == nil || pod.Affinity.PodAffinity == nil || len(pod.Affinity.PodAffinity.PreferredDuringSchedulingIgnoredDuringExecution) != 1 {
		t.Errorf("affinity %+v: want to prefer the parent app pod's node (ReadWriteOnce)", pod.Affinity)
	}
	if CopyJob(s, "uploads", "").Spec.Template.Spec.Containers[0].Image != DefaultFetchImage {
		t.Error("no image given: want the default fetch image (it has tar)")
	}
}

func TestStagingAndHandedOverClaims(t *testing.T) {
	s := copySpec()
	st := StagingClaim(s, "uploads")
	if st.Namespace != "glenv-main--shop" || st.Name != copyName("glenv-mr-7--shop", "files-uploads") || st.Spec.DataSourceRef != nil {
		t.Errorf("staging claim %s/%s source %v: want an empty claim in the parent's namespace", st.Namespace, st.Name, st.Spec.DataSourceRef)
	}
	if q := st.Spec.Resources.Requests[corev1.ResourceStorage]; q.String() != "2Gi" || *st.Spec.StorageClassName != "local" {
		t.Errorf("staging claim size %s class %v, want the environment's", q.String(), st.Spec.StorageClassName)
	}
	h := HandedOverClaim(s, "uploads", "pvc-123", "local")
	if h.Namespace != "glenv-mr-7--shop" || h.Name != "files-uploads" || h.Spec.VolumeName != "pvc-123" || h.Spec.DataSourceRef != nil {
		t.Errorf("handed-over claim %s/%s volume %s source %v", h.Namespace, h.Name, h.Spec.VolumeName, h.Spec.DataSourceRef)
	}
	if h.Labels[LabelEnvironment] != "mr-7" || h.Labels[LabelIntegration] != "shop" || h.Labels[LabelMR] != "7" {
		t.Errorf("handed-over claim labels %v: want the environment's", h.Labels)
	}
}

func TestJobOutcome(t *testing.T) {
	cond := func(t batchv1.JobConditionType, s corev1.ConditionStatus, reason string) batchv1.JobCondition {
		return batchv1.JobCondition{Type: t, Status: s, Reason: reason, Message: "msg"}
	}
	tests := []struct {
		name    string
		conds   []batchv1.JobCondition
		done    bool
		failure string
	}{
		{"a Job without conditions is running", nil, false, ""},
		{"Complete is done", []batchv1.JobCondition{cond(batchv1.JobComplete, corev1.ConditionTrue, "")}, true, ""},
		{"Failed carries the controller's reason", []batchv1.JobCondition{cond(batchv1.JobFailed, corev1.ConditionTrue, "BackoffLimitExceeded")}, false, "BackoffLimitExceeded: msg"},
		{"a condition not true decides nothing", []batchv1.JobCondition{cond(batchv1.JobFailed, corev1.ConditionFalse, "x")}, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			done, failure := JobOutcome(&batchv1.Job{Status: batchv1.JobStatus{Conditions: tt.conds}})
			if done != tt.done || failure != tt.failure {
				t.Fatalf("JobOutcome = %v %q, want %v %q", done, failure, tt.done, tt.failure)
			}
		})
	}
}

func TestVolumePatchesKeepThenGiveBackTheReclaimPolicy(t *testing.T) {
	pv := &corev1.PersistentVolume{Spec: corev1.PersistentVolumeSpec{PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete}}
	var retain struct {
		Metadata struct{ Annotations, Labels map[string]string }
		Spec     struct{ PersistentVolumeReclaimPolicy string }
	}
	if err := json.Unmarshal(retainPatch(pv, "glenv-mr-7--shop", "files-uploads"), &retain); err != nil {
		t.Fatal(err)
	}
	if retain.Spec.PersistentVolumeReclaimPolicy != "Retain" || retain.Metadata.Annotations[AnnotationReclaimPolicy] != "Delete" ||
		retain.Metadata.Labels[LabelCopyTo] != "glenv-mr-7--shop" {
		t.Fatalf("retain patch %+v: want Retain, the own policy kept, the target labelled", retain)
	}
	// A retry sees the volume at Retain already: the kept policy stays Delete.
	pv.Spec.PersistentVolumeReclaimPolicy = corev1.PersistentVolumeReclaimRetain
	pv.Annotations = map[string]string{AnnotationReclaimPolicy: "Delete"}
	_ = json.Unmarshal(retainPatch(pv, "glenv-mr-7--shop", "files-uploads"), &retain)
	if retain.Metadata.Annotations[AnnotationReclaimPolicy] != "Delete" {
		t.Fatalf("a retried retain patch keeps %q, want Delete", retain.Metadata.Annotations[AnnotationReclaimPolicy])
	}
	var ahead struct {
		Spec struct {
			PersistentVolumeReclaimPolicy *string
			ClaimRef                      map[string]any
		}
	}
	if err := json.Unmarshal(bindAheadPatch("glenv-mr-7--shop", "files-uploads"), &ahead); err != nil {
		t.Fatal(err)
	}
	ref := ahead.Spec.ClaimRef
	if ahead.Spec.PersistentVolumeReclaimPolicy != nil || ref["namespace"] != "glenv-mr-7--shop" || ref["name"] != "files-uploads" {
		t.Fatalf("bind-ahead patch %+v: want the new claim, and the policy left at Retain (a released Delete volume is deleted at once)", ahead)
	}
	if uid, ok := ref["uid"]; !ok || uid != nil {
		t.Fatalf("bind-ahead patch claimRef.uid = %v (present %v): want it cleared, so the PV controller binds the new claim", uid, ok)
	}
	var release struct {
		Metadata struct{ Labels, Annotations map[string]any }
		Spec     struct{ PersistentVolumeReclaimPolicy string }
	}
	if err := json.Unmarshal(releasePatch(pv), &release); err != nil {
		t.Fatal(err)
	}
	if release.Spec.PersistentVolumeReclaimPolicy != "Delete" || release.Metadata.Labels[LabelCopyTo] != nil {
		t.Fatalf("release patch %+v: want the own policy back and glenv's labels dropped", release)
	}
}
