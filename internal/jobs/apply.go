package jobs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

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

// Apply carries out the lifecycle's actions for an integration inside tx:
// the ordering marks and heads they carry are written with the row, and
// every state change goes through the state machine (transition), which
// enqueues deploy and remove jobs in the same transaction.
func (q *Environments) Apply(ctx context.Context, tx *sql.Tx, in store.Integration, actions []lifecycle.Action, deliveryID int64) (Applied, error) {
	return q.applyKnown(ctx, tx, in, actions, deliveryID, nil, nil)
}

// applyKnown is Apply with rows the caller already read locked in tx, by
// environment name (nil: no row): the first action on each uses it instead
// of reading it again; later ones read what the earlier ones wrote. Sync
// activities go to later when it is not nil (the batch inserts them).
func (q *Environments) applyKnown(ctx context.Context, tx *sql.Tx, in store.Integration, actions []lifecycle.Action, deliveryID int64,
	known map[string]*store.Environment, later *activityQueue) (Applied, error) {
	var res Applied
	for _, a := range actions {
		row, isKnown := known[a.Env]
		delete(known, a.Env)
		changed, ignored, err := q.apply(ctx, tx, in, a, deliveryID, row, isKnown, later)
		if err != nil {
			return res, err
		}
		if ignored != "" {
			res.Ignored = append(res.Ignored, ignored)
		}
		if changed {
			res.Changed = append(res.Changed, fmt.Sprintf("%s %s", a.Type, a.Env))
		}
	}
	return res, nil
}

func (q *Environments) apply(ctx context.Context, tx *sql.Tx, in store.Integration, a lifecycle.Action, deliveryID int64,
	row *store.Environment, isKnown bool, later *activityQueue) (changed bool, ignored string, err error) {
	var env store.Environment
	switch {
	case a.Env == "":
	case isKnown && row == nil:
		err = store.ErrNotFound
	case isKnown:
		env = *row
	default:
		if err = later.flush(ctx, tx); err == nil {
			env, err = store.LockEnvironment(ctx, tx, q.store.Dialect, in.Name, a.Env)
		}
	}
	exists := a.Env != "" && err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return false, "", err
	}
	live := exists && env.DeletedAt.IsZero()
	// A new environment's row can wait for the end of the batch unless
	// a prebuild (prebuildAfter) needs it at once.
	rec := record{Description: a.Reason, DeliveryID: deliveryID, SHA: a.SHA, later: later, saveLater: !in.PrebuildBranches}
	var trigger lifecycle.Input
	switch a.Type {
	case lifecycle.ActionIgnore:
		// A stale push still teaches which SHAs are old: keep them so a
		// later replay cannot move the environment back.
		if exists && len(a.SeenSHAs) > 0 {
			if merged, added := mergeSeen(env.SeenSHAs, a.SeenSHAs); added {
				env.SeenSHAs = merged
				if err := later.flush(ctx, tx); err != nil {
					return false, "", err
				}
				if err := store.SaveEnvironment(ctx, tx, &env); err != nil {
					return false, "", err
				}
			}
		}
		return false, a.Reason, nil
	case lifecycle.ActionCreate:
		if !live {
			if exists {
				// Revive the tombstone in place: its ordering marks (seen SHAs,
				// MR updated_at) keep guarding against late events.
				env.CreatedAt, env.DeployedSHA, env.ExternalURL, env.Description = time.Time{}, "", "", ""
			} else {
				env = store.Environment{}
			}
			env.State = "" // a new life: the state machine creates it
		}
		env.IntegrationID, env.IntegrationName, env.ProjectID = in.ID, in.Name, in.ProjectID
		env.Name, env.Kind, env.Ref, env.Parent, env.MRIID = a.Env, string(a.Kind), a.Ref, a.Parent, a.MRIID
		env.Slug = slug.Environment(a.Env)
		env.Host = slug.Host(env.Slug, in.Name)
		env.Tier = lifecycle.Tier(a.Kind, a.Env, in.DefaultBranch)
		trigger = lifecycle.Input{Trigger: lifecycle.TriggerCreate, Activate: a.Activate, CloneParentData: a.CloneParentData}
	case lifecycle.ActionDeploy, lifecycle.ActionUpdateHead:
		if !live {
			return false, a.Env + ": environment no longer exists", nil
		}
		if a.Type == lifecycle.ActionDeploy {
			trigger = lifecycle.Input{Trigger: lifecycle.TriggerDeployRequested, CloneParentData: a.CloneParentData}
		}
	case lifecycle.ActionDelete:
		if !live {
			return false, "", nil
		}
		trigger = lifecycle.Input{Trigger: lifecycle.TriggerDelete}
	default:
		return false, "", fmt.Errorf("unknown lifecycle action %q", a.Type)
	}
	if a.Kind == lifecycle.KindMR && a.Type != lifecycle.ActionDelete {
		// Every event about a merge request says where its code comes from.
		env.FromFork = a.Fork
	}
	newHead := a.SHA != "" && (a.SHA != env.HeadSHA || !live)
	if a.SHA != "" {
		env.HeadSHA = a.SHA
	}
	if !a.MRUpdatedAt.IsZero() && a.MRUpdatedAt.After(env.MRUpdatedAt) {
		env.MRUpdatedAt = a.MRUpdatedAt
	}
	env.SeenSHAs, _ = mergeSeen(env.SeenSHAs, a.SeenSHAs)
	if (env.ID == 0 || env.State == "") && trigger.Trigger == "" {
		// The row must exist (and have an id) before an activity names it.
		// A transition writes it itself before it names it in an activity
		// (and a refused one is written below): one write less per new
		// environment, the costliest statement of a delivery.
		state := env.State
		env.State = store.StateInactive
		if err := later.flush(ctx, tx); err != nil {
			return false, "", err
		}
		if err := store.SaveEnvironment(ctx, tx, &env); err != nil {
			return false, "", err
		}
		env.State = state
	}
	o := lifecycle.Outcome{}
	saved := false // the row in the database is env as it is now
	if trigger.Trigger != "" {
		subj := subjectOf(env, in.DefaultBranch)
		o, err = q.transition(ctx, tx, &env, in.DefaultBranch, trigger, rec)
		switch {
		case errors.Is(err, ErrRefused):
			// A deploy requested of an environment that runs nothing records
			// the head only; a delete of the default branch's is refused.
			if a.Type == lifecycle.ActionDelete {
				return false, a.Env + ": " + o.Refused, nil
			}
			o, err = lifecycle.Outcome{}, nil
		case err == nil:
			// transition writes the whole row when the outcome changes it.
			saved = o.Changed(subj)
		}
		if err != nil {
			return false, "", err
		}
	}
	if o.Starts == "" {
		// No job: the head, marks or new environment are the whole change.
		if !saved {
			if err := later.flush(ctx, tx); err != nil {
				return false, "", err
			}
			if err := store.SaveEnvironment(ctx, tx, &env); err != nil {
				return false, "", err
			}
		}
		act := store.Activity{IntegrationName: in.Name, EnvironmentID: env.ID, EnvironmentName: env.Name,
			DeliveryID: deliveryID, SHA: a.SHA, Description: a.Reason, Kind: store.ActivitySync, State: store.ActivityComplete}
		if err := later.add(ctx, tx, act, &env); err != nil {
			return false, "", err
		}
		if newHead {
			// The head of an inactive branch environment moved: prebuild it
			// when the integration asks (--prebuild-branches).
			if err := q.prebuildAfter(ctx, tx, in, &env, rec); err != nil {
				return false, "", err
			}
		}
	}
	return true, "", nil
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
