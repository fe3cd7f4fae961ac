// Package feedback shows glenv's work where reviewers look, in GitLab: a
// commit status per deploy, one merge request note kept current, and a GitLab
// Environment with a Deployment per deploy. It runs as durable jobs apart
// from deploys, so a slow or failing GitLab never delays or fails a deploy.
package feedback

// SyncArgs asks for GitLab to be brought up to date with one environment's
// newest state. Jobs are unique per environment while waiting, so when
// updates pile up only the newest state is sent.
type SyncArgs struct {
	EnvironmentID int64 `json:"environment_id" river:"unique"`
}

// Kind is River's name for the job.
func (SyncArgs) Kind() string { return "feedback_sync" }

// SweepArgs asks for a sync of every environment that changed since GitLab
// last heard of it: the safety net for a notification folded into a sync
// that had already read the environment.
type SweepArgs struct{}

// Kind is River's name for the job.
func (SweepArgs) Kind() string { return "feedback_sweep" }

// HealthArgs asks for every integration's webhook and token to be checked.
type HealthArgs struct{}

// Kind is River's name for the job.
func (HealthArgs) Kind() string { return "feedback_health" }
