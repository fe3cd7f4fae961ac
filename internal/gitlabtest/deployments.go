package gitlabtest

import (
	"cmp"
	"net/http"
	"slices"
	"strings"
	"time"
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

type deploymentJSON struct {
	ID          int64         `json:"id"`
	IID         int64         `json:"iid"`
	Ref         string        `json:"ref"`
	SHA         string        `json:"sha"`
	CreatedAt   string        `json:"created_at"`
	UpdatedAt   string        `json:"updated_at"`
	FinishedAt  *string       `json:"finished_at"`
	User        *userJSON     `json:"user"`
	Environment *envBasicJSON `json:"environment,omitempty"`
	Deployable  any           `json:"deployable"`
	Status      string        `json:"status"`
}

// deploymentEntity is API::Entities::Deployment; an environment's
// last_deployment leaves out the environment.
func (s *Server) deploymentEntity(p *project, d *Deployment, withEnv bool) deploymentJSON {
	out := deploymentJSON{
		ID: d.ID, IID: d.IID, Ref: d.Ref, SHA: d.SHA,
		CreatedAt: apiTime(d.CreatedAt), UpdatedAt: apiTime(d.UpdatedAt), FinishedAt: apiTimePtr(d.FinishedAt),
		User: s.userBasic(d.UserID), Status: d.Status,
	}
	if e := p.envByID(d.EnvironmentID); withEnv && e != nil {
		b := envBasic(e)
		out.Environment = &b
	}
	return out
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
	g := rq.grape()
	envName, _ := g.requireString("environment")
	sha, _ := g.requireString("sha")
	ref, _ := g.requireString("ref")
	tag := g.requireBool("tag")
	status, hasStatus := g.requireString("status")
	g.values("status", status, hasStatus, deploymentWriteStatuses...)
	if !g.ok(rq) {
		return
	}
	p, ok := rq.project(accessDeveloper)
	if !ok {
		return
	}
	if p.commit(ref) == "" {
		var e fieldErrors
		e.add("ref", "The branch or tag does not exist")
		rq.validationError(e)
		return
	}
	env := p.envByName(envName)
	if env == nil {
		env = s.newEnvironment(p, envName)
		if errs := validateEnvironment(p, env, "", ""); !errs.empty() {
			rq.validationError(errs)
			return
		}
		s.saveNewEnvironment(p, env)
	}
	// Deployments::CreateService returns the last deployment unchanged when
	// the request repeats it.
	if last := p.lastDeployment(env.ID); last != nil &&
		last.Ref == ref && last.Tag == tag && last.SHA == sha && last.Status == status {
		rq.json(http.StatusCreated, s.deploymentEntity(p, last, true))
		return
	}
	if p.commit(sha) == "" {
		var e fieldErrors
		e.add("sha", "The commit does not exist")
		rq.validationError(e)
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
	rq.json(http.StatusCreated, s.deploymentEntity(p, d, true))
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
	rq.recordNotFound()
	return nil, false
}

func (s *Server) updateDeployment(rq *request) {
	g := rq.grape()
	status, hasStatus := g.requireString("status")
	g.values("status", status, hasStatus, deploymentWriteStatuses...)
	if !g.ok(rq) {
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
		var e fieldErrors
		e.add("status", `cannot transition via "`+event+`"`)
		rq.validationError(e)
		return
	}
	s.setDeploymentStatus(p, d, status)
	rq.json(http.StatusOK, s.deploymentEntity(p, d, true))
}

func (s *Server) getDeployment(rq *request) {
	p, ok := rq.project(accessRead)
	if !ok {
		return
	}
	if d, ok := rq.findDeployment(p); ok {
		rq.json(http.StatusOK, s.deploymentEntity(p, d, true))
	}
}

func (s *Server) listDeployments(rq *request) {
	g := rq.grape()
	orderBy, hasOrder := g.optString("order_by")
	g.values("order_by", orderBy, hasOrder, "id", "iid", "created_at", "updated_at", "finished_at", "ref")
	sortDir, hasSort := g.optString("sort")
	g.values("sort", sortDir, hasSort, "asc", "desc")
	updatedAfter, hasUpdatedAfter := g.optTime("updated_after")
	updatedBefore, hasUpdatedBefore := g.optTime("updated_before")
	finishedAfter, hasFinishedAfter := g.optTime("finished_after")
	finishedBefore, hasFinishedBefore := g.optTime("finished_before")
	envName, _ := g.optString("environment")
	status, hasStatus := g.optString("status")
	g.values("status", status, hasStatus, deploymentStatuses...)
	if !g.ok(rq) {
		return
	}
	p, ok := rq.project(accessRead)
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
	js := make([]deploymentJSON, 0, len(page))
	for _, d := range page {
		js = append(js, s.deploymentEntity(p, d, true))
	}
	rq.json(http.StatusOK, js)
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
