package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	gl "gitlab.com/gitlab-org/api/client-go/v2"

	"github.com/glenv/glenv/internal/store"
)

// ErrBadJobToken is a job token GitLab does not know (or a finished job's).
var ErrBadJobToken = errors.New("CI job token refused by GitLab: it works only while its job runs")

// JobPrincipal verifies a CI_JOB_TOKEN, however the job sent it, with the
// GitLab at baseURL (GET /api/v4/job with the JOB-TOKEN header) and returns
// a principal allowed exactly that job's project.
func (s *Service) JobPrincipal(ctx context.Context, token, baseURL string) (Principal, error) {
	s.init()
	c, err := gl.NewJobClient(token, gl.WithBaseURL(baseURL), gl.WithHTTPClient(s.HTTP), gl.WithoutRetries())
	if err != nil {
		return Principal{}, err
	}
	job, resp, err := c.Jobs.GetJobTokensJob(&gl.GetJobTokensJobOptions{}, gl.WithContext(ctx))
	if resp != nil && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusNotFound) {
		return Principal{}, ErrBadJobToken
	}
	if err != nil {
		return Principal{}, fmt.Errorf("%w: verify JOB-TOKEN with %s: %v", ErrGitLab, baseURL, err)
	}
	p := Principal{Kind: KindJob, Name: fmt.Sprintf("job:%d@%s", job.ID, HostOf(baseURL)), Scope: "api",
		JobProjectID: job.Pipeline.ProjectID, JobBaseURL: baseURL}
	if job.User != nil {
		p.JobUserID = job.User.ID
	}
	return p, nil
}

// jobUserLevel is the access level on in's project of the user p's job
// runs as, read with the integration's own token (GET
// /projects/:id/members/all/:user_id; GitLab's /job names the user but not
// their role). Not a member: 0.
func (s *Service) jobUserLevel(ctx context.Context, p Principal, in store.Integration) (int, error) {
	if p.JobUserID == 0 {
		return 0, nil
	}
	if s.Box == nil {
		return 0, errors.New("no secret box to open the integration's token")
	}
	token, err := s.Box.Open(in.TokenSealed)
	if err != nil {
		return 0, fmt.Errorf("open the token of integration %s: %w", in.Name, err)
	}
	c, err := gl.NewClient(token, gl.WithBaseURL(in.BaseURL), gl.WithHTTPClient(s.HTTP), gl.WithoutRetries())
	if err != nil {
		return 0, err
	}
	m, resp, err := c.ProjectMembers.GetInheritedProjectMember(in.ProjectID, p.JobUserID, gl.WithContext(ctx))
	switch {
	case err == nil:
		return int(m.AccessLevel), nil
	case resp != nil && resp.StatusCode == http.StatusNotFound:
		return 0, nil
	}
	return 0, fmt.Errorf("%w: read the job user's membership of project %d on %s: %v", ErrGitLab, in.ProjectID, in.BaseURL, err)
}
