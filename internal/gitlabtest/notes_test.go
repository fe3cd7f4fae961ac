package gitlabtest

import (
	"errors"
	"strings"
	"testing"
	"time"

	gitlab "gitlab.com/gitlab-org/api/client-go/v2"
)

func TestNotes(t *testing.T) {
	f := newFixture(t)
	f.srv.SetMergeRequest(f.project.ID, MergeRequest{IID: 7, Title: "Login", SourceBranch: "feature/login", TargetBranch: "main", SHA: shaFeature})
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	f.srv.SetClock(func() time.Time { return now })
	c := f.client(t, f.devTok)

	var first *gitlab.Note
	t.Run("a note is created on the merge request's iid", func(t *testing.T) {
		n, resp, err := c.Notes.CreateMergeRequestNote("group/app", 7, &gitlab.CreateMergeRequestNoteOptions{Body: gitlab.Ptr("Preview: https://pr-7.example")})
		if err != nil {
			t.Fatal(err)
		}
		mr, _, _ := c.MergeRequests.GetMergeRequest("group/app", 7, nil)
		if resp.StatusCode != 201 || n.NoteableIID != 7 || n.NoteableID != mr.ID || n.NoteableType != "MergeRequest" ||
			n.Author.Username != "dev" || n.System || n.Internal || n.Confidential || n.Resolvable || n.ProjectID != f.project.ID ||
			!n.CreatedAt.Equal(now) {
			t.Fatalf("note = %+v", n)
		}
		first = n
	})

	t.Run("a note is updated in place", func(t *testing.T) {
		now = now.Add(time.Minute)
		n, _, err := c.Notes.UpdateMergeRequestNote("group/app", 7, first.ID, &gitlab.UpdateMergeRequestNoteOptions{Body: gitlab.Ptr("Ready")})
		if err != nil || n.Body != "Ready" || !n.UpdatedAt.Equal(now) || !n.CreatedAt.Equal(*first.CreatedAt) {
			t.Fatalf("note = %+v, %v", n, err)
		}
	})

	t.Run("notes list newest first unless sort=asc", func(t *testing.T) {
		now = now.Add(time.Minute)
		second, _, err := c.Notes.CreateMergeRequestNote("group/app", 7, &gitlab.CreateMergeRequestNoteOptions{Body: gitlab.Ptr("second")})
		if err != nil {
			t.Fatal(err)
		}
		desc, _, err := c.Notes.ListMergeRequestNotes("group/app", 7, nil)
		if err != nil || len(desc) != 2 || desc[0].ID != second.ID {
			t.Fatalf("desc = %v, %v", desc, err)
		}
		asc, _, err := c.Notes.ListMergeRequestNotes("group/app", 7, &gitlab.ListMergeRequestNotesOptions{Sort: gitlab.Ptr("asc")})
		if err != nil || asc[0].ID != first.ID {
			t.Fatalf("asc = %v, %v", asc, err)
		}
		got, _, err := c.Notes.GetMergeRequestNote("group/app", 7, second.ID)
		if err != nil || got.Body != "second" {
			t.Fatalf("get = %v, %v", got, err)
		}
	})

	dev2 := f.srv.AddUser(User{Username: "dev2"})
	f.srv.SetMember(f.project.ID, dev2.ID, 30)
	dev2Tok := f.srv.AddToken(Token{UserID: dev2.ID, Scopes: []string{"api"}})
	rules := []struct {
		name, token, method, path string
		body                      any
		status                    int
		want                      string
	}{
		{"body is required to create", f.devTok, "POST", "projects/1/merge_requests/7/notes", map[string]any{}, 400, `{"error":"body is missing"}`},
		{"body is required to update", f.devTok, "PUT", "projects/1/merge_requests/7/notes/1", map[string]any{}, 400, `{"error":"body is missing"}`},
		{"a body over 1,000,000 characters is refused", f.devTok, "POST", "projects/1/merge_requests/7/notes",
			map[string]any{"body": strings.Repeat("é", 1_000_001)}, 400,
			`{"message":"400 Bad request - Note {:note=>[\"is too long (maximum is 1000000 characters)\"]}"}`},
		{"a body of exactly 1,000,000 characters is accepted", f.devTok, "POST", "projects/1/merge_requests/7/notes",
			map[string]any{"body": strings.Repeat("a", 1_000_000)}, 201, ""},
		{"an unknown merge request is a plain 404", f.devTok, "GET", "projects/1/merge_requests/99/notes", nil, 404, `{"message":"404 Not found"}`},
		{"an unknown note is a plain 404", f.devTok, "GET", "projects/1/merge_requests/7/notes/999", nil, 404, `{"message":"404 Not found"}`},
		{"only the author or a maintainer edits a note", f.adminTok, "PUT", "projects/1/merge_requests/7/notes/1", map[string]any{"body": "x"}, 200, ""},
		{"another developer may not edit the note", dev2Tok, "PUT", "projects/1/merge_requests/7/notes/1", map[string]any{"body": "x"}, 403, `{"message":"403 Forbidden"}`},
		{"nor delete it", dev2Tok, "DELETE", "projects/1/merge_requests/7/notes/1", nil, 403, `{"message":"403 Forbidden"}`},
		{"reporters may not comment", f.reporterTok, "POST", "projects/1/merge_requests/7/notes", map[string]any{"body": "hi"}, 403, `{"message":"403 Forbidden"}`},
		{"sort must be asc or desc", f.devTok, "GET", "projects/1/merge_requests/7/notes?sort=up", nil, 400, `{"error":"sort does not have a valid value"}`},
	}
	for _, tt := range rules {
		t.Run(tt.name, func(t *testing.T) {
			expect(t, f.do(t, tt.token, tt.method, tt.path, tt.body), tt.status, tt.want)
		})
	}

	t.Run("a note deleted by a person disappears", func(t *testing.T) {
		f.srv.DeleteNoteAsUser(f.project.ID, 7, first.ID)
		if _, _, err := c.Notes.GetMergeRequestNote("group/app", 7, first.ID); !errors.Is(err, gitlab.ErrNotFound) {
			t.Fatalf("err = %v", err)
		}
	})

	t.Run("deleting a note is 204", func(t *testing.T) {
		notes := f.srv.Notes(f.project.ID, 7)
		resp, err := c.Notes.DeleteMergeRequestNote("group/app", 7, notes[0].ID)
		if err != nil || resp.StatusCode != 204 || len(f.srv.Notes(f.project.ID, 7)) != len(notes)-1 {
			t.Fatalf("delete: %v", err)
		}
	})
}
