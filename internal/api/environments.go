package api

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"

	"github.com/glenv/glenv/internal/api/view"
	"github.com/glenv/glenv/internal/jobs"
	"github.com/glenv/glenv/internal/store"
)

func (a *API) view(e store.Environment) view.Environment {
	return view.NewEnvironment(e, a.EnvURL(e))
}

// viewOne is view with what costs a query per environment: its latest
// prebuild (shown by environment:get and the environment's page).
func (a *API) viewOne(r *http.Request, e store.Environment) (view.Environment, error) {
	v := a.view(e)
	acts, err := store.ListActivities(r.Context(), a.Store.Reader(), store.ActivityFilter{EnvironmentID: e.ID, Kind: store.ActivityPrebuild, Limit: 1})
	if err != nil {
		return v, err
	}
	if len(acts) == 1 {
		v.Prebuild = view.NewPrebuild(acts[0], e.HeadSHA)
	}
	return v, nil
}

// listEnvironments answers ?integration=NAME[&name=ENV].
func (a *API) listEnvironments(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	integ, name := q.Get("integration"), q.Get("name")
	var envs []store.Environment
	var err error
	if integ == "" {
		ins, lerr := store.ListIntegrations(r.Context(), a.Store.Reader())
		if lerr != nil {
			a.fail(w, r, "integrations", lerr)
			return
		}
		for _, in := range ins {
			es, lerr := store.EnvironmentsOfIntegration(r.Context(), a.Store.Reader(), in.Name, false)
			if lerr != nil {
				a.fail(w, r, "environments", lerr)
				return
			}
			envs = append(envs, es...)
		}
	} else {
		if _, err = store.GetIntegration(r.Context(), a.Store.Reader(), integ); err != nil && !errors.Is(err, store.ErrNotFound) {
			a.fail(w, r, "integration "+integ, err)
			return
		}
		envs, err = store.EnvironmentsOfIntegration(r.Context(), a.Store.Reader(), integ, false)
		if err != nil {
			a.fail(w, r, "environments", err)
			return
		}
	}
	out := []view.Environment{}
	readable := a.readable(r)
	for _, e := range envs {
		if (name == "" || e.Name == name) && readable(e.IntegrationName) {
			v := a.view(e)
			if name != "" {
				if v, err = a.viewOne(r, e); err != nil {
					a.fail(w, r, "environment "+e.Name, err)
					return
				}
			}
			out = append(out, v)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) getEnvironment(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		a.fail(w, r, "environment", err)
		return
	}
	e, err := store.GetEnvironmentByID(r.Context(), a.Store.Reader(), id)
	if err != nil {
		a.fail(w, r, fmt.Sprintf("environment %d", id), err)
		return
	}
	v, err := a.viewOne(r, e)
	if err != nil {
		a.fail(w, r, fmt.Sprintf("environment %d", id), err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (a *API) environmentOp(w http.ResponseWriter, r *http.Request) {
	a.operate(w, r, jobs.EnvOp(r.PathValue("op")))
}

func (a *API) deleteEnvironment(w http.ResponseWriter, r *http.Request) {
	a.operate(w, r, jobs.OpDelete)
}

func (a *API) operate(w http.ResponseWriter, r *http.Request, op jobs.EnvOp) {
	id, err := pathID(r)
	if err != nil {
		a.fail(w, r, "environment", err)
		return
	}
	switch op {
	case jobs.OpActivate, jobs.OpDeactivate, jobs.OpRedeploy, jobs.OpSyncData, jobs.OpDelete, jobs.OpPause, jobs.OpResume:
	default:
		writeErr(w, http.StatusNotFound, Error{Error: fmt.Sprintf("unknown environment operation %q: use activate, deactivate, redeploy, sync-data, pause, resume or DELETE", op)})
		return
	}
	e, err := a.Queue.Operate(r.Context(), id, op)
	if errors.Is(err, jobs.ErrRefused) {
		writeErr(w, http.StatusConflict, Error{Error: err.Error()})
		return
	}
	if err != nil {
		a.fail(w, r, fmt.Sprintf("environment %d", id), err)
		return
	}
	writeJSON(w, http.StatusAccepted, a.view(e))
}

func (a *API) listActivities(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := store.ActivityFilter{Integration: q.Get("integration"), Kind: q.Get("kind")}
	var err error
	if f.Limit, err = queryInt(r, "limit", 50, 1000); err != nil {
		a.fail(w, r, "activities", err)
		return
	}
	for name, dst := range map[string]*int64{"environment_id": &f.EnvironmentID, "delivery_id": &f.DeliveryID} {
		if v := q.Get(name); v != "" {
			if *dst, err = strconv.ParseInt(v, 10, 64); err != nil {
				a.fail(w, r, "activities", fmt.Errorf("%w: %s must be a number", errBadRequest, name))
				return
			}
		}
	}
	acts, err := store.ListActivities(r.Context(), a.Store.Reader(), f)
	if err != nil {
		a.fail(w, r, "activities", err)
		return
	}
	readable := a.readable(r)
	acts = slices.DeleteFunc(acts, func(act store.Activity) bool { return !readable(act.IntegrationName) })
	writeJSON(w, http.StatusOK, view.Activities(acts))
}

// activity loads the activity named by the path, or answers the error.
func (a *API) activity(w http.ResponseWriter, r *http.Request) (store.Activity, bool) {
	id, err := pathID(r)
	if err != nil {
		a.fail(w, r, "activity", err)
		return store.Activity{}, false
	}
	act, err := store.GetActivity(r.Context(), a.Store.Reader(), id)
	if err != nil {
		a.fail(w, r, fmt.Sprintf("activity %d", id), err)
		return store.Activity{}, false
	}
	return act, true
}

func (a *API) getActivity(w http.ResponseWriter, r *http.Request) {
	if act, ok := a.activity(w, r); ok {
		writeJSON(w, http.StatusOK, view.NewActivity(act))
	}
}

func (a *API) listDeliveries(w http.ResponseWriter, r *http.Request) {
	limit, err := queryInt(r, "limit", 50, 1000)
	if err != nil {
		a.fail(w, r, "deliveries", err)
		return
	}
	ds, err := store.ListDeliveries(r.Context(), a.Store.Reader(), r.URL.Query().Get("integration"), limit)
	if err != nil {
		a.fail(w, r, "deliveries", err)
		return
	}
	readable := a.readable(r)
	ds = slices.DeleteFunc(ds, func(d store.Delivery) bool { return !readable(d.IntegrationName) })
	writeJSON(w, http.StatusOK, view.Deliveries(ds))
}

func (a *API) getDelivery(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		a.fail(w, r, "delivery", err)
		return
	}
	d, err := store.GetDeliveryWithoutBody(r.Context(), a.Store.Reader(), id)
	if err != nil {
		a.fail(w, r, fmt.Sprintf("delivery %d", id), err)
		return
	}
	acts, err := store.ListActivities(r.Context(), a.Store.Reader(), store.ActivityFilter{DeliveryID: id, Limit: 1000})
	if err != nil {
		a.fail(w, r, "activities", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"delivery": view.NewDelivery(d), "activities": view.Activities(acts)})
}
