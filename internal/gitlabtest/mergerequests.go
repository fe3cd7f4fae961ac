package gitlabtest

import (
	"cmp"
	"net/http"
	"slices"
	"time"

	"github.com/glenv/glenv/internal/gitlabapi"
)

// MergeRequest is a merge request as tests seed it.
type MergeRequest struct {
	IID             int64
	Title           string
	SourceBranch    string
	TargetBranch    string
	SHA             string
	State           string // opened (default), closed, merged or locked
	Draft           bool
	SourceProjectID int64 // 0 = same project
	UpdatedAt       time.Time
	AuthorID        int64 // 0 = GitLab's ghost user
}

type mergeRequest struct {
	MergeRequest
	id        int64 // global, distinct from IID
	createdAt time.Time
}

// SetMergeRequest creates the merge request with mr.IID, or replaces its
// fields; its global ID and creation time stay.
func (s *Server) SetMergeRequest(projectID int64, mr MergeRequest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.mustProject(projectID)
	if mr.State == "" {
		mr.State = "opened"
	}
	if mr.UpdatedAt.IsZero() {
		mr.UpdatedAt = s.now()
	}
	if mr.SourceProjectID == 0 {
		mr.SourceProjectID = projectID
	}
	s.knowCommit(p, mr.SHA)
	if old := p.mrs[mr.IID]; old != nil {
		old.MergeRequest = mr
		return
	}
	p.mrs[mr.IID] = &mergeRequest{MergeRequest: mr, id: s.ids.take(&s.ids.mr, 0), createdAt: s.now()}
}

type mergeRequestJSON struct {
	ID              int64     `json:"id"`
	IID             int64     `json:"iid"`
	ProjectID       int64     `json:"project_id"`
	Title           string    `json:"title"`
	Description     *string   `json:"description"`
	State           string    `json:"state"`
	CreatedAt       string    `json:"created_at"`
	UpdatedAt       string    `json:"updated_at"`
	TargetBranch    string    `json:"target_branch"`
	SourceBranch    string    `json:"source_branch"`
	Author          *userJSON `json:"author"`
	SourceProjectID int64     `json:"source_project_id"`
	TargetProjectID int64     `json:"target_project_id"`
	Draft           bool      `json:"draft"`
	WorkInProgress  bool      `json:"work_in_progress"`
	SHA             string    `json:"sha"`
	WebURL          string    `json:"web_url"`
}

func (s *Server) mergeRequestEntity(p *project, mr *mergeRequest) mergeRequestJSON {
	return mergeRequestJSON{
		ID: mr.id, IID: mr.IID, ProjectID: p.ID, Title: mr.Title, State: mr.State,
		CreatedAt: gitlabapi.FormatTime(mr.createdAt), UpdatedAt: gitlabapi.FormatTime(mr.UpdatedAt),
		TargetBranch: mr.TargetBranch, SourceBranch: mr.SourceBranch,
		SourceProjectID: mr.SourceProjectID, TargetProjectID: p.ID,
		Author: s.mrAuthor(mr.AuthorID), Draft: mr.Draft, WorkInProgress: mr.Draft, SHA: mr.SHA,
		WebURL: s.projectWebURL(p) + "/-/merge_requests/" + itoa(mr.IID),
	}
}

// mrAuthor is the author's UserBasic; a merge request seeded without one
// shows the ghost user GitLab puts in place of deleted accounts, so that
// author is never null.
func (s *Server) mrAuthor(id int64) *userJSON {
	if u := s.userBasic(id); u != nil {
		return u
	}
	return &userJSON{ID: 0, Username: "ghost", Name: "Ghost User", State: "active", WebURL: s.URL + "/ghost"}
}

func (s *Server) listMergeRequests(rq *request) {
	g := rq.p.Grape()
	state, hasState := g.OptString("state")
	g.Values("state", state, hasState, "opened", "closed", "locked", "merged", "all")
	orderBy, hasOrder := g.OptString("order_by")
	g.Values("order_by", orderBy, hasOrder, "created_at", "updated_at")
	sortDir, hasSort := g.OptString("sort")
	g.Values("sort", sortDir, hasSort, "asc", "desc")
	source, hasSource := g.OptString("source_branch")
	target, hasTarget := g.OptString("target_branch")
	if !g.OK(rq.w) {
		return
	}
	p, ok := rq.project(accessRead)
	if !ok {
		return
	}
	var mrs []*mergeRequest
	for _, mr := range p.mrs {
		if (hasState && state != "all" && mr.State != state) ||
			(hasSource && mr.SourceBranch != source) || (hasTarget && mr.TargetBranch != target) {
			continue
		}
		mrs = append(mrs, mr)
	}
	slices.SortFunc(mrs, func(a, b *mergeRequest) int {
		return byTime(orderBy, sortDir, a.createdAt, b.createdAt, a.UpdatedAt, b.UpdatedAt, a.id, b.id)
	})
	page, ok := paginate(rq, mrs)
	if !ok {
		return
	}
	out := make([]mergeRequestJSON, 0, len(page))
	for _, mr := range page {
		out = append(out, s.mergeRequestEntity(p, mr))
	}
	gitlabapi.WriteJSON(rq.w, http.StatusOK, out)
}

// mergeRequest is find_project_merge_request: a miss is a plain
// ActiveRecord 404.
func (rq *request) mergeRequest(p *project) (*mergeRequest, bool) {
	iid, ok := rq.pathInt("merge_request_iid")
	if !ok {
		return nil, false
	}
	mr := p.mrs[iid]
	if mr == nil {
		gitlabapi.RecordNotFound(rq.w)
		return nil, false
	}
	return mr, true
}

func (s *Server) getMergeRequest(rq *request) {
	p, ok := rq.project(accessRead)
	if !ok {
		return
	}
	mr, ok := rq.mergeRequest(p)
	if !ok {
		return
	}
	gitlabapi.WriteJSON(rq.w, http.StatusOK, s.mergeRequestEntity(p, mr))
}

// byTime is GitLab's order_by=created_at|updated_at with sort=asc|desc
// (default desc), ties broken by id.
func byTime(orderBy, sortDir string, createdA, createdB, updatedA, updatedB time.Time, idA, idB int64) int {
	c := cmp.Or(createdA.Compare(createdB), cmp.Compare(idA, idB))
	if orderBy == "updated_at" {
		c = cmp.Or(updatedA.Compare(updatedB), cmp.Compare(idA, idB))
	}
	if sortDir != "asc" {
		c = -c
	}
	return c
}
