package gitlab

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	gl "gitlab.com/gitlab-org/api/client-go/v2"
)

// The calls internal/feedback makes (PROTOCOL.md §3.1–§3.5). They enforce
// GitLab's limits (255-character status fields) and turn the answers callers
// branch on into the error kinds below; everything else goes through Explain.

// ErrAlreadyInState is GitLab refusing a transition to the state a commit
// status or deployment already has ("Cannot transition status via :enqueue
// from :pending"): what the caller wanted is already true.
var ErrAlreadyInState = errors.New("already in that state on GitLab")

// ErrRefMissing is GitLab refusing a deployment whose ref is not a branch or
// tag of the project (e.g. the source branch of a fork's merge request).
var ErrRefMissing = errors.New("the ref is not a branch or tag on GitLab")

// RateLimitError is a 429: nothing was done, and GitLab asks to wait until Reset.
type RateLimitError struct {
	Reset time.Time
	err   error
}

func (e *RateLimitError) Error() string { return e.err.Error() }
func (e *RateLimitError) Unwrap() error { return e.err }

// NewRateLimitError is a 429 known before asking GitLab: its limit for this
// token is exhausted until reset.
func NewRateLimitError(reset time.Time, why string) *RateLimitError {
	return &RateLimitError{Reset: reset, err: fmt.Errorf("%w: %s, until %s", ErrRateLimited, why, reset.UTC().Format(time.RFC3339))}
}

// defaultRateLimitWait is how long to wait after a 429 that names no reset
// time (GitLab's application limits may omit Retry-After).
const defaultRateLimitWait = 20 * time.Second

// explainCall is Explain, plus the reset time of a 429.
func (c *Client) explainCall(what string, err error) error {
	var er *gl.ErrorResponse
	if errors.As(err, &er) && er.StatusCode == http.StatusTooManyRequests {
		return &RateLimitError{Reset: resetTime(er.Response, time.Now()), err: c.Explain(what, err)}
	}
	return c.Explain(what, err)
}

// resetTime reads when a 429 ends: RateLimit-Reset (Unix seconds), else
// Retry-After (seconds), else a default wait.
func resetTime(resp *http.Response, now time.Time) time.Time {
	if resp != nil {
		if v, err := strconv.ParseInt(resp.Header.Get("RateLimit-Reset"), 10, 64); err == nil && v > 0 {
			return time.Unix(v, 0)
		}
		if v, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && v >= 0 {
			return now.Add(time.Duration(v) * time.Second)
		}
	}
	return now.Add(defaultRateLimitWait)
}

// isTransitionRefused reports GitLab's 400 for a repeated state.
func isTransitionRefused(err error) bool {
	var er *gl.ErrorResponse
	if !errors.As(err, &er) || er.StatusCode != http.StatusBadRequest {
		return false
	}
	m := strings.ToLower(er.Message)
	return strings.Contains(m, "cannot transition")
}

// Cut shortens s to at most n characters: GitLab rejects longer commit status
// fields with a 400 instead of truncating them (PROTOCOL.md §6).
func Cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	if n <= 1 {
		return string(r[:n])
	}
	return string(r[:n-1]) + "…"
}

// StatusField is GitLab's limit on a commit status's ref, target_url and description.
const StatusField = 255

// CommitStatus is one commit status glenv sets.
type CommitStatus struct {
	SHA, State, Ref, Name, TargetURL, Description string
}

// SetCommitStatus sets a commit status; ref, target_url and description are
// cut to GitLab's 255 characters. A repeated pending or running returns
// ErrAlreadyInState.
func (c *Client) SetCommitStatus(ctx context.Context, projectID int64, st CommitStatus) error {
	opt := &gl.SetCommitStatusOptions{State: gl.BuildStateValue(st.State), Name: gl.Ptr(st.Name)}
	if st.Ref != "" {
		opt.Ref = gl.Ptr(Cut(st.Ref, StatusField))
	}
	if st.TargetURL != "" && utf8.RuneCountInString(st.TargetURL) <= StatusField {
		// A cut URL would point somewhere else: leave it out instead.
		opt.TargetURL = gl.Ptr(st.TargetURL)
	}
	if st.Description != "" {
		opt.Description = gl.Ptr(Cut(st.Description, StatusField))
	}
	_, _, err := c.API.Commits.SetCommitStatus(projectID, st.SHA, opt, Ctx(ctx))
	if isTransitionRefused(err) {
		return fmt.Errorf("set commit status %s %s on %.8s: %w", st.Name, st.State, st.SHA, ErrAlreadyInState)
	}
	if err != nil {
		return c.explainCall(fmt.Sprintf("set commit status %s %s on %.8s", st.Name, st.State, st.SHA), err)
	}
	return nil
}

// LatestCommitStatus returns the state of the newest status called name on
// sha ("" when there is none), to learn whether a send whose answer was lost
// reached GitLab.
func (c *Client) LatestCommitStatus(ctx context.Context, projectID int64, sha, name string) (string, error) {
	opt := &gl.GetCommitStatusesOptions{Name: gl.Ptr(name), ListOptions: gl.ListOptions{PerPage: 100, Page: 1}}
	var newest *gl.CommitStatus
	for {
		sts, resp, err := c.API.Commits.GetCommitStatuses(projectID, sha, opt, Ctx(ctx))
		if errors.Is(err, gl.ErrNotFound) {
			return "", nil
		}
		if err != nil {
			return "", c.explainCall("read the commit statuses of "+sha, err)
		}
		for _, st := range sts {
			if st.Name == name && (newest == nil || st.ID > newest.ID) {
				newest = st
			}
		}
		if resp.NextPage == 0 {
			break
		}
		opt.Page = resp.NextPage
	}
	if newest == nil {
		return "", nil
	}
	return newest.Status, nil
}

// FindMergeRequestNote returns the id of the first note on the merge request
// whose body starts with marker, and its body; 0 when there is none. It
// reads every page, oldest first.
func (c *Client) FindMergeRequestNote(ctx context.Context, projectID, mrIID int64, marker string) (int64, string, error) {
	opt := &gl.ListMergeRequestNotesOptions{Sort: gl.Ptr("asc"), OrderBy: gl.Ptr("created_at"),
		ListOptions: gl.ListOptions{PerPage: 100, Page: 1}}
	for {
		notes, resp, err := c.API.Notes.ListMergeRequestNotes(projectID, mrIID, opt, Ctx(ctx))
		if err != nil {
			return 0, "", c.explainCall(fmt.Sprintf("list the notes of merge request !%d", mrIID), err)
		}
		for _, n := range notes {
			if !n.System && strings.HasPrefix(n.Body, marker) {
				return n.ID, n.Body, nil
			}
		}
		if resp.NextPage == 0 {
			return 0, "", nil
		}
		opt.Page = resp.NextPage
	}
}

// CreateMergeRequestNote adds a note and returns its id.
func (c *Client) CreateMergeRequestNote(ctx context.Context, projectID, mrIID int64, body string) (int64, error) {
	n, _, err := c.API.Notes.CreateMergeRequestNote(projectID, mrIID, &gl.CreateMergeRequestNoteOptions{Body: gl.Ptr(body)}, Ctx(ctx))
	if err != nil {
		return 0, c.explainCall(fmt.Sprintf("comment on merge request !%d", mrIID), err)
	}
	return n.ID, nil
}

// UpdateMergeRequestNote replaces a note's body; a note someone deleted
// returns an error wrapping ErrNotFound.
func (c *Client) UpdateMergeRequestNote(ctx context.Context, projectID, mrIID, noteID int64, body string) error {
	_, _, err := c.API.Notes.UpdateMergeRequestNote(projectID, mrIID, noteID, &gl.UpdateMergeRequestNoteOptions{Body: gl.Ptr(body)}, Ctx(ctx))
	return c.explainCall(fmt.Sprintf("edit note %d on merge request !%d", noteID, mrIID), err)
}

// Environment is the part of a GitLab environment glenv keeps.
type Environment struct {
	ID          int64
	Name        string
	ExternalURL string
	State       string
}

// FindEnvironment returns the project's environment called name, or nil.
func (c *Client) FindEnvironment(ctx context.Context, projectID int64, name string) (*Environment, error) {
	envs, _, err := c.API.Environments.ListEnvironments(projectID, &gl.ListEnvironmentsOptions{Name: gl.Ptr(name)}, Ctx(ctx))
	if err != nil {
		return nil, c.explainCall("find GitLab environment "+name, err)
	}
	for _, e := range envs {
		if e.Name == name {
			return &Environment{ID: e.ID, Name: e.Name, ExternalURL: e.ExternalURL, State: e.State}, nil
		}
	}
	return nil, nil
}

// CreateEnvironment creates a GitLab environment. A name already taken
// returns an error wrapping ErrAlreadyInState (find it instead).
func (c *Client) CreateEnvironment(ctx context.Context, projectID int64, name, externalURL, tier string) (Environment, error) {
	opt := &gl.CreateEnvironmentOptions{Name: gl.Ptr(name)}
	if externalURL != "" {
		opt.ExternalURL = gl.Ptr(externalURL)
	}
	if tier != "" {
		opt.Tier = gl.Ptr(tier)
	}
	e, _, err := c.API.Environments.CreateEnvironment(projectID, opt, Ctx(ctx))
	var er *gl.ErrorResponse
	if errors.As(err, &er) && er.StatusCode == http.StatusBadRequest && strings.Contains(er.Message, "has already been taken") {
		return Environment{}, fmt.Errorf("create GitLab environment %s: %w", name, ErrAlreadyInState)
	}
	if err != nil {
		return Environment{}, c.explainCall("create GitLab environment "+name, err)
	}
	return Environment{ID: e.ID, Name: e.Name, ExternalURL: e.ExternalURL, State: e.State}, nil
}

// SetEnvironmentURL changes a GitLab environment's external_url.
func (c *Client) SetEnvironmentURL(ctx context.Context, projectID, envID int64, externalURL string) error {
	_, _, err := c.API.Environments.EditEnvironment(projectID, envID, &gl.EditEnvironmentOptions{ExternalURL: gl.Ptr(externalURL)}, Ctx(ctx))
	return c.explainCall(fmt.Sprintf("set the external_url of GitLab environment %d", envID), err)
}

// StopEnvironment stops a GitLab environment without running stop jobs.
func (c *Client) StopEnvironment(ctx context.Context, projectID, envID int64) error {
	_, _, err := c.API.Environments.StopEnvironment(projectID, envID, &gl.StopEnvironmentOptions{Force: gl.Ptr(true)}, Ctx(ctx))
	return c.explainCall(fmt.Sprintf("stop GitLab environment %d", envID), err)
}

// DeleteEnvironment deletes a stopped GitLab environment; one already gone is fine.
func (c *Client) DeleteEnvironment(ctx context.Context, projectID, envID int64) error {
	_, err := c.API.Environments.DeleteEnvironment(projectID, envID, Ctx(ctx))
	if errors.Is(err, gl.ErrNotFound) {
		return nil
	}
	return c.explainCall(fmt.Sprintf("delete GitLab environment %d", envID), err)
}

// Deployment is one deployment glenv records on a GitLab environment.
type Deployment struct {
	ID          int64
	Environment string
	SHA, Ref    string
	Tag         bool
	Status      string
}

// CreateDeployment records a deployment (status running, success, failed or
// canceled) and returns its id. A ref GitLab does not know returns an error
// wrapping ErrRefMissing.
func (c *Client) CreateDeployment(ctx context.Context, projectID int64, d Deployment) (int64, error) {
	status := gl.DeploymentStatusValue(d.Status)
	out, _, err := c.API.Deployments.CreateProjectDeployment(projectID, &gl.CreateProjectDeploymentOptions{
		Environment: gl.Ptr(d.Environment), Ref: gl.Ptr(d.Ref), SHA: gl.Ptr(d.SHA), Tag: gl.Ptr(d.Tag), Status: &status,
	}, Ctx(ctx))
	var er *gl.ErrorResponse
	if errors.As(err, &er) && er.StatusCode == http.StatusBadRequest && strings.Contains(er.Message, "does not exist") {
		return 0, fmt.Errorf("create a deployment of %s at %.8s: %w (%s)", d.Ref, d.SHA, ErrRefMissing, er.Message)
	}
	if err != nil {
		return 0, c.explainCall(fmt.Sprintf("create a deployment of %s at %.8s", d.Ref, d.SHA), err)
	}
	return out.ID, nil
}

// SetDeploymentStatus moves a deployment on; repeating its status returns
// ErrAlreadyInState.
func (c *Client) SetDeploymentStatus(ctx context.Context, projectID, deploymentID int64, status string) error {
	st := gl.DeploymentStatusValue(status)
	_, _, err := c.API.Deployments.UpdateProjectDeployment(projectID, deploymentID, &gl.UpdateProjectDeploymentOptions{Status: &st}, Ctx(ctx))
	if isTransitionRefused(err) {
		return fmt.Errorf("set deployment %d %s: %w", deploymentID, status, ErrAlreadyInState)
	}
	return c.explainCall(fmt.Sprintf("set deployment %d %s", deploymentID, status), err)
}

// FindDeployment returns the newest deployment of environment at sha whose
// id skip does not reject (nil when none), among the newest 100: it finds a
// deployment whose creation was sent but whose answer was lost.
func (c *Client) FindDeployment(ctx context.Context, projectID int64, environment, sha string, skip func(id int64) bool) (*Deployment, error) {
	ds, _, err := c.API.Deployments.ListProjectDeployments(projectID, &gl.ListProjectDeploymentsOptions{
		Environment: gl.Ptr(environment), OrderBy: gl.Ptr("id"), Sort: gl.Ptr("desc"),
		ListOptions: gl.ListOptions{PerPage: 100, Page: 1},
	}, Ctx(ctx))
	if err != nil {
		return nil, c.explainCall("list the deployments of GitLab environment "+environment, err)
	}
	for _, d := range ds {
		if d.SHA == sha && !skip(d.ID) {
			return &Deployment{ID: d.ID, Environment: environment, SHA: d.SHA, Ref: d.Ref, Status: d.Status}, nil
		}
	}
	return nil, nil
}

// GetHook reads one project hook (nil when it is gone).
func (c *Client) GetHook(ctx context.Context, projectID, hookID int64) (*Hook, error) {
	h, _, err := c.API.Projects.GetProjectHook(projectID, hookID, Ctx(ctx))
	if errors.Is(err, gl.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, c.explainCall("read the webhook", err)
	}
	out := hookFrom(h)
	return &out, nil
}

// TokenExpiry reads when the token expires (nil = never) with one call.
func (c *Client) TokenExpiry(ctx context.Context) (*time.Time, error) {
	pat, _, err := c.API.PersonalAccessTokens.GetSinglePersonalAccessToken(Ctx(ctx))
	if err != nil {
		return nil, c.explainCall("check the token", err)
	}
	if pat.ExpiresAt == nil {
		return nil, nil
	}
	t := time.Time(*pat.ExpiresAt)
	return &t, nil
}
