package gitlabtest

import (
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/glenv/glenv/internal/gitlabapi"
)

// SetBranch creates branch name at sha, or moves it there.
func (s *Server) SetBranch(projectID int64, name, sha string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.mustProject(projectID)
	p.branches[name] = sha
	p.branchHistory[name] = append(p.branchHistory[name], sha)
	s.knowCommit(p, sha)
}

// DeleteBranch removes a branch; its commits stay known.
func (s *Server) DeleteBranch(projectID int64, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.mustProject(projectID)
	delete(p.branches, name)
	delete(p.branchHistory, name)
}

// SetTag creates tag name at sha, or moves it there.
func (s *Server) SetTag(projectID int64, name, sha string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.mustProject(projectID)
	p.tags[name] = sha
	s.knowCommit(p, sha)
}

func (s *Server) knowCommit(p *project, sha string) {
	if _, ok := p.commits[sha]; !ok && sha != "" {
		p.commits[sha] = s.now()
	}
}

// commit is project.commit(ref): a branch, a tag, a full sha or an
// unambiguous sha prefix of at least 7 characters. It returns "" when
// nothing matches.
func (p *project) commit(ref string) string {
	if sha, ok := p.branches[ref]; ok {
		return sha
	}
	if sha, ok := p.tags[ref]; ok {
		return sha
	}
	if _, ok := p.commits[ref]; ok {
		return ref
	}
	if len(ref) < 7 {
		return ""
	}
	found := ""
	for sha := range p.commits {
		if strings.HasPrefix(sha, ref) {
			if found != "" {
				return ""
			}
			found = sha
		}
	}
	return found
}

// branchContaining is repository.branch_names_contains(sha).first: the
// double counts a commit as contained in every branch that ever pointed
// at it.
func (p *project) branchContaining(sha string) string {
	names := make([]string, 0, len(p.branchHistory))
	for name, shas := range p.branchHistory {
		if slices.Contains(shas, sha) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	if len(names) == 0 {
		return ""
	}
	return names[0]
}

type commitJSON struct {
	ID              string            `json:"id"`
	ShortID         string            `json:"short_id"`
	CreatedAt       string            `json:"created_at"`
	ParentIDs       []string          `json:"parent_ids"`
	Title           string            `json:"title"`
	Message         string            `json:"message"`
	AuthorName      string            `json:"author_name"`
	AuthorEmail     string            `json:"author_email"`
	AuthoredDate    string            `json:"authored_date"`
	CommitterName   string            `json:"committer_name"`
	CommitterEmail  string            `json:"committer_email"`
	CommittedDate   string            `json:"committed_date"`
	Trailers        map[string]string `json:"trailers"`
	ExtendedTrailer map[string]string `json:"extended_trailers"`
	WebURL          string            `json:"web_url"`
}

func (s *Server) commitEntity(p *project, sha string) commitJSON {
	at := gitlabapi.FormatTime(p.commits[sha])
	short := sha[:min(8, len(sha))]
	return commitJSON{
		ID: sha, ShortID: short, CreatedAt: at, ParentIDs: []string{},
		Title: "Commit " + short, Message: "Commit " + short + "\n",
		AuthorName: "Test Author", AuthorEmail: "author@example.com", AuthoredDate: at,
		CommitterName: "Test Author", CommitterEmail: "author@example.com", CommittedDate: at,
		Trailers: map[string]string{}, ExtendedTrailer: map[string]string{},
		WebURL: s.projectWebURL(p) + "/-/commit/" + sha,
	}
}

type branchJSON struct {
	Name               string     `json:"name"`
	Commit             commitJSON `json:"commit"`
	Merged             bool       `json:"merged"`
	Protected          bool       `json:"protected"`
	DevelopersCanPush  bool       `json:"developers_can_push"`
	DevelopersCanMerge bool       `json:"developers_can_merge"`
	CanPush            bool       `json:"can_push"`
	Default            bool       `json:"default"`
	WebURL             string     `json:"web_url"`
}

func (s *Server) branchEntity(rq *request, p *project, name string) branchJSON {
	return branchJSON{
		Name: name, Commit: s.commitEntity(p, p.branches[name]),
		CanPush: s.accessLevel(p, rq.user) >= accessDeveloper,
		Default: name == p.DefaultBranch,
		WebURL:  s.projectWebURL(p) + "/-/tree/" + url.PathEscape(name),
	}
}

// branchSearch is GitLab's branch search: a substring, anchored with a
// leading ^ or a trailing $.
func branchSearch(name, q string) bool {
	prefix, suffix := strings.HasPrefix(q, "^"), strings.HasSuffix(q, "$")
	q = strings.TrimSuffix(strings.TrimPrefix(q, "^"), "$")
	n, q := strings.ToLower(name), strings.ToLower(q)
	switch {
	case prefix && suffix:
		return n == q
	case prefix:
		return strings.HasPrefix(n, q)
	case suffix:
		return strings.HasSuffix(n, q)
	}
	return strings.Contains(n, q)
}

func (s *Server) listBranches(rq *request) {
	p, ok := rq.project(accessRead)
	if !ok {
		return
	}
	search, hasSearch := rq.p.Str("search")
	pattern, hasRegex := rq.p.Str("regex")
	var re *regexp.Regexp
	if hasRegex {
		var err error
		if re, err = regexp.Compile(pattern); err != nil {
			gitlabapi.BadRequest(rq.w, "Regex is invalid")
			return
		}
	}
	var names []string
	for name := range p.branches {
		if (hasSearch && !branchSearch(name, search)) || (re != nil && !re.MatchString(name)) {
			continue
		}
		names = append(names, name)
	}
	sort.Strings(names)
	page, ok := paginate(rq, names)
	if !ok {
		return
	}
	out := make([]branchJSON, 0, len(page))
	for _, name := range page {
		out = append(out, s.branchEntity(rq, p, name))
	}
	gitlabapi.WriteJSON(rq.w, http.StatusOK, out)
}

func (s *Server) getBranch(rq *request) {
	p, ok := rq.project(accessRead)
	if !ok {
		return
	}
	name := rq.vars["branch"]
	if _, ok := p.branches[name]; !ok {
		gitlabapi.NotFound(rq.w, "Branch")
		return
	}
	gitlabapi.WriteJSON(rq.w, http.StatusOK, s.branchEntity(rq, p, name))
}

func (s *Server) listTags(rq *request) {
	p, ok := rq.project(accessRead)
	if !ok {
		return
	}
	names := make([]string, 0, len(p.tags))
	for name := range p.tags {
		names = append(names, name)
	}
	sort.Strings(names)
	page, ok := paginate(rq, names)
	if !ok {
		return
	}
	type tagJSON struct {
		Name      string     `json:"name"`
		Message   string     `json:"message"`
		Target    string     `json:"target"`
		Commit    commitJSON `json:"commit"`
		Release   any        `json:"release"`
		Protected bool       `json:"protected"`
		CreatedAt any        `json:"created_at"`
	}
	out := make([]tagJSON, 0, len(page))
	for _, name := range page {
		sha := p.tags[name]
		out = append(out, tagJSON{Name: name, Target: sha, Commit: s.commitEntity(p, sha)})
	}
	gitlabapi.WriteJSON(rq.w, http.StatusOK, out)
}

func (s *Server) getCommit(rq *request) {
	p, ok := rq.project(accessRead)
	if !ok {
		return
	}
	sha := p.commit(rq.vars["sha"])
	if sha == "" {
		gitlabapi.NotFound(rq.w, "Commit")
		return
	}
	gitlabapi.WriteJSON(rq.w, http.StatusOK, struct {
		commitJSON
		Stats        map[string]int `json:"stats"`
		Status       any            `json:"status"`
		ProjectID    int64          `json:"project_id"`
		LastPipeline any            `json:"last_pipeline"`
	}{
		commitJSON: s.commitEntity(p, sha),
		Stats:      map[string]int{"additions": 0, "deletions": 0, "total": 0},
		ProjectID:  p.ID,
	})
}
