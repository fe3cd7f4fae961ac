package auth

import (
	"net/http"
	"strings"
)

// JobTokenPrefix starts every CI job token GitLab hands a job, stored or
// JWT (app/models/ci/build.rb TOKEN_PREFIX, prefix_and_partition_for_token;
// lib/ci/job_token/jwt.rb token_prefix): how GitLab tells one from its
// other tokens (lib/authn/tokens/ci_job_token.rb `prefix?`).
const JobTokenPrefix = "glcbt-"

// IsJobToken says whether v has the shape of a CI job token. Only such a
// token, when it is none of glenv's own, is verified with GitLab: glenv
// must not call GitLab for every unknown token someone sends it.
func IsJobToken(v string) bool { return strings.HasPrefix(v, JobTokenPrefix) }

// v4Tokens are the tokens a call to /api/v4 carries, each found where, and
// in the order, GitLab's API guard looks on a route with
// `route_setting :authentication, job_token_allowed: true`, as every
// environments route has (lib/api/environments.rb).
type v4Tokens struct {
	// Bearer is Doorkeeper's token (auth_finders.rb parsed_oauth_token;
	// config/initializers/doorkeeper.rb `access_token_methods
	// :from_access_token_param, :from_bearer_authorization,
	// :from_bearer_param`): the access_token parameter, then
	// Authorization: Bearer, then the bearer_token parameter. GitLab
	// tries it as a job token first (find_user_from_job_bearer_token).
	Bearer string
	// Private is the access token (auth_finders.rb
	// extract_personal_access_token): the private_token parameter, then
	// the PRIVATE-TOKEN header, then Bearer.
	Private string
	// Job is the job token (auth_finders.rb
	// find_user_from_job_token_query_params_or_header): the job_token
	// parameter, then the token parameter, then the JOB-TOKEN header.
	Job string
	// JobFromParam: Job came from a parameter, not the JOB-TOKEN header.
	JobFromParam bool
}

// findV4Tokens reads r's headers and, through param, its parameters (the
// query's alone, or the query's and the body's): api_guard.rb
// find_user_from_sources reads them all through Rails' params. A blank
// value counts as not sent (Ruby's presence).
func findV4Tokens(r *http.Request, param func(key string) string) v4Tokens {
	bearer := firstPresent(param("access_token"), bearerHeader(r), param("bearer_token"))
	t := v4Tokens{
		Bearer:  bearer,
		Private: firstPresent(param("private_token"), r.Header.Get("PRIVATE-TOKEN"), bearer),
		Job:     firstPresent(param("job_token"), param("token"), r.Header.Get(jobTokenHeader)),
	}
	t.JobFromParam = t.Job != "" && t.Job != r.Header.Get(jobTokenHeader)
	return t
}

// none says whether no token was found (Private includes Bearer).
func (t v4Tokens) none() bool { return t.Private == "" && t.Job == "" }

// bearerHeader is the token of an Authorization: Bearer header.
func bearerHeader(r *http.Request) string {
	if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

func firstPresent(vs ...string) string {
	for _, v := range vs {
		if strings.TrimSpace(v) != "" {
			return v
		}
	}
	return ""
}
