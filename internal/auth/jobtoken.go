package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	gl "gitlab.com/gitlab-org/api/client-go/v2"
)

// ErrBadJobToken is a job token GitLab does not know (or a finished job's).
var ErrBadJobToken = errors.New("JOB-TOKEN refused by GitLab: it works only while its job runs")

// JobPrincipal verifies a CI_JOB_TOKEN with the GitLab at baseURL
// (GET /api/v4/job with the JOB-TOKEN header) and returns a principal
// allowed exactly that job's project.
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
	return Principal{Kind: KindJob, Name: fmt.Sprintf("job:%d@%s", job.ID, HostOf(baseURL)), Scope: "api",
		JobProjectID: job.Pipeline.ProjectID, JobBaseURL: baseURL}, nil
}
