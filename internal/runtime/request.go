package runtime

import "github.com/glenv/glenv/internal/store"

// DeployRequest is everything the runtime needs for one deploy. It is the
// runtime's own type, so the runtime depends on no job queue; the deploy
// job (internal/jobs) fills it in.
type DeployRequest struct {
	Integration store.Integration
	Token       string // the integration's GitLab token, opened; never log it
	Env         store.Environment
	SHA         string
	// Parent is the environment whose data is cloned when CloneParentData is set.
	Parent          *store.Environment
	CloneParentData bool
	// ActivityID is the deploy's activity (its log).
	ActivityID int64
	Log        func(string)
}
