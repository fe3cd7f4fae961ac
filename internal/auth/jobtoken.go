package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"

	gl "gitlab.com/gitlab-org/api/client-go/v2"

	"github.com/glenv/glenv/internal/store"
)

// ErrBadJobToken is a job token GitLab does not know (or a finished job's).
var ErrBadJobToken = errors.New("CI job token refused by GitLab: it works only while its job runs")

// ErrJobTokensThrottled is a job token glenv did not send GitLab to verify
// because it already sent it jobVerifyRate others a second.
var ErrJobTokensThrottled = errors.New("too many CI job tokens to verify with GitLab at once")

// Job token verification is bounded, so that strangers sending made-up
// tokens cannot make glenv hammer GitLab (whose throttle of failed
// requests per IP would then refuse glenv's real calls): a verdict counts
// for jobVerdictTTL, and past jobVerifyRate new tokens a second (burst
// jobVerifyBurst) per GitLab the rest are refused unverified. A job that
// ends may so still be let in for up to jobVerdictTTL; its token is secret.
const (
	jobVerdictTTL  = time.Minute
	jobVerdicts    = 10000 // entries kept at most
	jobVerifyRate  = 10
	jobVerifyBurst = 30
)

// jobVerdict is what GitLab said of a token: a principal, or ErrBadJobToken.
type jobVerdict struct {
	p     Principal
	err   error
	until time.Time
}

// jobTokens caches verdicts and limits verification per GitLab.
type jobTokens struct {
	mu       sync.Mutex
	verdicts map[[32]byte]jobVerdict
	limiters map[string]*rate.Limiter
}

// JobPrincipal verifies a CI_JOB_TOKEN, however the job sent it, with the
// GitLab at baseURL (GET /api/v4/job with the JOB-TOKEN header) and returns
// a principal allowed exactly that job's project. Verdicts are kept for a
// minute and new tokens limited (jobTokens).
func (s *Service) JobPrincipal(ctx context.Context, token, baseURL string) (Principal, error) {
	s.init()
	key := sha256.Sum256([]byte(HostOf(baseURL) + "\n" + token))
	now := s.now()
	s.jobs.mu.Lock()
	if s.jobs.verdicts == nil {
		s.jobs.verdicts, s.jobs.limiters = map[[32]byte]jobVerdict{}, map[string]*rate.Limiter{}
	}
	if v, ok := s.jobs.verdicts[key]; ok && now.Before(v.until) {
		s.jobs.mu.Unlock()
		return v.p, v.err
	}
	lim := s.jobs.limiters[HostOf(baseURL)]
	if lim == nil {
		lim = rate.NewLimiter(jobVerifyRate, jobVerifyBurst)
		s.jobs.limiters[HostOf(baseURL)] = lim
	}
	allowed := lim.Allow()
	s.jobs.mu.Unlock()
	if !allowed {
		return Principal{}, ErrJobTokensThrottled
	}
	p, err := s.verifyJobToken(ctx, token, baseURL)
	if err == nil || errors.Is(err, ErrBadJobToken) { // a verdict; other errors are GitLab's trouble
		s.jobs.mu.Lock()
		if len(s.jobs.verdicts) >= jobVerdicts {
			for k, v := range s.jobs.verdicts {
				if !now.Before(v.until) {
					delete(s.jobs.verdicts, k)
				}
			}
			if len(s.jobs.verdicts) >= jobVerdicts {
				clear(s.jobs.verdicts)
			}
		}
		s.jobs.verdicts[key] = jobVerdict{p: p, err: err, until: now.Add(jobVerdictTTL)}
		s.jobs.mu.Unlock()
	}
	return p, err
}

// verifyJobToken asks GitLab: GET /api/v4/job with the token.
func (s *Service) verifyJobToken(ctx context.Context, token, baseURL string) (Principal, error) {
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
	level, _, err := memberLevel(ctx, c, in.ProjectID, p.JobUserID)
	if err != nil {
		return 0, fmt.Errorf("%w: read the job user's membership of project %d on %s: %v", ErrGitLab, in.ProjectID, in.BaseURL, err)
	}
	return level, nil
}
