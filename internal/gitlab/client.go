// Package gitlab is glenv's one GitLab client layer, on client-go. It fixes
// the transport rules of PROTOCOL.md §5 in one place (short dial time-out,
// retries only where a retry cannot duplicate, 429s waited out) and turns
// GitLab's errors into messages that say what to fix. It holds no state and
// never logs a token.
package gitlab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	gl "gitlab.com/gitlab-org/api/client-go/v2"
)

// Client talks to one GitLab instance with one token.
type Client struct {
	API     *gl.Client
	BaseURL string // as given, without trailing slash
}

// Options tune the transport; the zero value is production's.
type Options struct {
	// DialTimeout bounds connecting, so an unreachable GitLab fails fast (default 3s).
	DialTimeout time.Duration
	// Timeout bounds one whole request (default 20s).
	Timeout time.Duration
	// Gate, when set, is asked before every request; an error fails the
	// call without sending it (e.g. while GitLab's rate limit is known to be
	// exhausted for this token, see NewRateLimitError).
	Gate func(context.Context) error
	// RetryMax is how often idempotent calls are retried on 429/5xx (default
	// 4; negative: never, for background jobs that retry on their own).
	RetryMax int
}

// New returns a client for baseURL (e.g. https://gitlab.com) using token as
// PRIVATE-TOKEN. POST and other non-idempotent calls are never retried.
func New(baseURL, token string, o Options) (*Client, error) {
	baseURL = strings.TrimRight(baseURL, "/")
	if err := ValidateBaseURL(baseURL); err != nil {
		return nil, err
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = 3 * time.Second
	}
	if o.Timeout == 0 {
		o.Timeout = 20 * time.Second
	}
	if o.RetryMax == 0 {
		o.RetryMax = 4
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: o.DialTimeout, KeepAlive: 30 * time.Second}).DialContext
	tr.TLSHandshakeTimeout = o.DialTimeout
	tr.ResponseHeaderTimeout = o.Timeout
	hc := &http.Client{Transport: tr, Timeout: o.Timeout}
	opts := []gl.ClientOptionFunc{
		gl.WithBaseURL(baseURL),
		gl.WithHTTPClient(hc),
		gl.WithOnlyIdempotentRetries(),
		gl.WithCustomRetry(retryPolicy),
		gl.WithCustomRetryMax(o.RetryMax),
		// client-go adds up to (max-min) of jitter to a 429's RateLimit-Reset wait.
		gl.WithCustomRetryWaitMinMax(100*time.Millisecond, 1100*time.Millisecond),
		gl.WithUserAgent("glenv"),
	}
	if o.Gate != nil {
		// client-go waits on its limiter before every request: the gate's place.
		opts = append(opts, gl.WithCustomLimiter(gateLimiter(o.Gate)))
	}
	api, err := gl.NewClient(token, opts...)
	if err != nil {
		return nil, fmt.Errorf("base_url %q: %w", baseURL, err)
	}
	return &Client{API: api, BaseURL: baseURL}, nil
}

// gateLimiter is client-go's RateLimiter made of a Gate.
type gateLimiter func(context.Context) error

func (g gateLimiter) Wait(ctx context.Context) error { return g(ctx) }

// retryPolicy retries what a retry cannot duplicate (PROTOCOL.md §5): a 429
// for any method (GitLab rejected it before doing anything; client-go then
// waits for RateLimit-Reset), and a 5xx other than 501 for idempotent
// methods only. Transport errors are not retried: an unreachable GitLab must
// fail fast for a person waiting, and background jobs retry on their own.
func retryPolicy(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if err != nil || resp == nil {
		return false, nil
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		return true, nil
	case resp.StatusCode >= 500 && resp.StatusCode != http.StatusNotImplemented:
		switch resp.Request.Method {
		case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete, http.MethodOptions:
			return true, nil
		}
	}
	return false, nil
}

// ValidateBaseURL checks a GitLab base URL; the error names the field and the fix.
func ValidateBaseURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("base_url %q: must be the absolute http(s) URL of the GitLab instance, e.g. https://gitlab.com or https://gitlab.example.com", raw)
	}
	if u.User != nil {
		return fmt.Errorf("base_url: must not contain credentials; pass the token with --token")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("base_url %q: must not have a query or fragment", raw)
	}
	if strings.HasSuffix(strings.TrimRight(u.Path, "/"), "/api/v4") {
		return fmt.Errorf("base_url %q: give the instance URL without /api/v4, e.g. %s://%s", raw, u.Scheme, u.Host)
	}
	return nil
}

// Ctx is the request option that carries ctx.
func Ctx(ctx context.Context) gl.RequestOptionFunc { return gl.WithContext(ctx) }

// Error kinds callers branch on.
var (
	ErrUnreachable  = errors.New("GitLab cannot be reached")
	ErrUnauthorized = errors.New("GitLab rejected the token")
	ErrForbidden    = errors.New("GitLab refused the request")
	ErrNotFound     = errors.New("not found on GitLab")
	ErrRateLimited  = errors.New("GitLab rate limit reached")
)

// Explain turns a client-go error into one that says what happened and what
// to do, wrapping one of the Err* kinds above where one fits. what names the
// call, e.g. "read project group/app".
func (c *Client) Explain(what string, err error) error {
	if err == nil {
		return nil
	}
	var er *gl.ErrorResponse
	switch {
	case errors.Is(err, gl.ErrNotFound):
		return fmt.Errorf("%s: %w (404): check the path or id, and that the token's user can see it", what, ErrNotFound)
	case errors.As(err, &er):
		msg := strings.TrimSpace(er.Message)
		switch er.StatusCode {
		case http.StatusUnauthorized:
			switch {
			case strings.Contains(msg, "expired"):
				return fmt.Errorf("%s: %w: the token has expired; create a new one with the api scope and pass it with --token", what, ErrUnauthorized)
			case strings.Contains(msg, "revoked"):
				return fmt.Errorf("%s: %w: the token was revoked; create a new one with the api scope and pass it with --token", what, ErrUnauthorized)
			}
			return fmt.Errorf("%s: %w (401 %s): check --token is a valid GitLab access token for %s", what, ErrUnauthorized, msg, c.BaseURL)
		case http.StatusForbidden:
			if strings.Contains(msg, "insufficient_scope") {
				return fmt.Errorf("%s: %w: the token lacks the api scope; create a token with the api scope", what, ErrForbidden)
			}
			return fmt.Errorf("%s: %w (403 %s): the token's user needs the Maintainer role on the project", what, ErrForbidden, msg)
		case http.StatusTooManyRequests:
			return fmt.Errorf("%s: %w (429): try again after a minute", what, ErrRateLimited)
		}
		return fmt.Errorf("%s: GitLab answered %d: %s", what, er.StatusCode, msg)
	}
	var ne net.Error
	var ue *url.Error
	if errors.As(err, &ne) || errors.As(err, &ue) || strings.Contains(err.Error(), "giving up after") {
		return fmt.Errorf("%s: %w at %s: %v; check --base-url and that this machine can reach it", what, ErrUnreachable, c.BaseURL, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}
