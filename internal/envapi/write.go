package envapi

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"strings"

	"github.com/glenv/glenv/internal/gitlabapi"
	"github.com/glenv/glenv/internal/slug"
	"github.com/glenv/glenv/internal/store"
)

// KindManual marks environments created through the GitLab-compatible API:
// they follow no branch, merge request or tag, so the lifecycle and
// reconcile leave them alone.
const KindManual = "manual"

// errInvalid aborts a transaction whose validation failed; the field
// errors travel beside it.
var errInvalid = errors.New("invalid environment")

// create is POST …/environments: a manual glenv environment on the
// project's oldest integration, available at once, like GitLab's.
func (h *handler) create(rq *request) {
	g := rq.p.Grape()
	name := gitlabapi.ReadEnvironmentName(g)
	a := gitlabapi.ReadEnvironmentAttrs(g)
	if !g.OK(rq.w) {
		return
	}
	p, ok := h.project(rq)
	if !ok {
		return
	}
	if a.ClusterAgent {
		gitlabapi.BadRequest(rq.w, gitlabapi.NoClusterAgent)
		return
	}
	in := p.integrations[0]
	e := store.Environment{IntegrationID: in.ID, IntegrationName: in.Name, ProjectID: in.ProjectID, Name: name,
		Slug: slug.Environment(name), Kind: KindManual, Tier: gitlabapi.GuessTier(name)}
	e.Host = slug.Host(e.Slug, in.Name)
	// glenv has no cluster agents; auto_stop_setting defaults to "always"
	// (lib/api/environments.rb:74).
	a.Apply(e.Name, &e.ExternalURL, &e.Tier, &e.Description)
	attrs := store.EnvAPIAttrs{AutoStopSetting: gitlabapi.DefaultAutoStopSetting}
	a.ApplyAutoStopSetting(&attrs.AutoStopSetting)
	var errs gitlabapi.FieldErrors
	ctx := rq.r.Context()
	err := h.store.Tx(ctx, func(tx *sql.Tx) error {
		nameTaken, slugTaken, err := store.ProjectEnvironmentExists(ctx, tx, p.ids, e.Name, e.Slug)
		if err != nil {
			return err
		}
		if errs = validate(e, true, nameTaken, slugTaken, a); !errs.Empty() {
			return errInvalid
		}
		if live, err := reviveTombstone(ctx, tx, &e); err != nil {
			return err
		} else if live {
			errs.Add("name", "has already been taken")
			return errInvalid
		}
		if err := h.queue.CreateManual(ctx, tx, &e); errors.Is(err, store.ErrConflict) {
			// The host of a tombstone with another name that slugs the same.
			errs.Add("slug", "has already been taken")
			return errInvalid
		} else if err != nil {
			return err
		}
		if err := store.ResetEnvAPIAttrs(ctx, tx, e, attrs.AutoStopSetting); err != nil {
			return err
		}
		if err := record(ctx, tx, e, "created through the GitLab-compatible API"); err != nil {
			return err
		}
		return h.queue.NotifyChanged(ctx, tx, e.ID)
	})
	switch {
	case errors.Is(err, errInvalid):
		gitlabapi.ValidationError(rq.w, errs)
	case err != nil:
		h.fail(rq, "create environment", err)
	default:
		h.log.Info("environment created", "integration", e.IntegrationName, "environment", e.Name, "via", "api/v4")
		gitlabapi.WriteJSON(rq.w, http.StatusCreated, h.entity(p, e, attrs))
	}
}

// reviveTombstone prepares e to reuse a deleted environment of the same name
// in place (SaveEnvironment overwrites it), keeping its ordering marks so
// that late webhooks still cannot move it back. live reports a row of that
// name that is not deleted (one detached from an earlier integration of the
// same name), which must not be overwritten.
func reviveTombstone(ctx context.Context, tx *sql.Tx, e *store.Environment) (live bool, err error) {
	old, err := store.GetEnvironment(ctx, tx, e.IntegrationName, e.Name)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if old.DeletedAt.IsZero() {
		return true, nil
	}
	e.SeenSHAs, e.MRUpdatedAt = old.SeenSHAs, old.MRUpdatedAt
	return false, nil
}

// record notes a change made through this API as a finished activity.
func record(ctx context.Context, tx *sql.Tx, e store.Environment, what string) error {
	return store.InsertActivity(ctx, tx, &store.Activity{IntegrationName: e.IntegrationName, EnvironmentID: e.ID,
		EnvironmentName: e.Name, Kind: store.ActivitySync, State: store.ActivityComplete, Description: what})
}

// edit is PUT …/environments/:environment_id: external_url, tier,
// description and auto_stop_setting only (lib/api/environments.rb:126).
func (h *handler) edit(rq *request) {
	g := rq.p.Grape()
	id := g.PathInt(rq.vars, "environment_id") // declared first (lib/api/environments.rb:110)
	a := gitlabapi.ReadEnvironmentAttrs(g)
	if !g.OK(rq.w) {
		return
	}
	p, ok := h.project(rq)
	if !ok {
		return
	}
	e, ok := h.environment(rq, p, id)
	if !ok {
		return
	}
	if a.ClusterAgent {
		gitlabapi.BadRequest(rq.w, gitlabapi.NoClusterAgent)
		return
	}
	old, ok := h.attrs(rq, e)
	if !ok {
		return
	}
	edited, attrs := e, old
	a.Apply(edited.Name, &edited.ExternalURL, &edited.Tier, &edited.Description)
	a.ApplyAutoStopSetting(&attrs.AutoStopSetting)
	if errs := validate(edited, false, false, false, a); !errs.Empty() {
		gitlabapi.ValidationError(rq.w, errs)
		return
	}
	changed := changes(e, edited)
	if attrs.AutoStopSetting != old.AutoStopSetting {
		changed = strings.TrimPrefix(changed+", auto_stop_setting", ", ")
	}
	if changed != "" {
		ctx := rq.r.Context()
		err := h.store.Tx(ctx, func(tx *sql.Tx) error {
			if err := store.SetEnvironmentAttrs(ctx, tx, e.ID, edited.ExternalURL, edited.Tier, edited.Description); err != nil {
				return err
			}
			if err := store.SetAutoStopSetting(ctx, tx, e, attrs.AutoStopSetting); err != nil {
				return err
			}
			if err := record(ctx, tx, e, changed+" changed through the GitLab-compatible API"); err != nil {
				return err
			}
			if err := h.queue.NotifyChanged(ctx, tx, e.ID); err != nil {
				return err
			}
			var err error
			edited, err = store.GetEnvironmentByID(ctx, tx, e.ID)
			return err
		})
		if errors.Is(err, store.ErrNotFound) {
			environmentNotFound(rq.w)
			return
		}
		if err != nil {
			h.fail(rq, "update environment", err)
			return
		}
	}
	gitlabapi.WriteJSON(rq.w, http.StatusOK, h.entity(p, edited, attrs))
}

// changes names the edited attributes, or "" when nothing changed.
func changes(old, cur store.Environment) string {
	var out []string
	if old.ExternalURL != cur.ExternalURL {
		out = append(out, "external_url")
	}
	if old.Tier != cur.Tier {
		out = append(out, "tier")
	}
	if old.Description != cur.Description {
		out = append(out, "description")
	}
	return strings.Join(out, ", ")
}
