package gitlabtest

import (
	"net/http"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/glenv/glenv/internal/gitlabapi"
)

// Note is a comment on a merge request.
type Note struct {
	ID              int64
	ProjectID       int64
	MergeRequestIID int64
	NoteableID      int64 // the merge request's global ID
	AuthorID        int64
	Body            string
	Internal        bool
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// maxNoteLength is the Note model's limit on body, in characters.
const maxNoteLength = 1_000_000

// Notes returns a snapshot of a merge request's notes, oldest first.
func (s *Server) Notes(projectID, mrIID int64) []Note {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []Note{}
	for _, n := range s.mustProject(projectID).notes {
		if n.MergeRequestIID == mrIID {
			out = append(out, *n)
		}
	}
	return out
}

// DeleteNoteAsUser removes a note the way a person deleting it in the UI
// does.
func (s *Server) DeleteNoteAsUser(projectID, mrIID, noteID int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.mustProject(projectID)
	p.notes = slices.DeleteFunc(p.notes, func(n *Note) bool {
		return n.MergeRequestIID == mrIID && n.ID == noteID
	})
}

type noteJSON struct {
	ID           int64     `json:"id"`
	Type         *string   `json:"type"`
	Body         string    `json:"body"`
	Attachment   *string   `json:"attachment"`
	Author       *userJSON `json:"author"`
	CreatedAt    string    `json:"created_at"`
	UpdatedAt    string    `json:"updated_at"`
	System       bool      `json:"system"`
	NoteableID   int64     `json:"noteable_id"`
	NoteableType string    `json:"noteable_type"`
	ProjectID    int64     `json:"project_id"`
	CommitID     *string   `json:"commit_id"`
	Resolvable   bool      `json:"resolvable"`
	Confidential bool      `json:"confidential"`
	Internal     bool      `json:"internal"`
	Imported     bool      `json:"imported"`
	ImportedFrom string    `json:"imported_from"`
	NoteableIID  int64     `json:"noteable_iid"`
}

func (s *Server) noteEntity(n *Note) noteJSON {
	return noteJSON{
		ID: n.ID, Body: n.Body, Author: s.userBasic(n.AuthorID),
		CreatedAt: gitlabapi.FormatTime(n.CreatedAt), UpdatedAt: gitlabapi.FormatTime(n.UpdatedAt),
		NoteableID: n.NoteableID, NoteableType: "MergeRequest", ProjectID: n.ProjectID,
		Confidential: n.Internal, Internal: n.Internal, ImportedFrom: "none", NoteableIID: n.MergeRequestIID,
	}
}

// validateNoteBody runs the Note model's validations on body and renders
// them as Notes::CreateService's failure does ("Note {:note=>[...]}").
func validateNoteBody(body string) (string, bool) {
	var e gitlabapi.FieldErrors
	if body == "" {
		e.Add("note", "can't be blank")
	}
	if utf8.RuneCountInString(body) > maxNoteLength {
		e.Add("note", "is too long (maximum is 1000000 characters)")
	}
	if e.Empty() {
		return "", true
	}
	return "Note " + e.RubyInspect(), false
}

// findNote is noteable.notes.find: a miss is a plain ActiveRecord 404.
func (rq *request) findNote(p *project, mr *mergeRequest) (*Note, bool) {
	id, ok := rq.pathInt("note_id")
	if !ok {
		return nil, false
	}
	for _, n := range p.notes {
		if n.ID == id && n.MergeRequestIID == mr.IID {
			return n, true
		}
	}
	gitlabapi.RecordNotFound(rq.w)
	return nil, false
}

// canAdminNote is the admin_note ability: the author or a maintainer.
func (s *Server) canAdminNote(p *project, u *User, n *Note) bool {
	return n.AuthorID == u.ID || s.accessLevel(p, u) >= accessMaintainer
}

// adminNote finds the note in the path that the caller may change (edit or
// delete), answering the error when there is none.
func (s *Server) adminNote(rq *request) (*project, *Note, bool) {
	p, ok := rq.project(accessRead)
	if !ok {
		return nil, nil, false
	}
	mr, ok := rq.mergeRequest(p)
	if !ok {
		return nil, nil, false
	}
	n, ok := rq.findNote(p, mr)
	if !ok {
		return nil, nil, false
	}
	if !s.canAdminNote(p, rq.user, n) {
		gitlabapi.Forbidden(rq.w)
		return nil, nil, false
	}
	return p, n, true
}

func (s *Server) listNotes(rq *request) {
	g := rq.p.Grape()
	orderBy, hasOrder := g.OptString("order_by")
	g.Values("order_by", orderBy, hasOrder, "created_at", "updated_at")
	sortDir, hasSort := g.OptString("sort")
	g.Values("sort", sortDir, hasSort, "asc", "desc")
	if !g.OK(rq.w) {
		return
	}
	p, ok := rq.project(accessRead)
	if !ok {
		return
	}
	mr, ok := rq.mergeRequest(p)
	if !ok {
		return
	}
	var notes []*Note
	for _, n := range p.notes {
		if n.MergeRequestIID == mr.IID {
			notes = append(notes, n)
		}
	}
	slices.SortFunc(notes, func(a, b *Note) int {
		return byTime(orderBy, sortDir, a.CreatedAt, b.CreatedAt, a.UpdatedAt, b.UpdatedAt, a.ID, b.ID)
	})
	page, ok := paginate(rq, notes)
	if !ok {
		return
	}
	out := make([]noteJSON, 0, len(page))
	for _, n := range page {
		out = append(out, s.noteEntity(n))
	}
	gitlabapi.WriteJSON(rq.w, http.StatusOK, out)
}

func (s *Server) getNote(rq *request) {
	p, ok := rq.project(accessRead)
	if !ok {
		return
	}
	mr, ok := rq.mergeRequest(p)
	if !ok {
		return
	}
	if n, ok := rq.findNote(p, mr); ok {
		gitlabapi.WriteJSON(rq.w, http.StatusOK, s.noteEntity(n))
	}
}

func (s *Server) createNote(rq *request) {
	g := rq.p.Grape()
	body, _ := g.RequireString("body")
	internal, _ := g.OptBool("internal")
	createdAt, hasCreatedAt := g.OptTime("created_at")
	if !g.OK(rq.w) {
		return
	}
	p, ok := rq.project(accessDeveloper)
	if !ok {
		return
	}
	mr, ok := rq.mergeRequest(p)
	if !ok {
		return
	}
	if msg, ok := validateNoteBody(body); !ok {
		gitlabapi.BadRequest(rq.w, msg)
		return
	}
	now := s.now()
	// Only administrators and owners may backdate a note.
	if hasCreatedAt && s.accessLevel(p, rq.user) >= 50 {
		now = createdAt.Truncate(time.Millisecond)
	}
	n := &Note{
		ID: s.ids.take(&s.ids.note, 0), ProjectID: p.ID, MergeRequestIID: mr.IID, NoteableID: mr.id,
		AuthorID: rq.user.ID, Body: body, Internal: internal, CreatedAt: now, UpdatedAt: now,
	}
	p.notes = append(p.notes, n)
	gitlabapi.WriteJSON(rq.w, http.StatusCreated, s.noteEntity(n))
}

func (s *Server) updateNote(rq *request) {
	g := rq.p.Grape()
	body, _ := g.RequireString("body")
	if !g.OK(rq.w) {
		return
	}
	_, n, ok := s.adminNote(rq)
	if !ok {
		return
	}
	if msg, ok := validateNoteBody(body); !ok {
		gitlabapi.BadRequest(rq.w, msg)
		return
	}
	if body != n.Body {
		n.Body, n.UpdatedAt = body, s.now()
	}
	gitlabapi.WriteJSON(rq.w, http.StatusOK, s.noteEntity(n))
}

func (s *Server) deleteNote(rq *request) {
	p, n, ok := s.adminNote(rq)
	if !ok {
		return
	}
	p.notes = slices.DeleteFunc(p.notes, func(x *Note) bool { return x == n })
	gitlabapi.NoContent(rq.w)
}
