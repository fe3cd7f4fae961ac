package envapi

import (
	"github.com/glenv/glenv/internal/gitlabapi"
	"github.com/glenv/glenv/internal/store"
)

// validate runs the Environment model's validations in their declaration
// order. Name and slug rules apply on create only: update never changes them,
// and glenv's branch environments may carry names GitLab would refuse.
func validate(e store.Environment, creating, nameTaken, slugTaken bool, a gitlabapi.EnvironmentAttrs) gitlabapi.FieldErrors {
	var errs gitlabapi.FieldErrors
	if creating {
		gitlabapi.CheckEnvironmentName(&errs, e.Name, nameTaken, slugTaken)
	}
	gitlabapi.CheckEnvironmentFields(&errs, e.ExternalURL, e.Description, a.KubernetesNamespace, a.FluxResourcePath)
	return errs
}
