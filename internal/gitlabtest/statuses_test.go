package gitlabtest

import (
	"strings"
	"testing"

	gitlab "gitlab.com/gitlab-org/api/client-go/v2"
)

func TestCommitStatusStateMachine(t *testing.T) {
	type post struct {
		state, name string
		status      int
		want        string // exact body on failure
	}
	const (
		enqueuePending = `{"message":"Cannot transition status via :enqueue from :pending (Reason(s): Status cannot transition via \"enqueue\")"}`
		runRunning     = `{"message":"Cannot transition status via :run from :running (Reason(s): Status cannot transition via \"run\")"}`
		enqueueRunning = `{"message":"Cannot transition status via :enqueue from :running (Reason(s): Status cannot transition via \"enqueue\")"}`
	)
	tests := []struct {
		name  string
		posts []post
		// jobs is the number of jobs kept for the sha and latest the
		// status of the newest one.
		jobs   int
		latest string
	}{
		{"pending then running updates one job", []post{{"pending", "", 201, ""}, {"running", "", 201, ""}}, 1, "running"},
		{"pending twice is refused", []post{{"pending", "", 201, ""}, {"pending", "", 400, enqueuePending}}, 1, "pending"},
		{"running twice is refused", []post{{"running", "", 201, ""}, {"running", "", 400, runRunning}}, 1, "running"},
		{"running back to pending is refused", []post{{"running", "", 201, ""}, {"pending", "", 400, enqueueRunning}}, 1, "running"},
		{"running then success finishes the job", []post{{"running", "", 201, ""}, {"success", "", 201, ""}}, 1, "success"},
		{"a final state twice creates a new job", []post{{"success", "", 201, ""}, {"success", "", 201, ""}}, 2, "success"},
		{"after a failure a new pending job starts", []post{{"failed", "", 201, ""}, {"pending", "", 201, ""}}, 2, "pending"},
		{"another name is another job", []post{{"pending", "a", 201, ""}, {"pending", "b", 201, ""}}, 2, "pending"},
		{"an unknown state is a Grape error", []post{{"done", "", 400, `{"error":"state does not have a valid value"}`}}, 0, ""},
		{"skipped is a state", []post{{"skipped", "", 201, ""}}, 1, "skipped"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			for _, p := range tt.posts {
				body := map[string]any{"state": p.state}
				if p.name != "" {
					body["name"] = p.name
				}
				expect(t, f.do(t, f.devTok, "POST", "projects/group%2Fapp/statuses/"+shaMain, body), p.status, p.want)
			}
			jobs := f.srv.Statuses(f.project.ID, shaMain)
			if len(jobs) != tt.jobs {
				t.Fatalf("jobs = %+v", jobs)
			}
			if tt.jobs > 0 && jobs[len(jobs)-1].Status != tt.latest {
				t.Fatalf("latest = %q, want %q", jobs[len(jobs)-1].Status, tt.latest)
			}
		})
	}
}

func TestCommitStatusRules(t *testing.T) {
	f := newFixture(t)
	f.srv.SetTag(f.project.ID, "loose", shaOrphan) // a commit on no branch
	long := strings.Repeat("x", 256)
	tests := []struct {
		name, sha string
		body      map[string]any
		status    int
		want      string
	}{
		{"state is required", shaMain, map[string]any{}, 400, `{"error":"state is missing"}`},
		{"a description over 255 characters is refused, not cut", shaMain, map[string]any{"state": "pending", "description": long}, 400,
			`{"message":{"description":["is too long (maximum is 255 characters)"]}}`},
		{"a ref over 255 characters is refused", shaMain, map[string]any{"state": "pending", "ref": long}, 400,
			`{"message":{"ref":["is too long (maximum is 255 characters)"]}}`},
		{"target_url must be an http(s) URL", shaMain, map[string]any{"state": "pending", "target_url": "javascript:alert(1)"}, 400,
			`{"message":{"target_url":["is blocked: Only allowed schemes are http, https"]}}`},
		{"a long target_url is refused", shaMain, map[string]any{"state": "pending", "target_url": "https://x.example/" + long}, 400,
			`{"message":{"target_url":["is too long (maximum is 255 characters)"]}}`},
		{"an unknown sha is 404 Commit Not Found", shaFeature[:4] + strings.Repeat("9", 36), map[string]any{"state": "pending"}, 404,
			`{"message":"404 Commit Not Found"}`},
		{"a commit on no branch needs a ref", shaOrphan, map[string]any{"state": "pending"}, 404,
			`{"message":"404 References for commit Not Found"}`},
		{"a commit on no branch takes an explicit ref", shaOrphan, map[string]any{"state": "pending", "ref": "loose"}, 201, ""},
		{"reporters may not set statuses", shaMain, map[string]any{"state": "pending"}, 403, `{"message":"403 Forbidden"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := f.devTok
			if strings.HasPrefix(tt.name, "reporters") {
				tok = f.reporterTok
			}
			expect(t, f.do(t, tok, "POST", "projects/1/statuses/"+tt.sha, tt.body), tt.status, tt.want)
		})
	}

	t.Run("a 255-character description is accepted", func(t *testing.T) {
		expect(t, f.do(t, f.devTok, "POST", "projects/1/statuses/"+shaFeature,
			map[string]any{"state": "pending", "description": long[:255]}), 201, "")
	})

	t.Run("client-go sets a status with GitLab's defaults", func(t *testing.T) {
		c := f.client(t, f.devTok)
		st, resp, err := c.Commits.SetCommitStatus("group/app", shaMain, &gitlab.SetCommitStatusOptions{
			State: gitlab.Running, Context: gitlab.Ptr("ignored"), Name: gitlab.Ptr("glenv/preview"),
			TargetURL: gitlab.Ptr("https://pr-1.preview.example"), Description: gitlab.Ptr("Deploying"),
		})
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 201 || st.Name != "glenv/preview" || st.Ref != "main" || st.SHA != shaMain ||
			st.Status != "running" || st.StartedAt == nil || st.FinishedAt != nil || st.PipelineID == 0 ||
			st.Author.Username != "dev" || st.TargetURL != "https://pr-1.preview.example" {
			t.Fatalf("status = %+v", st)
		}
		done, _, err := c.Commits.SetCommitStatus("group/app", shaMain, &gitlab.SetCommitStatusOptions{
			State: gitlab.Success, Name: gitlab.Ptr("glenv/preview"),
		})
		if err != nil || done.ID != st.ID || done.FinishedAt == nil || done.Description != "Deploying" {
			t.Fatalf("the running job is updated in place: %+v, %v", done, err)
		}
		plain, _, err := c.Commits.SetCommitStatus("group/app", shaMain, &gitlab.SetCommitStatusOptions{State: gitlab.Pending})
		if err != nil || plain.Name != "default" {
			t.Fatalf("default name: %+v, %v", plain, err)
		}
	})

	t.Run("listing hides retried jobs unless all is set", func(t *testing.T) {
		c := f.client(t, f.devTok)
		for range 2 {
			if _, _, err := c.Commits.SetCommitStatus("group/app", shaFeature, &gitlab.SetCommitStatusOptions{
				State: gitlab.Failed, Name: gitlab.Ptr("ci"),
			}); err != nil {
				t.Fatal(err)
			}
		}
		latest, _, err := c.Commits.GetCommitStatuses("group/app", shaFeature, &gitlab.GetCommitStatusesOptions{Name: gitlab.Ptr("ci")})
		if err != nil || len(latest) != 1 {
			t.Fatalf("latest = %v, %v", latest, err)
		}
		all, _, err := c.Commits.GetCommitStatuses("group/app", shaFeature, &gitlab.GetCommitStatusesOptions{Name: gitlab.Ptr("ci"), All: gitlab.Ptr(true)})
		if err != nil || len(all) != 2 || all[0].ID > all[1].ID {
			t.Fatalf("all = %v, %v", all, err)
		}
		if snap := f.srv.Statuses(f.project.ID, shaFeature); !snap[len(snap)-2].Retried || snap[len(snap)-1].Retried {
			t.Fatalf("snapshot = %+v", snap)
		}
	})
}
