// Package gitlabapi holds the GitLab REST v4 conventions that both glenv's
// GitLab-compatible API (internal/envapi) and the GitLab double
// (internal/gitlabtest) speak, so that the two cannot drift apart on them:
//
//   - request parameters merged from the query, a form and a JSON body,
//     declared and checked with Grape's messages (params.go, grape.go);
//   - GitLab's error bodies: {"message": …} from render_api_error! and its
//     401/403/404/400 helpers, {"error": …} from Grape, and ActiveRecord's
//     ordered field errors (errors.go, fielderrors.go);
//   - offset pagination headers: X-Page, X-Per-Page, X-Next-Page,
//     X-Prev-Page, X-Total, X-Total-Pages and Link with GitLab's query, the
//     totals left out beyond 10,000 (paginate.go);
//   - Grape-style route matching on the escaped path, with its 404 and 405
//     (routes.go);
//   - the Environment model's field rules: the name rule, the tier guess
//     and the validations (environment.go); its state machine as the stop
//     endpoint drives it (environment_state.go); the Environments API's
//     declared parameters and fixed answers (environment_params.go);
//   - the JSON entities both answer with, and GitLab's time format
//     (entity.go, time.go); dates read as Ruby's DateTime.parse reads
//     them (datetime.go).
//
// It is pure protocol: it must not store anything, reach any service, or
// decide anything about environments, projects or users. What exists, who
// may do what and what a request changes stay with the callers; where the
// two callers answer differently, the difference is a parameter here, not a
// branch on who is calling.
package gitlabapi
