package auth

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/glenv/glenv/internal/gitlabapi"
	"github.com/glenv/glenv/internal/store"
)

// jobTokenHeader is how CI jobs authenticate: JOB-TOKEN: $CI_JOB_TOKEN.
const jobTokenHeader = "JOB-TOKEN"

// V4Authenticate finds the caller of glenv's GitLab-compatible /api/v4 as
// GitLab's API guard does (findV4Tokens says where it looks), answering
// refusals with GitLab's bodies: a missing or unknown token 401, a token of
// the wrong scope 403 insufficient_scope. A job token is verified later,
// against the GitLab of the project asked for (V4Allow).
//
// body gives the call's parameters, its body's included, or nil when its
// body has none. It is asked for only when the headers and the query carry
// no token, so that such a caller is known before glenv waits for a body.
// GitLab reads all at once, so when a client sends two tokens a
// private_token or access_token in the body outranks a header's job token
// there, not here.
func (s *Service) V4Authenticate(w http.ResponseWriter, r *http.Request, body func() *gitlabapi.Params) (Principal, bool) {
	s.init()
	tokens := findV4Tokens(r, lastOf(r.URL.Query()))
	if tokens.none() && body != nil {
		if params := body(); params != nil {
			tokens = findV4Tokens(r, paramString(params))
		}
	}
	p, err := s.v4Principal(r.Context(), tokens)
	switch {
	case errors.Is(err, ErrTokenExpired):
		invalidToken(w, "Token is expired. You can either do re-authorization or token refresh.")
		return p, false
	case err != nil:
		gitlabapi.Unauthorized(w)
		return p, false
	}
	if !isRead(r) && p.Scope == store.ScopeReadAPI {
		insufficientScope(w)
		return p, false
	}
	return p, true
}

// v4Principal resolves tokens in GitLab's order (lib/api/api_guard.rb
// find_user_from_sources: find_user_from_bearer_token, which tries the
// bearer token as a job's before as an access token, then
// find_user_from_job_token). A token of glenv's own is glenv's, whatever
// its shape; of the others only one with a job token's prefix is taken for
// a job's, verified with GitLab by V4Allow.
func (s *Service) v4Principal(ctx context.Context, t v4Tokens) (Principal, error) {
	if IsJobToken(t.Bearer) {
		p, err := s.tokenPrincipal(ctx, t.Bearer)
		if errors.Is(err, ErrBadToken) {
			return jobCandidate(t.Bearer, false)
		}
		return p, err
	}
	if t.Private != "" {
		p, err := s.tokenPrincipal(ctx, t.Private)
		// An unknown job token is no access token to GitLab
		// (auth_finders.rb find_personal_access_token returns nil for
		// Ci::Build::TOKEN_PREFIX on API requests): the job token decides.
		if !errors.Is(err, ErrBadToken) || !IsJobToken(t.Private) {
			return p, err
		}
	}
	if t.Job != "" {
		p, err := jobCandidate(t.Job, t.JobFromParam)
		if err != nil {
			return p, err
		}
		// One of glenv's own tokens (or a store that failed) is never
		// forwarded: it would leak to GitLab.
		if _, err := s.tokenPrincipal(ctx, t.Job); !errors.Is(err, ErrBadToken) {
			return Principal{}, ErrBadToken
		}
		return p, nil
	}
	return Principal{}, ErrNoCredentials
}

// maxJobToken bounds a job token's length: a JWT one is under a kilobyte.
const maxJobToken = 4096

// jobCandidate is a job token to be verified with GitLab later (V4Allow),
// unless its shape rules it out: glenv sends GitLab no value it has no
// reason to take for a job's. A token from a parameter must carry GitLab's
// job token prefix (that way of sending one is as new as the prefix, and
// anyone can put any string there); none may be a value no HTTP header can
// carry. The caller makes sure it is none of glenv's own tokens.
func jobCandidate(token string, fromParam bool) (Principal, error) {
	if (fromParam && !IsJobToken(token)) || len(token) > maxJobToken || !headerSafe(token) {
		return Principal{}, ErrBadToken
	}
	return Principal{Kind: KindJob, jobToken: token}, nil
}

// headerSafe says whether v is printable ASCII, as a token in a header is.
func headerSafe(v string) bool {
	for i := 0; i < len(v); i++ {
		if v[i] < 0x21 || v[i] > 0x7e {
			return false
		}
	}
	return true
}

// lastOf looks query parameters up as Rack does: the last of a repeated
// key counts (gitlabapi.Params.Lookup).
func lastOf(q url.Values) func(string) string {
	return func(key string) string {
		if vs := q[key]; len(vs) > 0 {
			return vs[len(vs)-1]
		}
		return ""
	}
}

// paramString looks parameters up as GitLab's auth finders read them: a
// JSON number or boolean as its text.
func paramString(p *gitlabapi.Params) func(string) string {
	return func(key string) string {
		v, _ := p.Str(key)
		return v
	}
}

func isRead(r *http.Request) bool { return r.Method == http.MethodGet || r.Method == http.MethodHead }

// invalidToken is GitLab's answer to an expired or revoked token
// (lib/gitlab/auth/auth_finders.rb, via Rack::OAuth2's Bearer::Unauthorized).
func invalidToken(w http.ResponseWriter, description string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="Protected by OAuth 2.0", error="invalid_token", error_description="`+description+`"`)
	gitlabapi.WriteJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token", "error_description": description})
}

// insufficientScope is GitLab's answer to a token without the scope a
// route needs (lib/api/api_guard.rb rescues InsufficientScopeError with
// Rack::OAuth2's Bearer::Forbidden(:insufficient_scope, …, scope:)). Writes
// accept only api: read_api counts for GET and HEAD alone (lib/api/api.rb
// `allow_access_with_scope :read_api, if: -> (request) { request.get? || request.head? }`).
func insufficientScope(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="Protected by OAuth 2.0", error="insufficient_scope", error_description="The request requires higher privileges than provided by the access token.", scope="api"`)
	gitlabapi.WriteJSON(w, http.StatusForbidden, map[string]string{
		"error":             "insufficient_scope",
		"error_description": "The request requires higher privileges than provided by the access token.",
		"scope":             "api",
	})
}

// V4Allow decides whether the caller of r may read (GET) or change the
// environments of the project its integrations connect, answering as GitLab
// does: a project the caller cannot read is 404 Project Not Found, a write
// without the role 403 Forbidden. A job token, wherever it was sent, is
// verified here, with the project's GitLab (GET /api/v4/job), and allows
// that job's project only.
func (s *Service) V4Allow(w http.ResponseWriter, r *http.Request, ins []store.Integration) (*http.Request, bool) {
	action := ActWrite
	if isRead(r) {
		action = ActRead
	}
	return s.V4AllowAction(w, r, ins, action)
}

// V4AllowAction is V4Allow for an action the route names rather than its
// method: ActRead for routes that find the environment before checking
// the right to change it (then V4May), ActAdmin for GitLab's
// Maintainer-only ones (V4AllowMaintainer).
func (s *Service) V4AllowAction(w http.ResponseWriter, r *http.Request, ins []store.Integration, action Action) (*http.Request, bool) {
	return s.v4Allow(w, r, ins, action, nil)
}

// v4Allow is V4AllowAction with one more check, also, made (when not nil)
// once the caller is known and allowed the action, before the call is
// audited; its refusal is GitLab's 403.
func (s *Service) v4Allow(w http.ResponseWriter, r *http.Request, ins []store.Integration, action Action,
	also func(*http.Request, Principal) bool) (*http.Request, bool) {
	p, _ := From(r.Context())
	if p.Kind == KindJob && p.JobProjectID == 0 && !oneGitLab(ins) {
		// Integrations of two GitLabs share this project id: which one
		// issued the token is unknown, and it must reach no other.
		s.Log.Warn("CI job token refused: the project id names projects on more than one GitLab", "path", r.URL.Path)
		gitlabapi.Unauthorized(w)
		return r, false
	}
	if p.Kind == KindJob && p.JobProjectID == 0 {
		var err error
		p, err = s.JobPrincipal(r.Context(), p.jobToken, ins[0].BaseURL)
		if err != nil {
			switch {
			case errors.Is(err, ErrJobTokensThrottled):
				s.Log.Debug("verify job token", "gitlab", ins[0].BaseURL, "err", err) // strangers can cause it: no warning each
			case !errors.Is(err, ErrBadJobToken):
				s.Log.Warn("verify job token", "gitlab", ins[0].BaseURL, "err", err)
			}
			gitlabapi.Unauthorized(w)
			return r, false
		}
		r = r.WithContext(WithPrincipal(r.Context(), p))
	}
	canRead, canDo := s.v4Can(r, p, ins, action)
	switch {
	case !canRead && !s.v4SeesProject(r, p, ins):
		gitlabapi.NotFound(w, "Project")
		return r, false
	case !canRead:
		gitlabapi.Forbidden(w)
		return r, false
	case !canDo, also != nil && !also(r, p):
		gitlabapi.Forbidden(w)
		return r, false
	}
	s.auditV4(r, p, action)
	return r, true
}

// V4May says whether the caller of r, allowed to read by V4AllowAction,
// may also do action on the project; the caller answers a refusal in the
// shape its route has (GitLab's are not all 403).
func (s *Service) V4May(r *http.Request, ins []store.Integration, action Action) bool {
	p, _ := From(r.Context())
	if _, ok := s.v4Can(r, p, ins, action); !ok {
		return false
	}
	s.auditV4(r, p, action)
	return true
}

// auditV4 records an allowed /api/v4 call that changes something.
func (s *Service) auditV4(r *http.Request, p Principal, action Action) {
	if action != ActRead {
		s.Audit(r.Context(), r, p, "api/v4:"+r.Method, r.URL.Path, "")
	}
}

// V4AllowMaintainer is V4AllowAction for a route GitLab lets Maintainers
// use and Developers not (POST …/environments/stop_stale authorizes
// :stop_environment on the project). A CI job has its user's rights in
// GitLab; GET /api/v4/job names the user but not their role, so the job's
// project and the user's access level on it (read with the integration's
// token) are checked in turn.
func (s *Service) V4AllowMaintainer(w http.ResponseWriter, r *http.Request, ins []store.Integration) (*http.Request, bool) {
	if p, _ := From(r.Context()); p.Kind != KindJob {
		return s.V4AllowAction(w, r, ins, ActAdmin)
	}
	return s.v4Allow(w, r, ins, ActWrite, func(r *http.Request, p Principal) bool { return s.jobUserIsMaintainer(r, p, ins) })
}

// jobUserIsMaintainer says whether the user job p runs as is a Maintainer
// of the project of one of ins that the job may act on (its own).
func (s *Service) jobUserIsMaintainer(r *http.Request, p Principal, ins []store.Integration) bool {
	for _, in := range ins {
		if ok, _ := s.CanIntegration(r.Context(), p, ActWrite, in); !ok {
			continue // another project's integration
		}
		level, err := s.jobUserLevel(r.Context(), p, in)
		if err != nil {
			s.Log.Warn("job user's role unknown", "job", p.Name, "integration", in.Name, "err", err)
			continue
		}
		if level >= MaintainerAccess {
			return true
		}
	}
	return false
}

// oneGitLab says whether ins all talk to the same GitLab.
func oneGitLab(ins []store.Integration) bool {
	for _, in := range ins[1:] {
		if HostOf(in.BaseURL) != HostOf(ins[0].BaseURL) {
			return false
		}
	}
	return true
}

// v4SeesProject says whether p, who may not read the environments of any of
// ins, still sees one of their projects, so that GitLab answers 403 rather
// than 404: a Guest or Planner member reads the project but not its
// environments (app/policies/project_policy.rb: guest_access enables
// :read_project, reporter_access :read_environment), and lib/api/environments.rb
// finds the project (user_project) before authorize! :read_environment.
// Minimal Access (5) does not see a private project. glenv does not know a
// project's visibility, so a non-member of a public project gets 404 where
// GitLab answers 403.
func (s *Service) v4SeesProject(r *http.Request, p Principal, ins []store.Integration) bool {
	if p.Kind == KindJob {
		return false
	}
	for _, in := range ins {
		if level, err := s.AccessLevel(r.Context(), p, in); err == nil && level >= GuestAccess {
			return true
		}
	}
	return false
}

// v4Can says whether p may read, and do action on, any of ins.
func (s *Service) v4Can(r *http.Request, p Principal, ins []store.Integration, action Action) (canRead, canDo bool) {
	for _, in := range ins {
		read, _ := s.CanIntegration(r.Context(), p, ActRead, in)
		do := read
		if action != ActRead && read {
			do, _ = s.CanIntegration(r.Context(), p, action, in)
		}
		canRead, canDo = canRead || read, canDo || do
	}
	return canRead, canDo
}
