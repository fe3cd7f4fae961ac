package gitlabtest

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	gitlab "gitlab.com/gitlab-org/api/client-go/v2"
)

func TestProjects(t *testing.T) {
	f := newFixture(t)
	public := f.srv.AddProject(Project{PathWithNamespace: "oss/lib", Visibility: "public"})

	t.Run("a project is found by id and by URL-encoded path", func(t *testing.T) {
		c := f.client(t, f.devTok)
		for _, pid := range []any{f.project.ID, "group/app", "GROUP/App"} {
			p, _, err := c.Projects.GetProject(pid, nil)
			if err != nil {
				t.Fatalf("%v: %v", pid, err)
			}
			if p.ID != f.project.ID || p.PathWithNamespace != "group/app" || p.Name != "app" ||
				p.DefaultBranch != "main" || p.Visibility != gitlab.PrivateVisibility ||
				p.HTTPURLToRepo != f.srv.URL+"/group/app.git" || p.WebURL != f.srv.URL+"/group/app" ||
				p.Namespace.FullPath != "group" || p.EmptyRepo || p.Archived {
				t.Fatalf("project = %+v", p)
			}
			if p.Permissions.ProjectAccess == nil || p.Permissions.ProjectAccess.AccessLevel != gitlab.DeveloperPermissions ||
				p.Permissions.GroupAccess != nil {
				t.Fatalf("permissions = %+v", p.Permissions)
			}
		}
		calls := f.srv.Calls()
		if got := calls[len(calls)-2].Path; got != "/api/v4/projects/group%2Fapp" {
			t.Fatalf("logged path %q keeps the %%2F", got)
		}
	})

	tests := []struct {
		name, token, path string
		status            int
		want              string
	}{
		{"a private project is 404 to a non-member", f.outsiderTok, "projects/group%2Fapp", 404, `{"message":"404 Project Not Found"}`},
		{"an unknown project is 404", f.devTok, "projects/999", 404, `{"message":"404 Project Not Found"}`},
		{"an unencoded path is no route", f.devTok, "projects/group/app", 404, `{"error":"404 Not Found"}`},
		{"admins see every project", f.adminTok, "projects/group%2Fapp", 200, ""},
		{"a public project is visible to anyone signed in", f.outsiderTok, fmt.Sprintf("projects/%d", public.ID), 200, ""},
		{"a member is found with its access level", f.devTok, fmt.Sprintf("projects/1/members/all/%d", f.maintainer.ID), 200, ""},
		{"a non-member is 404 Not found", f.devTok, fmt.Sprintf("projects/1/members/all/%d", f.outsider.ID), 404, `{"message":"404 Not found"}`},
		{"a non-integer user id is a Grape error", f.devTok, "projects/1/members/all/abc", 400, `{"error":"user_id is invalid"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			expect(t, f.do(t, tt.token, "GET", tt.path, nil), tt.status, tt.want)
		})
	}

	t.Run("permissions.project_access is null for a non-member", func(t *testing.T) {
		m := fields(t, f.do(t, f.outsiderTok, "GET", fmt.Sprintf("projects/%d", public.ID), nil))
		perms := m["permissions"].(map[string]any)
		if perms["project_access"] != nil || perms["group_access"] != nil || m["empty_repo"] != true || m["default_branch"] != nil {
			t.Fatalf("got %v", m)
		}
	})

	t.Run("members/all reports the effective level", func(t *testing.T) {
		m, _, err := f.client(t, f.devTok).ProjectMembers.GetInheritedProjectMember("group/app", f.maintainer.ID)
		if err != nil {
			t.Fatal(err)
		}
		if m.ID != f.maintainer.ID || m.AccessLevel != gitlab.MaintainerPermissions || m.Username != "maya" || m.State != "active" {
			t.Fatalf("member = %+v", m)
		}
		_, _, err = f.client(t, f.devTok).ProjectMembers.GetInheritedProjectMember("group/app", f.admin.ID)
		if !errors.Is(err, gitlab.ErrNotFound) {
			t.Fatalf("an admin who is not a member is not found: %v", err)
		}
	})
}

func TestRepository(t *testing.T) {
	f := newFixture(t)
	for i := range 148 {
		f.srv.SetBranch(f.project.ID, fmt.Sprintf("review/b%03d", i), shaFeature)
	}
	// 150 branches in all.

	t.Run("pagination headers follow GitLab", func(t *testing.T) {
		tests := []struct {
			name                                  string
			query                                 string
			items                                 int
			page, perPage, next, prev, totalPages string
			rels                                  []string
		}{
			{"the default page has 20 items", "", 20, "1", "20", "2", "", "8", []string{"next", "first", "last"}},
			{"per_page 100 gives a first page of 100", "?per_page=100", 100, "1", "100", "2", "", "2", []string{"next", "first", "last"}},
			{"the last page has the rest and no next page", "?per_page=100&page=2", 50, "2", "100", "", "1", "2", []string{"prev", "first", "last"}},
			{"per_page over 100 is clamped to 100", "?per_page=1000", 100, "1", "100", "2", "", "2", []string{"next", "first", "last"}},
			{"per_page below 0 falls back to 20", "?per_page=-1", 20, "1", "20", "2", "", "8", []string{"next", "first", "last"}},
			{"a page past the end is empty", "?per_page=100&page=3", 0, "3", "100", "", "", "2", []string{"first", "last"}},
		}
		t.Run("per_page 0 is refused (except_values: [0])", func(t *testing.T) {
			expect(t, f.do(t, f.devTok, "GET", "projects/group%2Fapp/repository/branches?per_page=0", nil), 400,
				`{"error":"per_page has a value not allowed"}`)
		})
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := f.do(t, f.devTok, "GET", "projects/group%2Fapp/repository/branches"+tt.query, nil)
				expect(t, r, 200, "")
				if n := strings.Count(r.body, `"name":`); n != tt.items {
					t.Fatalf("items = %d, want %d", n, tt.items)
				}
				h := r.header
				got := []string{h.Get("X-Page"), h.Get("X-Per-Page"), h.Get("X-Next-Page"), h.Get("X-Prev-Page"), h.Get("X-Total"), h.Get("X-Total-Pages")}
				want := []string{tt.page, tt.perPage, tt.next, tt.prev, "150", tt.totalPages}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("headers = %q, want %q", got, want)
				}
				link := h.Get("Link")
				for _, rel := range tt.rels {
					if !strings.Contains(link, `rel="`+rel+`"`) {
						t.Fatalf("Link %q lacks rel=%s", link, rel)
					}
				}
				// GitLab's Link repeats the Grape params, the route's :id first.
				if !strings.Contains(link, "<"+f.srv.URL+"/api/v4/projects/group%2Fapp/repository/branches?id=group%2Fapp&page=") {
					t.Fatalf("Link %q does not point at the request URL", link)
				}
			})
		}
	})

	t.Run("client-go walks every page", func(t *testing.T) {
		c := f.client(t, f.devTok)
		opt := &gitlab.ListBranchesOptions{ListOptions: gitlab.ListOptions{PerPage: 100}}
		var names []string
		for {
			bs, resp, err := c.Branches.ListBranches("group/app", opt)
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range bs {
				names = append(names, b.Name)
			}
			if resp.TotalItems != 150 || resp.TotalPages != 2 {
				t.Fatalf("totals = %d/%d", resp.TotalItems, resp.TotalPages)
			}
			if resp.NextPage == 0 {
				break
			}
			opt.Page = resp.NextPage
		}
		if len(names) != 150 || names[0] != "feature/login" || names[1] != "main" || names[149] != "review/b147" {
			t.Fatalf("got %d names, sorted %v…", len(names), names[:2])
		}
	})

	t.Run("branch search matches substrings and anchors", func(t *testing.T) {
		c := f.client(t, f.devTok)
		for q, want := range map[string]int{"login": 1, "^review/b00": 10, "b147$": 1, "MAIN": 1} {
			bs, _, err := c.Branches.ListBranches("group/app", &gitlab.ListBranchesOptions{Search: &q, ListOptions: gitlab.ListOptions{PerPage: 100}})
			if err != nil || len(bs) != want {
				t.Fatalf("search %q: %d branches, %v", q, len(bs), err)
			}
		}
	})

	t.Run("a branch with a slash is found URL-encoded", func(t *testing.T) {
		b, _, err := f.client(t, f.devTok).Branches.GetBranch("group/app", "feature/login")
		if err != nil {
			t.Fatal(err)
		}
		if b.Commit.ID != shaFeature || b.Commit.ShortID != "22222222" || b.Default || !b.CanPush || b.Protected {
			t.Fatalf("branch = %+v", b)
		}
	})

	t.Run("an unknown branch is 404 Branch Not Found", func(t *testing.T) {
		expect(t, f.do(t, f.devTok, "GET", "projects/1/repository/branches/nope", nil), 404, `{"message":"404 Branch Not Found"}`)
	})

	t.Run("tags list with their target", func(t *testing.T) {
		tags, _, err := f.client(t, f.devTok).Tags.ListTags("group/app", nil)
		if err != nil || len(tags) != 1 || tags[0].Name != "v1.0.0" || tags[0].Target != shaTag || tags[0].Commit.ID != shaTag {
			t.Fatalf("tags = %v, %v", tags, err)
		}
	})

	t.Run("commits resolve shas, branches and tags", func(t *testing.T) {
		c := f.client(t, f.devTok)
		for ref, sha := range map[string]string{shaMain: shaMain, "main": shaMain, "v1.0.0": shaTag, shaFeature[:8]: shaFeature} {
			cm, _, err := c.Commits.GetCommit("group/app", ref, nil)
			if err != nil || cm.ID != sha {
				t.Fatalf("%s: %v %v", ref, cm, err)
			}
		}
		expect(t, f.do(t, f.devTok, "GET", "projects/1/repository/commits/"+shaOrphan, nil), 404, `{"message":"404 Commit Not Found"}`)
	})

	t.Run("a deleted branch is gone but its commit stays known", func(t *testing.T) {
		f.srv.DeleteBranch(f.project.ID, "review/b000")
		_, _, err := f.client(t, f.devTok).Branches.GetBranch("group/app", "review/b000")
		if !errors.Is(err, gitlab.ErrNotFound) {
			t.Fatalf("err = %v", err)
		}
		expect(t, f.do(t, f.devTok, "GET", "projects/1/repository/commits/"+shaFeature, nil), http.StatusOK, "")
	})
}

func TestMergeRequests(t *testing.T) {
	f := newFixture(t)
	f.srv.SetMergeRequest(f.project.ID, MergeRequest{IID: 1, Title: "Login", SourceBranch: "feature/login", TargetBranch: "main", SHA: shaFeature})
	f.srv.SetMergeRequest(f.project.ID, MergeRequest{IID: 2, Title: "Old", SourceBranch: "old", TargetBranch: "main", SHA: shaMain, State: "merged"})
	f.srv.SetMergeRequest(f.project.ID, MergeRequest{IID: 3, Title: "Draft: WIP", SourceBranch: "wip", TargetBranch: "main", SHA: shaMain, Draft: true})
	c := f.client(t, f.devTok)

	t.Run("a merge request has a global id distinct from its iid", func(t *testing.T) {
		mr, _, err := c.MergeRequests.GetMergeRequest("group/app", 3, nil)
		if err != nil {
			t.Fatal(err)
		}
		if mr.IID != 3 || mr.ID == mr.IID || !mr.Draft || mr.SourceProjectID != f.project.ID || mr.TargetProjectID != f.project.ID ||
			mr.SHA != shaMain || mr.WebURL != f.srv.URL+"/group/app/-/merge_requests/3" || mr.State != "opened" {
			t.Fatalf("mr = %+v", mr)
		}
	})

	t.Run("the list filters by state, newest first", func(t *testing.T) {
		all, _, err := c.MergeRequests.ListProjectMergeRequests("group/app", nil)
		if err != nil || len(all) != 3 || all[0].IID != 3 || all[2].IID != 1 {
			t.Fatalf("all = %v, %v", all, err)
		}
		opened, _, err := c.MergeRequests.ListProjectMergeRequests("group/app", &gitlab.ListProjectMergeRequestsOptions{State: gitlab.Ptr("opened")})
		if err != nil || len(opened) != 2 {
			t.Fatalf("opened = %v, %v", opened, err)
		}
		expect(t, f.do(t, f.devTok, "GET", "projects/1/merge_requests?state=bogus", nil), 400, `{"error":"state does not have a valid value"}`)
	})

	t.Run("an unknown merge request is a plain 404", func(t *testing.T) {
		expect(t, f.do(t, f.devTok, "GET", "projects/1/merge_requests/99", nil), 404, `{"message":"404 Not found"}`)
	})
}
