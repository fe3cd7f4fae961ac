package gitlabtest

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/glenv/glenv/internal/gitlabapi"
	"github.com/glenv/glenv/internal/slug"
)

// Environment is a GitLab environment.
type Environment struct {
	ID              int64
	ProjectID       int64
	Name            string
	Slug            string
	Description     string
	ExternalURL     string
	State           string // available, stopping or stopped
	Tier            string
	AutoStopSetting string // always or with_action
	CreatedAt       time.Time
	UpdatedAt       time.Time
	AutoStopAt      *time.Time
	// AutoDeleteAt is set when DELETE …/environments/review_apps schedules
	// the environment for deletion; it disappears once the clock passes it.
	AutoDeleteAt *time.Time
}

// UpdateEnvironment changes an environment in place, for tests that need a
// state the API cannot reach without CI jobs (stopping) or a past the clock
// has not lived through (old created_at / updated_at).
func (s *Server) UpdateEnvironment(projectID, envID int64, change func(*Environment)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.mustProject(projectID).envByID(envID)
	if e == nil {
		panic("gitlabtest: unknown environment " + itoa(envID))
	}
	change(e)
}

// Environments returns a snapshot of a project's environments by ID.
func (s *Server) Environments(projectID int64) []Environment {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.mustProject(projectID)
	s.purgeScheduled(p)
	out := []Environment{}
	for _, e := range p.envs {
		out = append(out, *e)
	}
	return out
}

// purgeScheduled deletes environments whose scheduled deletion is due, as
// GitLab's DeleteEnvironmentsWorker does.
func (s *Server) purgeScheduled(p *project) {
	now := s.now()
	p.envs = slices.DeleteFunc(p.envs, func(e *Environment) bool {
		if e.AutoDeleteAt == nil || now.Before(*e.AutoDeleteAt) {
			return false
		}
		p.deleteDeploymentsOf(e.ID)
		return true
	})
}

func envBasic(e *Environment) gitlabapi.EnvironmentBasic {
	return gitlabapi.NewEnvironmentBasic(e.ID, e.Name, e.Slug, e.ExternalURL, e.CreatedAt, e.UpdatedAt)
}

type envJSON = gitlabapi.Environment[basicProjectJSON]

// envProject is the project as environments show it: BasicProjectDetails,
// whose default_branch is default_branch_or_main
// (lib/api/entities/basic_project_details.rb), so an empty repository
// shows GitLab's default "main" rather than null.
func (s *Server) envProject(p *project) basicProjectJSON {
	bp := s.basicProject(p)
	if bp.DefaultBranch == nil {
		main := "main"
		bp.DefaultBranch = &main
	}
	return bp
}

// envEntity is API::Entities::Environment as every endpoint but GET one
// presents it: with the project and without last_deployment.
func (s *Server) envEntity(p *project, e *Environment) envJSON {
	bp := s.envProject(p)
	return envJSON{
		EnvironmentBasic: envBasic(e), Tier: e.Tier, Project: &bp, State: e.State,
		AutoStopAt: gitlabapi.FormatTimePtr(e.AutoStopAt), Description: gitlabapi.NullIfEmpty(e.Description),
		AutoStopSetting: e.AutoStopSetting,
	}
}

// envDetail is GET …/environments/:id: without the project, with the last
// successful deployment (or null).
func (s *Server) envDetail(p *project, e *Environment) envJSON {
	var last []byte
	if d := p.lastDeployment(e.ID); d != nil {
		last, _ = json.Marshal(s.deploymentEntity(p, d, false))
	}
	return s.envEntity(p, e).Detail(last)
}

func (p *project) envByID(id int64) *Environment {
	for _, e := range p.envs {
		if e.ID == id {
			return e
		}
	}
	return nil
}

func (p *project) envByName(name string) *Environment {
	for _, e := range p.envs {
		if e.Name == name {
			return e
		}
	}
	return nil
}

// findEnvironment is user_project.environments.find: a miss is
// ActiveRecord::RecordNotFound, which the API answers {"message":"404 Not
// found"} (spec/requests/api/environments_spec.rb).
func (rq *request) findEnvironment(p *project, id int64) (*Environment, bool) {
	if e := p.envByID(id); e != nil {
		return e, true
	}
	gitlabapi.RecordNotFound(rq.w)
	return nil, false
}

// validateEnvironment runs the Environment model's validations in their
// declaration order, name and slug included (they cannot change, so they
// hold on update).
func validateEnvironment(p *project, e *Environment, k8sNamespace, fluxPath string) gitlabapi.FieldErrors {
	var nameTaken, slugTaken bool
	for _, o := range p.envs {
		nameTaken = nameTaken || (o.ID != e.ID && o.Name == e.Name)
		slugTaken = slugTaken || (o.ID != e.ID && o.Slug == e.Slug)
	}
	var errs gitlabapi.FieldErrors
	gitlabapi.CheckEnvironmentName(&errs, e.Name, nameTaken, slugTaken)
	gitlabapi.CheckEnvironmentFields(&errs, e.ExternalURL, e.Description, k8sNamespace, fluxPath)
	return errs
}

// newEnvironment builds an environment the way Environment's callbacks
// complete it: generated slug, guessed tier, state available.
func (s *Server) newEnvironment(p *project, name string) *Environment {
	now := s.now()
	return &Environment{
		ProjectID: p.ID, Name: name, Slug: slug.Environment(name), State: "available",
		Tier: gitlabapi.GuessTier(name), AutoStopSetting: "always", CreatedAt: now, UpdatedAt: now,
	}
}

func (s *Server) saveNewEnvironment(p *project, e *Environment) {
	e.ID = s.ids.take(&s.ids.env, 0)
	p.envs = append(p.envs, e)
}

// listEnvironments declares `use :pagination` before the filters
// (lib/api/environments.rb:31-40), so Grape reports page and per_page
// errors first.
func (s *Server) listEnvironments(rq *request) {
	g := rq.p.Grape()
	win := gitlabapi.ReadWindow(g)
	f := gitlabapi.ReadEnvironmentFilter(g)
	if !g.OK(rq.w) {
		return
	}
	p, ok := rq.project(accessReporter)
	if !ok {
		return
	}
	if strings.TrimSpace(f.Search) != "" && utf8.RuneCountInString(f.Search) < gitlabapi.MinSearchLength {
		gitlabapi.BadRequest(rq.w, gitlabapi.SearchTooShort)
		return
	}
	var envs []*Environment
	for _, e := range p.envs {
		if gitlabapi.CannotMatch(f) {
			break
		}
		if (f.Name != "" && e.Name != f.Name) || (f.HasStates && e.State != f.States) ||
			(strings.TrimSpace(f.Search) != "" && !gitlabapi.SearchMatches(e.Name, f.Search)) {
			continue
		}
		envs = append(envs, e)
	}
	page := pageOf(rq, envs, win)
	out := make([]envJSON, 0, len(page))
	for _, e := range page {
		out = append(out, s.envEntity(p, e))
	}
	gitlabapi.WriteJSON(rq.w, http.StatusOK, out)
}

func (s *Server) getEnvironment(rq *request) {
	id, ok := rq.pathInt("environment_id")
	if !ok {
		return
	}
	p, ok := rq.project(accessReporter)
	if !ok {
		return
	}
	if e, ok := rq.findEnvironment(p, id); ok {
		gitlabapi.WriteJSON(rq.w, http.StatusOK, s.envDetail(p, e))
	}
}

// applyAttrs sets the attributes that were sent.
func applyAttrs(a gitlabapi.EnvironmentAttrs, e *Environment) {
	a.Apply(e.Name, &e.ExternalURL, &e.Tier, &e.Description)
	a.ApplyAutoStopSetting(&e.AutoStopSetting)
}

func (s *Server) createEnvironment(rq *request) {
	g := rq.p.Grape()
	name := gitlabapi.ReadEnvironmentName(g)
	attrs := gitlabapi.ReadEnvironmentAttrs(g)
	if !g.OK(rq.w) {
		return
	}
	p, ok := rq.project(accessDeveloper)
	if !ok {
		return
	}
	if attrs.ClusterAgent {
		gitlabapi.BadRequest(rq.w, gitlabapi.NoClusterAgent)
		return
	}
	e := s.newEnvironment(p, name)
	applyAttrs(attrs, e)
	if errs := validateEnvironment(p, e, attrs.KubernetesNamespace, attrs.FluxResourcePath); !errs.Empty() {
		gitlabapi.ValidationError(rq.w, errs)
		return
	}
	s.saveNewEnvironment(p, e)
	gitlabapi.WriteJSON(rq.w, http.StatusCreated, s.envEntity(p, e))
}

// editEnvironment changes only external_url, tier, description and
// auto_stop_setting; the name cannot change.
func (s *Server) editEnvironment(rq *request) {
	g := rq.p.Grape()
	id := g.PathInt(rq.vars, "environment_id") // declared first (lib/api/environments.rb:110)
	attrs := gitlabapi.ReadEnvironmentAttrs(g)
	if !g.OK(rq.w) {
		return
	}
	p, ok := rq.project(accessDeveloper)
	if !ok {
		return
	}
	e, ok := rq.findEnvironment(p, id)
	if !ok {
		return
	}
	if attrs.ClusterAgent {
		gitlabapi.BadRequest(rq.w, gitlabapi.NoClusterAgent)
		return
	}
	edited := *e
	applyAttrs(attrs, &edited)
	if errs := validateEnvironment(p, &edited, attrs.KubernetesNamespace, attrs.FluxResourcePath); !errs.Empty() {
		gitlabapi.ValidationError(rq.w, errs)
		return
	}
	if edited != *e {
		edited.UpdatedAt = s.now()
		*e = edited
	}
	gitlabapi.WriteJSON(rq.w, http.StatusOK, s.envEntity(p, e))
}

// stop is Environments::StopService#unsafe_execute! for an environment
// without stop jobs (the double runs no CI): see gitlabapi.Stop. It reports
// whether the state changed.
func (s *Server) stop(e *Environment, force bool) bool {
	next, ok := gitlabapi.Stop(e.State, force, e.AutoStopSetting == gitlabapi.DefaultAutoStopSetting, false)
	if !ok {
		return false
	}
	e.State, e.UpdatedAt = next, s.now()
	if next == gitlabapi.StateStopped {
		e.AutoStopAt = nil // before_transition any => :stopped
	}
	return true
}

// stopEnvironment authorizes :stop_environment on the environment after
// finding it (lib/api/environments.rb:218-228): a Reporter gets 403, and
// (EnvironmentPolicy stop_with_update_allowed) a Developer may stop. A stop
// that changes nothing is StopService's error, answered 400.
func (s *Server) stopEnvironment(rq *request) {
	g := rq.p.Grape()
	id := g.PathInt(rq.vars, "environment_id")
	force, _ := g.OptBool("force")
	if !g.OK(rq.w) {
		return
	}
	p, ok := rq.project(accessReporter)
	if !ok {
		return
	}
	e, ok := rq.findEnvironment(p, id)
	if !ok {
		return
	}
	if s.accessLevel(p, rq.user) < accessDeveloper {
		gitlabapi.Forbidden(rq.w)
		return
	}
	if !s.stop(e, force) {
		gitlabapi.BadRequest(rq.w, gitlabapi.StopFailed)
		return
	}
	gitlabapi.WriteJSON(rq.w, http.StatusOK, s.envEntity(p, e))
}

// deleteEnvironment is allowed only once the environment is stopped
// (EnvironmentPolicy: ~stopped prevents destroy_environment), then
// destroy_conditionally! answers 412 when If-Unmodified-Since is older than
// the environment's last change (lib/api/helpers.rb:35-50).
func (s *Server) deleteEnvironment(rq *request) {
	id, ok := rq.pathInt("environment_id")
	if !ok {
		return
	}
	p, ok := rq.project(accessReporter)
	if !ok {
		return
	}
	e, ok := rq.findEnvironment(p, id)
	if !ok {
		return
	}
	if e.State != gitlabapi.StateStopped || s.accessLevel(p, rq.user) < accessDeveloper {
		gitlabapi.Forbidden(rq.w)
		return
	}
	if gitlabapi.ModifiedSince(rq.r.Header, e.UpdatedAt) {
		gitlabapi.PreconditionFailed(rq.w)
		return
	}
	p.envs = slices.DeleteFunc(p.envs, func(x *Environment) bool { return x == e })
	p.deleteDeploymentsOf(e.ID)
	gitlabapi.NoContent(rq.w)
}
