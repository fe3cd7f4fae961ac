package gitlabtest

import (
	"maps"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/glenv/glenv/internal/gitlabapi"
)

// Access levels (GitLab's AccessLevelValue) the double checks against.
const (
	accessRead       = 0
	accessReporter   = 20 // read_environment, read_deployment (app/policies/project_policy.rb: reporter_access)
	accessDeveloper  = 30
	accessMaintainer = 40
	accessAdmin      = 60 // what an administrator counts as on every project
)

// Project is a GitLab project as tests seed it.
type Project struct {
	ID                int64  // assigned if 0
	PathWithNamespace string // "group/app"
	DefaultBranch     string // "main" when empty
	Visibility        string // private (default), internal or public
	// Members maps user IDs to access levels (30 developer, 40 maintainer,
	// 50 owner). Admins need no membership.
	Members map[int64]int
}

type project struct {
	Project
	createdAt     time.Time
	branches      map[string]string   // name → head sha
	branchHistory map[string][]string // name → every sha it pointed at
	tags          map[string]string
	commits       map[string]time.Time // every sha ever set → first seen
	mrs           map[int64]*mergeRequest
	hooks         []*Hook
	pipelines     []pipeline
	statuses      []*CommitStatus
	notes         []*Note
	envs          []*Environment
	deployments   []*Deployment
	deploymentIID int64
}

// AddProject registers a project and returns it with its ID and defaults.
func (s *Server) AddProject(p Project) Project {
	s.mu.Lock()
	defer s.mu.Unlock()
	p.ID = s.ids.take(&s.ids.project, p.ID)
	if p.DefaultBranch == "" {
		p.DefaultBranch = "main"
	}
	if p.Visibility == "" {
		p.Visibility = "private"
	}
	p.Members = maps.Clone(p.Members)
	if p.Members == nil {
		p.Members = map[int64]int{}
	}
	stored := p
	stored.Members = maps.Clone(p.Members)
	s.projects[p.ID] = &project{
		Project:       stored,
		createdAt:     s.now(),
		branches:      map[string]string{},
		branchHistory: map[string][]string{},
		tags:          map[string]string{},
		commits:       map[string]time.Time{},
		mrs:           map[int64]*mergeRequest{},
	}
	return p
}

// SetMember gives a user an access level on a project; level 0 removes the
// membership.
func (s *Server) SetMember(projectID, userID int64, level int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.mustProject(projectID)
	if level == 0 {
		delete(p.Members, userID)
		return
	}
	p.Members[userID] = level
}

// findProject resolves :id, a numeric ID or a full path (case-insensitive).
func (s *Server) findProject(id string) *project {
	if n, err := strconv.ParseInt(id, 10, 64); err == nil {
		return s.projects[n]
	}
	for _, p := range s.projects {
		if strings.EqualFold(p.PathWithNamespace, id) {
			return p
		}
	}
	return nil
}

func (s *Server) mustProject(id int64) *project {
	p := s.projects[id]
	if p == nil {
		panic("gitlabtest: unknown project " + itoa(id))
	}
	return p
}

// accessLevel is the caller's effective level on p.
func (s *Server) accessLevel(p *project, u *User) int {
	if u.IsAdmin {
		return accessAdmin
	}
	return p.Members[u.ID]
}

func (p *project) visibleTo(level int) bool {
	return level > 0 || p.Visibility == "public" || p.Visibility == "internal"
}

// project is user_project plus authorize!: 404 when the caller cannot see
// the project, 403 when it can but lacks the level the endpoint needs.
func (rq *request) project(need int) (*project, bool) {
	p := rq.s.findProject(rq.vars["id"])
	if p == nil {
		gitlabapi.NotFound(rq.w, "Project")
		return nil, false
	}
	level := rq.s.accessLevel(p, rq.user)
	if !p.visibleTo(level) {
		gitlabapi.NotFound(rq.w, "Project")
		return nil, false
	}
	if level < need {
		gitlabapi.Forbidden(rq.w)
		return nil, false
	}
	rq.s.purgeScheduled(p)
	return p, true
}

func (s *Server) projectWebURL(p *project) string { return s.URL + "/" + p.PathWithNamespace }

// namespace is the project's NamespaceBasic; the double numbers namespaces
// after their projects.
func (s *Server) namespace(p *project) gitlabapi.NamespaceBasic {
	ns := gitlabapi.NamespaceOf(p.PathWithNamespace, s.URL)
	id := 1000 + p.ID
	ns.ID = &id
	return ns
}

// basicProjectJSON is API::Entities::BasicProjectDetails, embedded in
// environments.
type basicProjectJSON = gitlabapi.BasicProjectDetails

func (s *Server) basicProject(p *project) basicProjectJSON {
	var def *string
	if len(p.branches) > 0 {
		def = &p.DefaultBranch
	}
	host := strings.TrimPrefix(strings.TrimPrefix(s.URL, "http://"), "https://")
	bp := gitlabapi.NewBasicProject(p.ID, p.PathWithNamespace, s.URL, host, p.createdAt, def)
	bp.Namespace = s.namespace(p)
	return bp
}

func (s *Server) getProject(rq *request) {
	p, ok := rq.project(accessRead)
	if !ok {
		return
	}
	var projectAccess any
	if level, ok := p.Members[rq.user.ID]; ok {
		projectAccess = map[string]int{"access_level": level, "notification_level": 3}
	}
	gitlabapi.WriteJSON(rq.w, http.StatusOK, struct {
		basicProjectJSON
		EmptyRepo   bool   `json:"empty_repo"`
		Archived    bool   `json:"archived"`
		Visibility  string `json:"visibility"`
		Permissions any    `json:"permissions"`
	}{
		basicProjectJSON: s.basicProject(p),
		EmptyRepo:        len(p.branches) == 0,
		Visibility:       p.Visibility,
		Permissions:      map[string]any{"project_access": projectAccess, "group_access": nil},
	})
}

func (s *Server) getMemberAll(rq *request) {
	userID, ok := rq.pathInt("user_id")
	if !ok {
		return
	}
	p, ok := rq.project(accessRead)
	if !ok {
		return
	}
	level, member := p.Members[userID]
	if !member || s.users[userID] == nil {
		gitlabapi.RecordNotFound(rq.w)
		return
	}
	gitlabapi.WriteJSON(rq.w, http.StatusOK, struct {
		*userJSON
		AccessLevel     int     `json:"access_level"`
		CreatedAt       string  `json:"created_at"`
		CreatedBy       any     `json:"created_by"`
		ExpiresAt       *string `json:"expires_at"`
		MembershipState string  `json:"membership_state"`
		MemberRole      any     `json:"member_role"`
	}{
		userJSON: s.userBasic(userID), AccessLevel: level,
		CreatedAt: gitlabapi.FormatTime(p.createdAt), MembershipState: "active",
	})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
