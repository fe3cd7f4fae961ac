package gitlabtest

import (
	"cmp"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/glenv/glenv/internal/gitlabapi"
)

// Deployment is a deployment created through the API (no CI job behind it).
type Deployment struct {
	ID            int64
	IID           int64 // per project
	ProjectID     int64
	EnvironmentID int64
	Ref           string
	SHA           string
	Tag           bool
	Status        string // created, running, success, failed, canceled, skipped or blocked
	UserID        int64
	CreatedAt     time.Time
	UpdatedAt     time.Time
	FinishedAt    *time.Time
}

var (
	deploymentWriteStatuses = []string{"running", "success", "failed", "canceled"}
	deploymentStatuses      = []string{"created", "running", "success", "failed", "canceled", "skipped", "blocked"}
)

// Deployments returns a snapshot of a project's deployments by ID.
func (s *Server) Deployments(projectID int64) []Deployment {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.mustProject(projectID)
	s.purgeScheduled(p)
	out := []Deployment{}
	for _, d := range p.deployments {
		out = append(out, *d)
	}
	return out
}

// deploymentEntity is API::Entities::Deployment; an environment's
// last_deployment leaves out the environment.
func (s *Server) deploymentEntity(p *project, d *Deployment, withEnv bool) gitlabapi.Deployment {
	out := gitlabapi.Deployment{
		ID: d.ID, IID: d.IID, Ref: d.Ref, SHA: d.SHA,
		CreatedAt: gitlabapi.FormatTime(d.CreatedAt), UpdatedAt: gitlabapi.FormatTime(d.UpdatedAt),
		User: s.deploymentUser(d.UserID), Status: d.Status,
	}
	if e := p.envByID(d.EnvironmentID); withEnv && e != nil {
		b := envBasic(e)
		out.Environment = &b
	}
	return out
}

// deploymentUser is the deployment's user as UserBasic; a deployment made
// through the API always has one.
func (s *Server) deploymentUser(id int64) *gitlabapi.UserBasic {
	u := s.userBasic(id)
	if u == nil {
		return nil
	}
	return &gitlabapi.UserBasic{ID: u.ID, Username: u.Username, Name: u.Name, State: u.State, Locked: u.Locked,
		AvatarURL: &u.AvatarURL, WebURL: u.WebURL}
}

// lastDeployment is Environment#last_deployment: the successful deployment
// that finished last.
func (p *project) lastDeployment(envID int64) *Deployment {
	var last *Deployment
	for _, d := range p.deployments {
		if d.EnvironmentID != envID || d.Status != "success" {
			continue
		}
		if last == nil || d.FinishedAt.After(*last.FinishedAt) ||
			(d.FinishedAt.Equal(*last.FinishedAt) && d.ID > last.ID) {
			last = d
		}
	}
	return last
}

// deploymentEvent is Deployment#update_status!: the event a status maps to
// and whether the state machine lets it fire from status from.
func deploymentEvent(from, to string) (event string, ok bool) {
	switch to {
	case "running":
		return "run", from == "created" || from == "blocked"
	case "success":
		return "succeed", from != "success"
	case "failed":
		return "drop", from != "failed"
	default:
		return "cancel", from != "canceled"
	}
}

// setDeploymentStatus moves d to status. A success restarts a stopped
// environment, as Deployments::UpdateEnvironmentService does.
func (s *Server) setDeploymentStatus(p *project, d *Deployment, status string) {
	now := s.now()
	d.Status, d.UpdatedAt = status, now
	if status != "running" {
		d.FinishedAt = &now
	}
	if e := p.envByID(d.EnvironmentID); status == "success" && e != nil && e.State != "available" {
		e.State, e.UpdatedAt = "available", now
	}
}

func (s *Server) createDeployment(rq *request) {
	g := rq.p.Grape()
	envName, _ := g.RequireString("environment")
	sha, _ := g.RequireString("sha")
	ref, _ := g.RequireString("ref")
	tag := g.RequireBool("tag")
	status, hasStatus := g.RequireString("status")
	g.Values("status", status, hasStatus, deploymentWriteStatuses...)
	if !g.OK(rq.w) {
		return
	}
	p, ok := rq.project(accessDeveloper)
	if !ok {
		return
	}
	if p.commit(ref) == "" {
		var e gitlabapi.FieldErrors
		e.Add("ref", "The branch or tag does not exist")
		gitlabapi.ValidationError(rq.w, e)
		return
	}
	env := p.envByName(envName)
	if env == nil {
		env = s.newEnvironment(p, envName)
		if errs := validateEnvironment(p, env, "", ""); !errs.Empty() {
			gitlabapi.ValidationError(rq.w, errs)
			return
		}
		s.saveNewEnvironment(p, env)
	}
	// Deployments::CreateService returns the last deployment unchanged when
	// the request repeats it.
	if last := p.lastDeployment(env.ID); last != nil &&
		last.Ref == ref && last.Tag == tag && last.SHA == sha && last.Status == status {
		gitlabapi.WriteJSON(rq.w, http.StatusCreated, s.deploymentEntity(p, last, true))
		return
	}
	if p.commit(sha) == "" {
		var e gitlabapi.FieldErrors
		e.Add("sha", "The commit does not exist")
		gitlabapi.ValidationError(rq.w, e)
		return
	}
	now := s.now()
	p.deploymentIID++
	d := &Deployment{
		ID: s.ids.take(&s.ids.deployment, 0), IID: p.deploymentIID, ProjectID: p.ID, EnvironmentID: env.ID,
		Ref: ref, SHA: sha, Tag: tag, Status: "created", UserID: rq.user.ID, CreatedAt: now, UpdatedAt: now,
	}
	p.deployments = append(p.deployments, d)
	s.setDeploymentStatus(p, d, status)
	gitlabapi.WriteJSON(rq.w, http.StatusCreated, s.deploymentEntity(p, d, true))
}

func (rq *request) findDeployment(p *project) (*Deployment, bool) {
	id, ok := rq.pathInt("deployment_id")
	if !ok {
		return nil, false
	}
	for _, d := range p.deployments {
		if d.ID == id {
			return d, true
		}
	}
	gitlabapi.RecordNotFound(rq.w)
	return nil, false
}

func (s *Server) updateDeployment(rq *request) {
	g := rq.p.Grape()
	status, hasStatus := g.RequireString("status")
	g.Values("status", status, hasStatus, deploymentWriteStatuses...)
	if !g.OK(rq.w) {
		return
	}
	p, ok := rq.project(accessDeveloper)
	if !ok {
		return
	}
	d, ok := rq.findDeployment(p)
	if !ok {
		return
	}
	if event, ok := deploymentEvent(d.Status, status); !ok {
		var e gitlabapi.FieldErrors
		e.Add("status", `cannot transition via "`+event+`"`)
		gitlabapi.ValidationError(rq.w, e)
		return
	}
	s.setDeploymentStatus(p, d, status)
	gitlabapi.WriteJSON(rq.w, http.StatusOK, s.deploymentEntity(p, d, true))
}

func (s *Server) getDeployment(rq *request) {
	p, ok := rq.project(accessReporter)
	if !ok {
		return
	}
	if d, ok := rq.findDeployment(p); ok {
		gitlabapi.WriteJSON(rq.w, http.StatusOK, s.deploymentEntity(p, d, true))
	}
}

func (s *Server) listDeployments(rq *request) {
	g := rq.p.Grape()
	orderBy, hasOrder := g.OptString("order_by")
	g.Values("order_by", orderBy, hasOrder, "id", "iid", "created_at", "updated_at", "finished_at", "ref")
	sortDir, hasSort := g.OptString("sort")
	g.Values("sort", sortDir, hasSort, "asc", "desc")
	updatedAfter, hasUpdatedAfter := g.OptTime("updated_after")
	updatedBefore, hasUpdatedBefore := g.OptTime("updated_before")
	finishedAfter, hasFinishedAfter := g.OptTime("finished_after")
	finishedBefore, hasFinishedBefore := g.OptTime("finished_before")
	envName, _ := g.OptString("environment")
	status, hasStatus := g.OptString("status")
	g.Values("status", status, hasStatus, deploymentStatuses...)
	if !g.OK(rq.w) {
		return
	}
	p, ok := rq.project(accessReporter)
	if !ok {
		return
	}
	var envID int64 = -1
	if e := p.envByName(envName); e != nil {
		envID = e.ID
	}
	var out []*Deployment
	for _, d := range p.deployments {
		finished := d.FinishedAt != nil
		if (envName != "" && d.EnvironmentID != envID) || (hasStatus && d.Status != status) ||
			(hasUpdatedAfter && d.UpdatedAt.Before(updatedAfter)) ||
			(hasUpdatedBefore && !d.UpdatedAt.Before(updatedBefore)) ||
			(hasFinishedAfter && (!finished || d.FinishedAt.Before(finishedAfter))) ||
			(hasFinishedBefore && (!finished || !d.FinishedAt.Before(finishedBefore))) {
			continue
		}
		out = append(out, d)
	}
	slices.SortStableFunc(out, func(a, b *Deployment) int {
		c := cmp.Compare(a.ID, b.ID)
		switch orderBy {
		case "iid":
			c = cmp.Compare(a.IID, b.IID)
		case "created_at":
			c = cmp.Or(a.CreatedAt.Compare(b.CreatedAt), c)
		case "updated_at":
			c = cmp.Or(a.UpdatedAt.Compare(b.UpdatedAt), c)
		case "finished_at":
			c = cmp.Or(cmpTimePtr(a.FinishedAt, b.FinishedAt), c)
		case "ref":
			c = cmp.Or(strings.Compare(a.Ref, b.Ref), c)
		}
		if sortDir == "desc" {
			c = -c
		}
		return c
	})
	page, ok := paginate(rq, out)
	if !ok {
		return
	}
	js := make([]gitlabapi.Deployment, 0, len(page))
	for _, d := range page {
		js = append(js, s.deploymentEntity(p, d, true))
	}
	gitlabapi.WriteJSON(rq.w, http.StatusOK, js)
}

func cmpTimePtr(a, b *time.Time) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return 1
	case b == nil:
		return -1
	}
	return a.Compare(*b)
}
