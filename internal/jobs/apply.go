package jobs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/riverqueue/river"

	"github.com/glenv/glenv/internal/lifecycle"
	"github.com/glenv/glenv/internal/slug"
	"github.com/glenv/glenv/internal/store"
)

// Applied summarises what Apply did, for the delivery's result.
type Applied struct {
	Changed []string `json:"changed"` // "create mr-7", "deploy main", …
	Ignored []string `json:"ignored"` // reasons
}

func (a Applied) String() string {
	if len(a.Changed) == 0 {
		if len(a.Ignored) == 0 {
			return "no effect"
		}
		return "no effect: " + a.Ignored[0]
	}
	return fmt.Sprintf("%d change(s): %v", len(a.Changed), a.Changed)
}

// LifecycleEnvs loads an integration's environments, tombstones included, in
// the shape the lifecycle decides on.
func LifecycleEnvs(ctx context.Context, q store.Querier, integration string) (map[string]lifecycle.Env, map[string]store.Environment, error) {
	envs, err := store.EnvironmentsOfIntegration(ctx, q, integration, true)
	if err != nil {
		return nil, nil, err
	}
	out := make(map[string]lifecycle.Env, len(envs))
	rows := make(map[string]store.Environment, len(envs))
	for _, e := range envs {
		rows[e.Name] = e
		out[e.Name] = toLifecycle(e)
	}
	return out, rows, nil
}

func toLifecycle(e store.Environment) lifecycle.Env {
	return lifecycle.Env{Name: e.Name, Kind: lifecycle.EnvKind(e.Kind), Ref: e.Ref, Parent: e.Parent,
		HeadSHA: e.HeadSHA, State: e.State, MRIID: e.MRIID, MRUpdatedAt: e.MRUpdatedAt, SeenSHAs: e.SeenSHAs}
}

// Options turns an integration's settings into the lifecycle's.
func Options(in store.Integration) lifecycle.Options {
	return lifecycle.Options{DefaultBranch: in.DefaultBranch, ProjectID: in.ProjectID, FetchBranches: in.FetchBranches,
		PruneBranches: in.PruneBranches, BuildMergeRequests: in.BuildMergeRequests,
		BuildDraftMergeRequests: in.BuildDraftMergeRequests, MergeRequestsCloneParentData: in.MergeRequestsCloneParentData,
		BuildForks: in.BuildForks, BuildTags: in.BuildTags}
}

// Apply carries out actions for an integration inside tx: environment rows,
// activities, and deploy/delete jobs enqueued in the same transaction.
func (q *Queue) Apply(ctx context.Context, tx *sql.Tx, in store.Integration, actions []lifecycle.Action, deliveryID int64) (Applied, error) {
	var res Applied
	for _, a := range actions {
		var env store.Environment
		var err error
		if a.Env != "" {
			env, err = store.GetEnvironment(ctx, tx, in.Name, a.Env)
		}
		exists := a.Env != "" && err == nil
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return res, err
		}
		if a.Type == lifecycle.ActionIgnore {
			res.Ignored = append(res.Ignored, a.Reason)
			// A stale push still teaches which SHAs are old: keep them so a
			// later replay cannot move the environment back.
			if exists && len(a.SeenSHAs) > 0 {
				if merged, added := mergeSeen(env.SeenSHAs, a.SeenSHAs); added {
					env.SeenSHAs = merged
					if err := store.SaveEnvironment(ctx, tx, &env); err != nil {
						return res, err
					}
				}
			}
			continue
		}
		live := exists && env.DeletedAt.IsZero()
		switch a.Type {
		case lifecycle.ActionCreate:
			switch {
			case !exists:
				env = store.Environment{}
			case !live:
				// Revive the tombstone in place: its ordering marks (seen SHAs,
				// MR updated_at) keep guarding against late events.
				env.CreatedAt, env.DeployedSHA, env.ExternalURL, env.Description = time.Time{}, "", "", ""
			}
			env.IntegrationID, env.IntegrationName, env.ProjectID = in.ID, in.Name, in.ProjectID
			env.Name, env.Kind, env.Ref, env.Parent, env.MRIID = a.Env, string(a.Kind), a.Ref, a.Parent, a.MRIID
			env.Slug = slug.Environment(a.Env)
			env.Host = slug.Host(env.Slug, in.Name)
			env.Tier = tierFor(a.Kind, a.Env == in.DefaultBranch)
			env.DeletedAt = time.Time{}
			env.State = store.StateInactive
			if a.Activate {
				env.State = store.StateBuilding
			}
		case lifecycle.ActionDeploy, lifecycle.ActionUpdateHead:
			if !live {
				res.Ignored = append(res.Ignored, a.Env+": environment no longer exists")
				continue
			}
			if a.Type == lifecycle.ActionDeploy {
				env.State = store.StateBuilding
			}
		case lifecycle.ActionDelete:
			if !live {
				continue
			}
			env.State = store.StateStopping
		default:
			return res, fmt.Errorf("unknown lifecycle action %q", a.Type)
		}
		if a.SHA != "" {
			env.HeadSHA = a.SHA
		}
		if !a.MRUpdatedAt.IsZero() && a.MRUpdatedAt.After(env.MRUpdatedAt) {
			env.MRUpdatedAt = a.MRUpdatedAt
		}
		env.SeenSHAs, _ = mergeSeen(env.SeenSHAs, a.SeenSHAs)
		if err := store.SaveEnvironment(ctx, tx, &env); err != nil {
			return res, err
		}
		act := store.Activity{IntegrationName: in.Name, EnvironmentID: env.ID, EnvironmentName: env.Name,
			DeliveryID: deliveryID, SHA: a.SHA, Description: a.Reason, State: store.ActivityPending}
		var job river.JobArgs
		switch {
		case a.Type == lifecycle.ActionDelete:
			act.Kind = store.ActivityDelete
			job = &DeleteArgs{EnvironmentID: env.ID}
		case env.State == store.StateBuilding:
			act.Kind = store.ActivityDeploy
			job = &DeployArgs{EnvironmentID: env.ID, SHA: env.HeadSHA, CloneParentData: a.CloneParentData}
		default:
			act.Kind = store.ActivitySync
			act.State = store.ActivityComplete
		}
		if err := store.InsertActivity(ctx, tx, &act); err != nil {
			return res, err
		}
		if job != nil {
			switch j := job.(type) {
			case *DeployArgs:
				j.ActivityID = act.ID
			case *DeleteArgs:
				j.ActivityID = act.ID
			}
			if err := q.insertTx(ctx, tx, job, nil); err != nil {
				return res, err
			}
			if err := q.notify(ctx, tx, env.ID); err != nil {
				return res, err
			}
		}
		res.Changed = append(res.Changed, fmt.Sprintf("%s %s", a.Type, a.Env))
	}
	return res, nil
}

// mergeSeen adds the SHAs not seen yet and reports whether there were any
// (a length comparison would miss additions once the bound trims the list).
func mergeSeen(have, add []string) ([]string, bool) {
	added := false
	for _, s := range add {
		if s != "" && !slices.Contains(have, s) {
			have, added = append(have, s), true
		}
	}
	// Bound the ordering guard: the newest 200 heads are plenty to reject
	// late deliveries; reconcile repairs anything older.
	if len(have) > 200 {
		have = have[len(have)-200:]
	}
	return have, added
}

// tierFor picks the GitLab tier of a glenv environment: the default branch is
// production, merge requests are development (review apps), the rest staging.
func tierFor(kind lifecycle.EnvKind, isDefault bool) string {
	switch {
	case isDefault:
		return "production"
	case kind == lifecycle.KindMR:
		return "development"
	default:
		return "staging"
	}
}
