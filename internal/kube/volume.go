package kube

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// VolumeClone says how a new environment's services.files claims get the
// parent's data (--kubernetes-volume-clone).
type VolumeClone string

const (
	// CloneAuto clones with CSI where the storage class can, else copies.
	CloneAuto VolumeClone = "auto"
	// CloneCSI always asks the provisioner for a clone (dataSourceRef).
	CloneCSI VolumeClone = "csi"
	// CloneCopy always copies with a Job.
	CloneCopy VolumeClone = "copy"
)

// ParseVolumeClone checks a --kubernetes-volume-clone value.
func ParseVolumeClone(s string) (VolumeClone, error) {
	switch v := VolumeClone(s); v {
	case CloneAuto, CloneCSI, CloneCopy:
		return v, nil
	case "":
		return CloneAuto, nil
	}
	return "", fmt.Errorf("--kubernetes-volume-clone %q: must be auto, csi or copy", s)
}

// AnnotationVolumeClone on a StorageClass overrides auto's choice for it
// ("csi" or "copy"): an admin's word beats glenv's guess.
const AnnotationVolumeClone = "glenv.io/volume-clone"

// Labels on what a copy leaves behind, so a retried deploy finds it.
const (
	// LabelCopyTo names the namespace a copy Job, its staging claim and
	// the volume being handed over are for.
	LabelCopyTo = "glenv.io/copy-to"
	// LabelCopyClaim names the claim (in LabelCopyTo) the volume becomes.
	LabelCopyClaim = "glenv.io/copy-claim"
	// AnnotationReclaimPolicy keeps a handed-over volume's own reclaim
	// policy while glenv holds it at Retain.
	AnnotationReclaimPolicy = "glenv.io/reclaim-policy"
)

// ChooseClone decides how to clone for a storage class. Only CSI drivers
// clone volumes ("Volume cloning is only available for CSI drivers",
// kubernetes.io/docs/concepts/storage/volume-pvc-datasource), and a driver
// is known to the cluster by its CSIDriver object; a CSI driver that cannot
// clone refuses the claim, which needs the annotation or
// --kubernetes-volume-clone copy. class is nil where no class applies (none
// named and no default).
func ChooseClone(flag VolumeClone, class *storagev1.StorageClass, csiDriver bool) (VolumeClone, string) {
	switch flag {
	case CloneCSI, CloneCopy:
		return flag, "--kubernetes-volume-clone " + string(flag)
	}
	if class == nil {
		return CloneCopy, "no storage class named and none is the cluster's default, so no provisioner can clone"
	}
	switch v := VolumeClone(class.Annotations[AnnotationVolumeClone]); v {
	case CloneCSI, CloneCopy:
		return v, fmt.Sprintf("storage class %s is annotated %s=%s", class.Name, AnnotationVolumeClone, v)
	}
	if csiDriver {
		return CloneCSI, fmt.Sprintf("storage class %s's provisioner %s is a CSI driver", class.Name, class.Provisioner)
	}
	return CloneCopy, fmt.Sprintf("storage class %s's provisioner %s is no CSI driver, and only CSI drivers clone", class.Name, class.Provisioner)
}

// VerifyClone says whether a clone auto chose must be followed until it
// binds or is refused (verifyClone): only when the choice is glenv's guess
// (the provisioner is a CSI driver, and a CSI driver may still lack the
// CLONE_VOLUME capability), not an admin's annotation or flag, and only
// where the class provisions at once. A WaitForFirstConsumer class
// provisions a claim only once a pod using it is scheduled, which comes
// after the claims: its refusal shows in the rollout, and the class's
// annotation glenv.io/volume-clone: copy is the way out.
func VerifyClone(mode VolumeClone, class *storagev1.StorageClass) bool {
	if mode != CloneCSI || class == nil || VolumeClone(class.Annotations[AnnotationVolumeClone]) == CloneCSI {
		return false
	}
	return class.VolumeBindingMode == nil || *class.VolumeBindingMode == storagev1.VolumeBindingImmediate
}

// DefaultClass is the class the API server gives a claim that names none:
// the one annotated default (the newest, if several are, as the
// DefaultStorageClass admission plugin picks), or nil.
func DefaultClass(classes []storagev1.StorageClass) *storagev1.StorageClass {
	var best *storagev1.StorageClass
	for i := range classes {
		c := &classes[i]
		if c.Annotations["storageclass.kubernetes.io/is-default-class"] != "true" {
			continue
		}
		if best == nil || c.CreationTimestamp.After(best.CreationTimestamp.Time) {
			best = c
		}
	}
	return best
}

// copyName names a copy's Job and staging claim in the parent's namespace:
// unique per target namespace and claim, and stable, so a retry finds them.
func copyName(toNamespace, claim string) string {
	sum := sha256.Sum256([]byte(toNamespace + "/" + claim))
	return "glenv-copy-" + hex.EncodeToString(sum[:])[:12]
}

func (s Spec) copyMeta(claim string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: copyName(Namespace(s.HostLabel), claim), Namespace: s.CloneFrom,
		Labels: map[string]string{LabelManagedBy: "glenv", LabelCopyTo: Namespace(s.HostLabel), LabelCopyClaim: claim}}
}

// StagingClaim is the claim a copy writes into. It lives in the parent's
// namespace, because a pod mounts only claims of its own namespace and the
// copy must mount the parent's; once the copy is done its volume is handed
// over to the new environment's claim (HandedOverClaim).
func StagingClaim(s Spec, file string) *corev1.PersistentVolumeClaim {
	c := &corev1.PersistentVolumeClaim{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
		ObjectMeta: s.copyMeta(filesClaim(file)),
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(s.filesSize())}},
		}}
	if s.StorageClass != "" {
		c.Spec.StorageClassName = &s.StorageClass
	}
	return c
}

// HandedOverClaim is the environment's files claim bound to the volume a
// copy filled (volumeName), in the volume's own class.
func HandedOverClaim(s Spec, file, volume, class string) *corev1.PersistentVolumeClaim {
	c := Claims(Spec{Integration: s.Integration, EnvName: s.EnvName, Slug: s.Slug, HostLabel: s.HostLabel, MRIID: s.MRIID,
		SHA: s.SHA, Files: []string{file}, FilesSize: s.FilesSize})[0]
	c.Spec.VolumeName = volume
	c.Spec.StorageClassName = &class
	return c
}

// Copy Job limits: a copy that takes longer than this has a problem a
// person must look at; each retry starts from an empty staging claim.
const (
	copyDeadlineSeconds = 600
	copyBackoffLimit    = 2
	// copyTTLSeconds removes a finished Job glenv could not delete (it
	// stopped mid-deploy): nothing is left behind for good.
	copyTTLSeconds = 3600
	// copyUID runs the copy as nobody in particular: never root.
	copyUID = 65532
)

// copyScript copies /from into /to with tar: -c never follows a symlink
// (it stores the link, so nothing outside /from is read and no entry has a
// symlink in its path), -p keeps every mode. Owners cannot be kept by a
// non-root copy: files belong to the copy's user and fsGroup. A failing
// tar -c fails the script through a mark in /tmp: pipefail is not POSIX
// (dash, Debian's sh, has none), and the image may be any.
const copyScript = `set -eu
cd /from
rm -f /tmp/copy-failed
{ tar -c -f - . || touch /tmp/copy-failed; } | tar -x -p -f - -C /to
test ! -e /tmp/copy-failed
`

// CopyJob copies the parent's claim (mounted read-only) into the staging
// claim, in the parent's namespace, as a non-root user under the
// restricted Pod Security Standard, with a deadline and a bounded number
// of retries. It prefers the node of the parent's app pod: a ReadWriteOnce
// volume can be mounted by several pods of one node only.
func CopyJob(s Spec, file, image string) *batchv1.Job {
	if image == "" {
		image = DefaultFetchImage
	}
	claim := filesClaim(file)
	m := s.copyMeta(claim)
	yes, no := true, false
	uid := int64(copyUID)
	deadline, backoff, ttl := int64(copyDeadlineSeconds), int32(copyBackoffLimit), int32(copyTTLSeconds)
	onMismatch := corev1.FSGroupChangeOnRootMismatch
	return &batchv1.Job{TypeMeta: metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"}, ObjectMeta: m,
		Spec: batchv1.JobSpec{
			BackoffLimit: &backoff, ActiveDeadlineSeconds: &deadline, TTLSecondsAfterFinished: &ttl,
			// tar failing is the copy's own fault (no space, an unreadable
			// file): retrying cannot help, so the Job fails at once with
			// the exit code in its reason. A pod lost with its node is
			// retried without counting against the backoff limit.
			PodFailurePolicy: &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{
				{Action: batchv1.PodFailurePolicyActionIgnore, OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{
					{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}}},
				{Action: batchv1.PodFailurePolicyActionFailJob, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{
					ContainerName: ptr("copy"), Operator: batchv1.PodFailurePolicyOnExitCodesOpNotIn, Values: []int32{0}}},
			}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: m.Labels},
				Spec: corev1.PodSpec{
					RestartPolicy:                corev1.RestartPolicyNever,
					AutomountServiceAccountToken: &no,
					EnableServiceLinks:           &no,
					SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: &yes, RunAsUser: &uid, RunAsGroup: &uid,
						FSGroup: &uid, FSGroupChangePolicy: &onMismatch,
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
					Affinity: &corev1.Affinity{PodAffinity: &corev1.PodAffinity{
						PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{Weight: 100,
							PodAffinityTerm: corev1.PodAffinityTerm{TopologyKey: "kubernetes.io/hostname",
								LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{LabelManagedBy: "glenv", "glenv.io/component": AppName}}}}}}},
					Containers: []corev1.Container{{
						Name: "copy", Image: image, Command: []string{"sh", "-c", copyScript},
						VolumeMounts: []corev1.VolumeMount{{Name: "from", MountPath: "/from", ReadOnly: true}, {Name: "to", MountPath: "/to"},
							{Name: "tmp", MountPath: "/tmp"}},
						SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: &no, RunAsNonRoot: &yes,
							ReadOnlyRootFilesystem: &yes, Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
					}},
					Volumes: []corev1.Volume{
						{Name: "from", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim, ReadOnly: true}}},
						{Name: "to", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: m.Name}}},
						// The root is read-only; the script's mark goes here.
						{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: ptr(resource.MustParse("1Mi"))}}},
					},
				},
			},
		}}
}

// JobOutcome decides a Job from its conditions: done once Complete, failed
// (with the controller's reason and message) once Failed.
func JobOutcome(j *batchv1.Job) (done bool, failure string) {
	for _, c := range j.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete:
			return true, ""
		case batchv1.JobFailed:
			return false, fmt.Sprintf("%s: %s", c.Reason, c.Message)
		}
	}
	return false, ""
}

// retainPatch holds a volume at Retain while its staging claim is deleted,
// remembering its own policy and whose it becomes.
func retainPatch(pv *corev1.PersistentVolume, toNamespace, claim string) []byte {
	own := pv.Spec.PersistentVolumeReclaimPolicy
	if kept := pv.Annotations[AnnotationReclaimPolicy]; kept != "" {
		own = corev1.PersistentVolumeReclaimPolicy(kept) // a retry: Retain is glenv's, not the volume's
	}
	b, _ := json.Marshal(map[string]any{
		"metadata": map[string]any{
			"labels":      map[string]string{LabelCopyTo: toNamespace, LabelCopyClaim: claim},
			"annotations": map[string]string{AnnotationReclaimPolicy: string(own)},
		},
		"spec": map[string]any{"persistentVolumeReclaimPolicy": corev1.PersistentVolumeReclaimRetain},
	})
	return b
}

// bindAheadPatch binds a released volume ahead to the environment's claim:
// a claimRef without uid, which the PV controller completes once the claim
// exists. The policy stays Retain until the claim is bound (releasePatch).
func bindAheadPatch(toNamespace, claim string) []byte {
	b, _ := json.Marshal(map[string]any{"spec": map[string]any{
		"claimRef": map[string]any{"kind": "PersistentVolumeClaim", "apiVersion": "v1", "namespace": toNamespace, "name": claim,
			"uid": nil, "resourceVersion": nil},
	}})
	return b
}

// releasePatch gives a handed-over, bound volume its own reclaim policy
// back, so deleting the environment deletes its data, and drops glenv's
// marks.
func releasePatch(pv *corev1.PersistentVolume) []byte {
	own := pv.Annotations[AnnotationReclaimPolicy]
	if own == "" {
		own = string(corev1.PersistentVolumeReclaimDelete)
	}
	b, _ := json.Marshal(map[string]any{
		"metadata": map[string]any{
			"labels":      map[string]any{LabelCopyTo: nil, LabelCopyClaim: nil},
			"annotations": map[string]any{AnnotationReclaimPolicy: nil},
		},
		"spec": map[string]any{"persistentVolumeReclaimPolicy": own},
	})
	return b
}

func ptr[T any](v T) *T { return &v }

func (s Spec) filesSize() string {
	if s.FilesSize == "" {
		return "1Gi"
	}
	return s.FilesSize
}
