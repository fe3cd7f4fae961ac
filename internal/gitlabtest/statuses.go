package gitlabtest

import (
	"cmp"
	"net/http"
	"net/url"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/glenv/glenv/internal/gitlabapi"
)

// CommitStatus is an external job GitLab keeps for POST …/statuses/:sha.
type CommitStatus struct {
	ID          int64
	SHA         string
	Ref         string
	Status      string // pending, running, success, failed, canceled or skipped
	Name        string
	TargetURL   string
	Description string
	Coverage    *float64
	PipelineID  int64
	AuthorID    int64
	// Retried is set on an older job once a newer one with the same name
	// replaced it; listings hide retried jobs unless all=true.
	Retried    bool
	CreatedAt  time.Time
	StartedAt  *time.Time
	FinishedAt *time.Time
}

// pipeline is the external pipeline statuses of one sha and ref hang in.
type pipeline struct {
	id       int64
	sha, ref string
}

var statusStates = []string{"pending", "running", "success", "failed", "canceled", "skipped"}

// Statuses returns a snapshot of every status set on sha, retried ones
// included, oldest first.
func (s *Server) Statuses(projectID int64, sha string) []CommitStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []CommitStatus{}
	for _, st := range s.mustProject(projectID).statuses {
		if st.SHA == sha {
			out = append(out, *st)
		}
	}
	return out
}

type statusJSON struct {
	ID           int64     `json:"id"`
	SHA          string    `json:"sha"`
	Ref          string    `json:"ref"`
	Status       string    `json:"status"`
	Name         string    `json:"name"`
	TargetURL    *string   `json:"target_url"`
	Description  *string   `json:"description"`
	CreatedAt    string    `json:"created_at"`
	StartedAt    *string   `json:"started_at"`
	FinishedAt   *string   `json:"finished_at"`
	AllowFailure bool      `json:"allow_failure"`
	Coverage     *float64  `json:"coverage"`
	PipelineID   int64     `json:"pipeline_id"`
	Author       *userJSON `json:"author"`
}

func (s *Server) statusEntity(st *CommitStatus) statusJSON {
	return statusJSON{
		ID: st.ID, SHA: st.SHA, Ref: st.Ref, Status: st.Status, Name: st.Name,
		TargetURL: gitlabapi.NullIfEmpty(st.TargetURL), Description: gitlabapi.NullIfEmpty(st.Description),
		CreatedAt: gitlabapi.FormatTime(st.CreatedAt), StartedAt: gitlabapi.FormatTimePtr(st.StartedAt),
		FinishedAt: gitlabapi.FormatTimePtr(st.FinishedAt), Coverage: st.Coverage, PipelineID: st.PipelineID,
		Author: s.userBasic(st.AuthorID),
	}
}

// transition applies a requested state to a job in state from, following
// Ci::CreateCommitStatusService#apply_job_state! and CommitStatus's state
// machine. It returns the failing event, if any.
func transition(from, to string) (event string, ok bool) {
	switch to {
	case "pending":
		return "enqueue", from == "created"
	case "running":
		// enqueue (ignored when it cannot fire) then run!
		return "run", from == "created" || from == "pending"
	case "skipped":
		return "skip", from == "created" || from == "pending"
	default: // success!, drop!, cancel! from created, pending or running
		return map[string]string{"success": "success", "failed": "drop", "canceled": "cancel"}[to], true
	}
}

// statusURLValid is AddressableUrlValidator with its default schemes.
func statusURLValid(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

func (s *Server) createStatus(rq *request) {
	g := rq.p.Grape()
	state, hasState := g.RequireString("state")
	g.Values("state", state, hasState, statusStates...)
	ref, hasRef := g.OptString("ref")
	targetURL, hasTarget := g.OptString("target_url")
	description, hasDescription := g.OptString("description")
	name, hasName := g.OptString("name")
	context, hasContext := g.OptString("context")
	coverage, hasCoverage := g.OptFloat("coverage")
	pipelineID, hasPipeline := g.OptInt("pipeline_id")
	if !g.OK(rq.w) {
		return
	}
	p, ok := rq.project(accessDeveloper)
	if !ok {
		return
	}

	sha := p.commit(rq.vars["sha"])
	if sha == "" {
		gitlabapi.NotFound(rq.w, "Commit")
		return
	}
	pl := p.matchingPipeline(sha, ref, hasRef, pipelineID, hasPipeline)
	if !hasRef {
		if pl != nil {
			ref = pl.ref
		} else {
			ref = p.branchContaining(sha)
		}
	}
	if ref == "" {
		gitlabapi.NotFound(rq.w, "References for commit")
		return
	}
	if hasPipeline && pl == nil {
		gitlabapi.NotFound(rq.w, "Pipeline for pipeline_id, sha and ref")
		return
	}
	if !hasName {
		name = "default"
		if hasContext {
			name = context
		}
	}

	var job *CommitStatus
	if pl != nil {
		job = p.runningJob(pl.id, ref, name, rq.user.ID)
	}
	next := CommitStatus{SHA: sha, Ref: ref, Status: "created", Name: name, AuthorID: rq.user.ID, CreatedAt: s.now()}
	if job != nil {
		next = *job
	}
	if hasTarget {
		next.TargetURL = targetURL
	}
	if hasDescription {
		next.Description = description
	}
	if hasCoverage {
		next.Coverage = &coverage
	}
	if e := validateStatus(next); !e.Empty() {
		gitlabapi.Message(rq.w, http.StatusBadRequest, e)
		return
	}
	if event, ok := transition(next.Status, state); !ok {
		gitlabapi.Message(rq.w, http.StatusBadRequest, "Cannot transition status via :"+event+" from :"+next.Status+
			` (Reason(s): Status cannot transition via "`+event+`")`)
		return
	}

	// GitLab creates the pipeline before validating the job; the double
	// waits, so that a refused ref does not become the sha's default ref.
	if pl == nil {
		pl = &pipeline{id: s.ids.take(&s.ids.pipeline, 0), sha: sha, ref: ref}
		p.pipelines = append(p.pipelines, *pl)
	}
	next.PipelineID = pl.id
	now := s.now()
	if state == "running" {
		next.StartedAt = &now
	}
	if state != "pending" && state != "running" {
		next.FinishedAt = &now
	}
	next.Status = state
	if job != nil {
		*job = next
		gitlabapi.WriteJSON(rq.w, http.StatusCreated, s.statusEntity(job))
		return
	}
	for _, old := range p.statuses {
		if old.PipelineID == pl.id && old.Name == name {
			old.Retried = true
		}
	}
	next.ID = s.ids.take(&s.ids.status, 0)
	p.statuses = append(p.statuses, &next)
	gitlabapi.WriteJSON(rq.w, http.StatusCreated, s.statusEntity(&next))
}

// validateStatus runs CommitStatus and GenericCommitStatus validations.
func validateStatus(st CommitStatus) gitlabapi.FieldErrors {
	var e gitlabapi.FieldErrors
	tooLong := "is too long (maximum is 255 characters)"
	if utf8.RuneCountInString(st.Ref) > 255 {
		e.Add("ref", tooLong)
	}
	if utf8.RuneCountInString(st.TargetURL) > 255 {
		e.Add("target_url", tooLong)
	}
	if utf8.RuneCountInString(st.Description) > 255 {
		e.Add("description", tooLong)
	}
	if st.TargetURL != "" && !statusURLValid(st.TargetURL) {
		e.Add("target_url", "is blocked: Only allowed schemes are http, https")
	}
	return e
}

// matchingPipeline is first_matching_pipeline: the newest pipeline for sha,
// narrowed by ref and pipeline_id when given.
func (p *project) matchingPipeline(sha, ref string, hasRef bool, id int64, hasID bool) *pipeline {
	for i := len(p.pipelines) - 1; i >= 0; i-- {
		pl := p.pipelines[i]
		if pl.sha == sha && (!hasRef || pl.ref == ref) && (!hasID || pl.id == id) {
			return &pl
		}
	}
	return nil
}

// runningJob finds the pending or running job a new status updates in
// place: same pipeline, ref, name and user.
func (p *project) runningJob(pipelineID int64, ref, name string, userID int64) *CommitStatus {
	for _, st := range p.statuses {
		if st.PipelineID == pipelineID && st.Ref == ref && st.Name == name && st.AuthorID == userID &&
			(st.Status == "pending" || st.Status == "running") {
			return st
		}
	}
	return nil
}

func (s *Server) listStatuses(rq *request) {
	g := rq.p.Grape()
	ref, hasRef := g.OptString("ref")
	stage, hasStage := g.OptString("stage")
	name, hasName := g.OptString("name")
	pipelineID, hasPipeline := g.OptInt("pipeline_id")
	all, _ := g.OptBool("all")
	orderBy, hasOrder := g.OptString("order_by")
	g.Values("order_by", orderBy, hasOrder, "id", "pipeline_id")
	sortDir, hasSort := g.OptString("sort")
	g.Values("sort", sortDir, hasSort, "asc", "desc")
	if !g.OK(rq.w) {
		return
	}
	p, ok := rq.project(accessRead)
	if !ok {
		return
	}
	sha := p.commit(rq.vars["sha"])
	if sha == "" {
		gitlabapi.NotFound(rq.w, "Commit")
		return
	}
	var out []*CommitStatus
	for _, st := range p.statuses {
		if st.SHA != sha || (st.Retried && !all) || (hasRef && ref != "" && st.Ref != ref) ||
			(hasStage && stage != "" && stage != "external") || (hasName && name != "" && st.Name != name) ||
			(hasPipeline && st.PipelineID != pipelineID) {
			continue
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b *CommitStatus) int {
		c := cmp.Compare(a.ID, b.ID)
		if orderBy == "pipeline_id" {
			c = cmp.Or(cmp.Compare(a.PipelineID, b.PipelineID), c)
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
	js := make([]statusJSON, 0, len(page))
	for _, st := range page {
		js = append(js, s.statusEntity(st))
	}
	gitlabapi.WriteJSON(rq.w, http.StatusOK, js)
}
