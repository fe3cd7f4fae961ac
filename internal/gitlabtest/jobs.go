package gitlabtest

import (
	"net/http"

	"github.com/glenv/glenv/internal/gitlabapi"
)

// Job is a running CI job whose CI_JOB_TOKEN a test hands to the code under
// test.
type Job struct {
	ID        int64
	ProjectID int64
	UserID    int64
	Ref       string
	// Token is CI_JOB_TOKEN; generated when empty, shaped as GitLab's:
	// Ci::Build::TOKEN_PREFIX, the job's partition in hex and "_"
	// (app/models/ci/build.rb prefix_and_partition_for_token; partition
	// 100, Ci::Partition::INITIAL_PARTITION_VALUE), then the secret.
	Token string
	// Finished jobs' tokens stop working, as in GitLab.
	Finished bool
}

// AddJob registers a running job and returns it with its token.
func (s *Server) AddJob(j Job) Job {
	s.mu.Lock()
	defer s.mu.Unlock()
	if j.Token == "" {
		j.Token = "glcbt-64_" + randHex(16)
	}
	if j.ID == 0 {
		s.ids.pipeline++
		j.ID = 9000 + s.ids.pipeline
	}
	if s.jobs == nil {
		s.jobs = map[string]*Job{}
	}
	stored := j
	s.jobs[j.Token] = &stored
	return j
}

// FinishJob makes a job's token stop working.
func (s *Server) FinishJob(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if j := s.jobs[token]; j != nil {
		j.Finished = true
	}
}

// serveJob answers GET /api/v4/job, authenticated by the job token alone
// (JOB-TOKEN header or job_token parameter; lib/api/ci/jobs.rb
// `get '/job'` with authenticate_job!-style lookup), with the job entity
// (API::Entities::Ci::Job: the pipeline carries project_id).
func (s *Server) serveJob(w http.ResponseWriter, r *http.Request, path string) bool {
	if path != "/api/v4/job" {
		return false
	}
	if r.Method != http.MethodGet {
		gitlabapi.RouteNotFound(w) // lib/api/api.rb's catch-all route
		return true
	}
	v := r.Header.Get("Job-Token")
	if v == "" {
		v = r.URL.Query().Get("job_token")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	j := s.jobs[v]
	if v == "" || j == nil || j.Finished {
		gitlabapi.Unauthorized(w)
		return true
	}
	p := s.projects[j.ProjectID]
	web := s.URL
	if p != nil {
		web += "/" + p.PathWithNamespace
	}
	gitlabapi.WriteJSON(w, http.StatusOK, map[string]any{
		"id": j.ID, "name": "stop_review", "stage": "deploy", "status": "running", "ref": j.Ref, "tag": false,
		"web_url": web + "/-/jobs/" + itoa(j.ID),
		"pipeline": map[string]any{"id": j.ID + 100000, "iid": 1, "project_id": j.ProjectID, "ref": j.Ref, "status": "running",
			"source": "push", "web_url": web + "/-/pipelines/" + itoa(j.ID+100000)},
		"user": s.userBasic(j.UserID),
	})
	return true
}
