package envapi_test

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	gitlab "gitlab.com/gitlab-org/api/client-go/v2"

	"github.com/glenv/glenv/internal/slug"
	"github.com/glenv/glenv/internal/store/storetest"
)

// step is one call of the contract and GitLab's answer to it. Steps run in
// order on every target, each starting from the state the previous left.
type step struct {
	name   string
	call   func(tg *target) error // the error is the answer; the recorder keeps it
	status int
	body   string            // the exact answer, when the rule fixes it
	header map[string]string // pagination headers that must be present
	check  func(t *testing.T, got any)
	absent []string // keys the answer must not have
}

const nameRule = `can contain only letters, digits, '-', '_', '/', '$', '{', '}', '.', and spaces, but it cannot start or end with '/'`

func ptr[T any](v T) *T { return &v }

func list(opt gitlab.ListEnvironmentsOptions) func(*target) error {
	return func(tg *target) error {
		_, _, err := tg.c.Environments.ListEnvironments(appPath, &opt)
		return err
	}
}

func listQuery(q url.Values) func(*target) error {
	return func(tg *target) error { return tg.raw(http.MethodGet, "projects/42/environments", q, nil) }
}

// create makes an environment with an external_url: glenv shows its own URL
// where an environment has none, GitLab shows null, and the contract
// compares whole answers.
func create(name string, tier string) func(*target) error {
	return func(tg *target) error {
		opt := &gitlab.CreateEnvironmentOptions{Name: ptr(name), ExternalURL: ptr("https://" + slug.Environment(name) + ".example.com")}
		if tier != "" {
			opt.Tier = ptr(tier)
		}
		_, _, err := tg.c.Environments.CreateEnvironment(appID, opt)
		return err
	}
}

func createWith(opt gitlab.CreateEnvironmentOptions) func(*target) error {
	return func(tg *target) error {
		_, _, err := tg.c.Environments.CreateEnvironment(appID, &opt)
		return err
	}
}

func get(name string) func(*target) error {
	return func(tg *target) error {
		_, _, err := tg.c.Environments.GetEnvironment(appID, tg.id(name))
		return err
	}
}

func edit(name string, opt gitlab.EditEnvironmentOptions) func(*target) error {
	return func(tg *target) error {
		_, _, err := tg.c.Environments.EditEnvironment(appID, tg.id(name), &opt)
		return err
	}
}

func stop(name string, force bool) func(*target) error {
	return func(tg *target) error {
		_, _, err := tg.c.Environments.StopEnvironment(appID, tg.id(name), &gitlab.StopEnvironmentOptions{Force: ptr(force)})
		return err
	}
}

func del(name string) func(*target) error {
	return func(tg *target) error {
		_, err := tg.c.Environments.DeleteEnvironment(appID, tg.id(name))
		return err
	}
}

func stopStale(before string) func(*target) error {
	return func(tg *target) error {
		q := url.Values{}
		if before != "" {
			q.Set("before", before)
		}
		return tg.raw(http.MethodPost, "projects/42/environments/stop_stale", q, nil)
	}
}

func reviewApps(q url.Values) func(*target) error {
	return func(tg *target) error {
		return tg.raw(http.MethodDelete, "projects/42/environments/review_apps", q, nil)
	}
}

func daysAgo(n int) string {
	return time.Now().Add(-time.Duration(n) * 24 * time.Hour).UTC().Format(time.RFC3339)
}

func field(got any, key string) any {
	m, _ := got.(map[string]any)
	return m[key]
}

func names(got any) []string {
	out := []string{}
	items, _ := got.([]any)
	for _, e := range items {
		out = append(out, fmt.Sprint(field(e, "name")))
	}
	return out
}

func fields(want map[string]any) func(t *testing.T, got any) {
	return func(t *testing.T, got any) {
		t.Helper()
		for k, v := range want {
			if g := field(got, k); jsonText(g) != jsonText(v) {
				t.Errorf("%s = %s, want %s", k, jsonText(g), jsonText(v))
			}
		}
	}
}

func listed(want ...string) func(t *testing.T, got any) {
	return func(t *testing.T, got any) {
		t.Helper()
		if g := names(got); !slices.Equal(g, want) {
			t.Errorf("listed %q, want %q", g, want)
		}
	}
}

// The environments the contract creates, in order, and how GitLab guesses
// their tiers.
var created = []string{"review/feature-1", "production", "preview", "qa", "model", "main", "review/feature-2"}

func contractSteps() []step {
	const (
		unauthorized   = `{"message":"401 Unauthorized"}`
		noProject      = `{"message":"404 Project Not Found"}`
		noEnvironment  = `{"message":"404 Not found"}`
		forbidden      = `{"message":"403 Forbidden"}`
		nothingToClean = `{"message":{"scheduled_entries":[],"unprocessable_entries":[],"message":"No environments found for scheduled deletion. Either your query did not match any environments (default parameters match environments that are 30 days or older), or you have insufficient permissions to delete matching environments."}}`
	)
	return []step{
		// Authentication and projects.
		{name: "a request without a token is 401", status: 401, body: unauthorized, call: func(tg *target) error {
			_, _, err := newClient(tg, gitlab.NewClient, "").Environments.ListEnvironments(appID, nil)
			return err
		}},
		{name: "an unknown token is 401", status: 401, body: unauthorized, call: func(tg *target) error {
			_, _, err := newClient(tg, gitlab.NewClient, "glpat-unknown").Environments.ListEnvironments(appID, nil)
			return err
		}},
		{name: "the token is accepted as Authorization: Bearer", status: 200, body: `[]`, call: func(tg *target) error {
			_, _, err := newClient(tg, gitlab.NewOAuthClient, tg.token).Environments.ListEnvironments(appID, nil)
			return err
		}},
		{name: "an unknown project id is 404 Project Not Found", status: 404, body: noProject, call: func(tg *target) error {
			_, _, err := tg.c.Environments.ListEnvironments(999, nil)
			return err
		}},
		{name: "an unknown project path is 404 Project Not Found", status: 404, body: noProject, call: func(tg *target) error {
			_, _, err := tg.c.Environments.ListEnvironments("group/nope", nil)
			return err
		}},
		{name: "the project is found by its URL-encoded path", status: 200, body: `[]`, call: list(gitlab.ListEnvironmentsOptions{})},

		// Create: GitLab's parameter and model validations.
		{name: "create needs a name", status: 400, body: `{"error":"name is missing"}`, call: createWith(gitlab.CreateEnvironmentOptions{})},
		{name: "a name starting with / is refused", status: 400, body: `{"message":{"name":["` + nameRule + `"]}}`,
			call: create("/review", "")},
		{name: "a name ending with / is refused", status: 400, body: `{"message":{"name":["` + nameRule + `"]}}`,
			call: create("review/", "")},
		{name: "a name with a character outside GitLab's set is refused", status: 400,
			body: `{"message":{"name":["` + nameRule + `"]}}`, call: create("feat:x", "")},
		{name: "an empty name is blank and malformed", status: 400,
			body: `{"message":{"name":["can't be blank","` + nameRule + `"]}}`, call: create("", "")},
		{name: "a name longer than 255 characters is refused", status: 400,
			body: `{"message":{"name":["is too long (maximum is 255 characters)"]}}`, call: create(strings.Repeat("a", 256), "")},
		{name: "sending a slug is refused", status: 400, body: `{"error":"slug is automatically generated and cannot be changed"}`,
			call: func(tg *target) error {
				return tg.raw(http.MethodPost, "projects/42/environments", nil, map[string]string{"name": "x", "slug": "x"})
			}},
		{name: "an unknown tier is refused", status: 400, body: `{"error":"tier does not have a valid value"}`, call: create("x", "prod")},
		{name: "an unsafe external_url scheme is refused", status: 400,
			body: `{"message":{"external_url":["javascript scheme is not allowed"]}}`,
			call: createWith(gitlab.CreateEnvironmentOptions{Name: ptr("x"), ExternalURL: ptr("javascript:alert(1)")})},
		{name: "a cluster agent cannot be attached", status: 400,
			body: `{"message":"400 Bad request - cluster agent doesn't exist or cannot be associated with this environment"}`,
			call: createWith(gitlab.CreateEnvironmentOptions{Name: ptr("x"), ClusterAgentID: ptr(int64(1))})},
		{name: "create answers 201 with the environment available", status: 201,
			call: createWith(gitlab.CreateEnvironmentOptions{Name: ptr("review/feature-1"),
				ExternalURL: ptr("https://review-feature-1.example.com"), Description: ptr("first")}),
			check: fields(map[string]any{"name": "review/feature-1", "slug": slug.Environment("review/feature-1"),
				"state": "available", "tier": "development", "external_url": "https://review-feature-1.example.com",
				"description": "first", "auto_stop_setting": "always", "auto_stop_at": nil, "last_deployment": nil}),
			absent: []string{"cluster_agent", "kubernetes_namespace", "flux_resource_path", "last_deployment"}},
		{name: "a name with pr(o)d is guessed production", status: 201, call: create("production", ""),
			check: fields(map[string]any{"tier": "production", "slug": "production"})},
		{name: "review anywhere in a name is guessed development before other rules", status: 201, call: create("preview", ""),
			check: fields(map[string]any{"tier": "development"})},
		{name: "qa is guessed testing", status: 201, call: create("qa", ""), check: fields(map[string]any{"tier": "testing"})},
		{name: "model is guessed staging", status: 201, call: create("model", ""), check: fields(map[string]any{"tier": "staging"})},
		{name: "a name matching no rule is guessed other", status: 201, call: create("main", ""), check: fields(map[string]any{"tier": "other"})},
		{name: "an explicit tier wins over the guess", status: 201, call: create("review/feature-2", "staging"),
			check: fields(map[string]any{"tier": "staging"})},
		{name: "a duplicate name is refused, and so is its slug", status: 400,
			body: `{"message":{"name":["has already been taken"],"slug":["has already been taken"]}}`, call: create("review/feature-1", "")},

		// List: filters and pagination.
		{name: "list shows every environment by id", status: 200, call: list(gitlab.ListEnvironmentsOptions{}),
			header: map[string]string{"X-Page": "1", "X-Per-Page": "20", "X-Total": "7", "X-Total-Pages": "1", "X-Next-Page": "", "X-Prev-Page": ""},
			check:  listed(created...)},
		{name: "name matches exactly", status: 200, call: list(gitlab.ListEnvironmentsOptions{Name: ptr("review/feature-1")}),
			check: listed("review/feature-1")},
		{name: "a name that is only a prefix matches nothing", status: 200, body: `[]`, call: list(gitlab.ListEnvironmentsOptions{Name: ptr("review")})},
		{name: "search matches a name prefix, ignoring case", status: 200, call: list(gitlab.ListEnvironmentsOptions{Search: ptr("REVIEW/")}),
			check: listed("review/feature-1", "review/feature-2")},
		{name: "search matches a name within its folder", status: 200, call: list(gitlab.ListEnvironmentsOptions{Search: ptr("Feature")}),
			check: listed("review/feature-1", "review/feature-2")},
		{name: "search does not match inside a name", status: 200, body: `[]`, call: list(gitlab.ListEnvironmentsOptions{Search: ptr("eature")})},
		{name: "search treats _ literally", status: 200, body: `[]`, call: list(gitlab.ListEnvironmentsOptions{Search: ptr("review_")})},
		{name: "search treats % literally", status: 200, body: `[]`, call: list(gitlab.ListEnvironmentsOptions{Search: ptr("rev%")})},
		{name: "search needs 3 characters", status: 400, body: `{"message":"400 Bad request - Search query is less than 3 characters"}`,
			call: list(gitlab.ListEnvironmentsOptions{Search: ptr("re")})},
		{name: "name and search cannot be used together", status: 400, body: `{"error":"name, search cannot be used together"}`,
			call: list(gitlab.ListEnvironmentsOptions{Name: ptr("qa"), Search: ptr("qa-")})},
		{name: "an unknown state is refused", status: 400, body: `{"error":"states does not have a valid value"}`,
			call: list(gitlab.ListEnvironmentsOptions{States: ptr("running")})},
		{name: "states=available lists the available ones", status: 200, call: list(gitlab.ListEnvironmentsOptions{States: ptr("available")}),
			check: listed(created...)},
		{name: "states=stopped lists none yet", status: 200, body: `[]`, call: list(gitlab.ListEnvironmentsOptions{States: ptr("stopped")})},
		{name: "per_page=1000 is capped at 100", status: 200, header: map[string]string{"X-Per-Page": "100", "X-Total-Pages": "1"},
			call: list(gitlab.ListEnvironmentsOptions{ListOptions: gitlab.ListOptions{PerPage: 1000}})},
		{name: "per_page=0 is refused", status: 400, body: `{"error":"per_page has a value not allowed"}`,
			call: listQuery(url.Values{"per_page": {"0"}})},
		{name: "per_page below 0 falls back to 20", status: 200, header: map[string]string{"X-Per-Page": "20"},
			call: listQuery(url.Values{"per_page": {"-1"}})},
		{name: "page and per_page cut one page with links to the others", status: 200,
			call: list(gitlab.ListEnvironmentsOptions{ListOptions: gitlab.ListOptions{Page: 2, PerPage: 2}}),
			header: map[string]string{"X-Page": "2", "X-Per-Page": "2", "X-Next-Page": "3", "X-Prev-Page": "1", "X-Total": "7", "X-Total-Pages": "4",
				"Link": `</api/v4/projects/group%2Fapp/environments?id=group%2Fapp&page=1&per_page=2>; rel="prev", ` +
					`</api/v4/projects/group%2Fapp/environments?id=group%2Fapp&page=3&per_page=2>; rel="next", ` +
					`</api/v4/projects/group%2Fapp/environments?id=group%2Fapp&page=1&per_page=2>; rel="first", ` +
					`</api/v4/projects/group%2Fapp/environments?id=group%2Fapp&page=4&per_page=2>; rel="last"`},
			check: listed("preview", "qa")},
		{name: "a page past the end is empty", status: 200, body: `[]`, header: map[string]string{"X-Next-Page": "", "X-Prev-Page": ""},
			call: list(gitlab.ListEnvironmentsOptions{ListOptions: gitlab.ListOptions{Page: 99}})},
		{name: "a page that is not a number is refused", status: 400, body: `{"error":"page is invalid"}`,
			call: listQuery(url.Values{"page": {"abc"}})},

		// Get.
		{name: "get shows the environment with last_deployment and without the project", status: 200, call: get("review/feature-1"),
			check: func(t *testing.T, got any) {
				fields(map[string]any{"name": "review/feature-1", "last_deployment": nil, "project": nil})(t, got)
				if _, ok := got.(map[string]any)["last_deployment"]; !ok {
					t.Error("last_deployment is missing; GET one must show it (null)")
				}
			}},
		{name: "an unknown environment id is 404", status: 404, body: noEnvironment, call: get("never-created")},
		{name: "another project's environment id is 404", status: 404, body: noEnvironment, call: get("elsewhere")},
		{name: "an environment id that is not a number is refused", status: 400, body: `{"error":"environment_id is invalid"}`,
			call: func(tg *target) error { return tg.raw(http.MethodGet, "projects/42/environments/abc", nil, nil) }},

		// Update.
		{name: "update changes external_url, tier and description", status: 200,
			call: edit("review/feature-1", gitlab.EditEnvironmentOptions{ExternalURL: ptr("https://new.example.com"),
				Tier: ptr("testing"), Description: ptr("second")}),
			check: fields(map[string]any{"external_url": "https://new.example.com", "tier": "testing", "description": "second"})},
		{name: "update never renames", status: 200, call: edit("review/feature-1", gitlab.EditEnvironmentOptions{Name: ptr("renamed")}),
			check: fields(map[string]any{"name": "review/feature-1", "slug": slug.Environment("review/feature-1")})},
		{name: "update refuses a slug", status: 400, body: `{"error":"slug is automatically generated and cannot be changed"}`,
			call: func(tg *target) error {
				return tg.raw(http.MethodPut, fmt.Sprintf("projects/42/environments/%d", tg.id("review/feature-1")), nil, map[string]string{"slug": "x"})
			}},
		{name: "update refuses an unknown tier", status: 400, body: `{"error":"tier does not have a valid value"}`,
			call: edit("review/feature-1", gitlab.EditEnvironmentOptions{Tier: ptr("live")})},
		{name: "update refuses an unsafe external_url", status: 400, body: `{"message":{"external_url":["javascript scheme is not allowed"]}}`,
			call: edit("review/feature-1", gitlab.EditEnvironmentOptions{ExternalURL: ptr("javascript:alert(1)")})},
		{name: "update of another project's environment is 404", status: 404, body: noEnvironment,
			call: edit("elsewhere", gitlab.EditEnvironmentOptions{Tier: ptr("other")})},

		// Stop and delete.
		{name: "delete refuses an environment that is not stopped", status: 403, body: forbidden, call: del("qa")},
		{name: "stop answers 200 with the environment stopped", status: 200, call: stop("qa", false),
			check: fields(map[string]any{"name": "qa", "state": "stopped"})},
		{name: "stopping a stopped environment is StopService's 400", status: 400,
			body: `{"message":"400 Bad request - Attempted to stop the environment but failed to change the status"}`,
			call: stop("qa", true)},
		{name: "states=stopped lists the stopped environment", status: 200, call: list(gitlab.ListEnvironmentsOptions{States: ptr("stopped")}),
			check: listed("qa")},
		{name: "stop of another project's environment is 404", status: 404, body: noEnvironment, call: stop("elsewhere", false)},
		{name: "delete removes a stopped environment", status: 204, call: del("qa")},
		{name: "a deleted environment is gone", status: 404, body: noEnvironment, call: get("qa")},
		{name: "deleting it again is 404", status: 404, body: noEnvironment, call: del("qa")},
		{name: "a deleted environment's name can be used again", status: 201, call: create("qa", ""),
			check: fields(map[string]any{"name": "qa", "state": "available", "tier": "testing"})},

		// stop_stale.
		{name: "stop_stale needs before", status: 400, body: `{"error":"before is missing"}`, call: stopStale("")},
		{name: "stop_stale refuses a before that is not a date", status: 400, body: `{"error":"before is invalid"}`, call: stopStale("yesterday")},
		{name: "stop_stale refuses before later than a week ago", status: 400, body: `{"message":"400 Bad request - Invalid Date"}`,
			call: stopStale(daysAgo(1))},
		{name: "stop_stale refuses before earlier than 10 years ago", status: 400, body: `{"message":"400 Bad request - Invalid Date"}`,
			call: stopStale(daysAgo(11 * 366))},
		{name: "stop_stale answers 200", status: 200, body: `{"message":"Successfully requested stop for all stale environments"}`,
			call: stopStale(daysAgo(8))},
		{name: "stop_stale leaves environments updated since alone", status: 200, body: `[]`,
			call: list(gitlab.ListEnvironmentsOptions{States: ptr("stopped")})},

		// Review apps.
		{name: "review_apps refuses limit 0", status: 400, body: `{"error":"limit does not have a valid value"}`,
			call: reviewApps(url.Values{"limit": {"0"}})},
		{name: "review_apps refuses a before that is not a date", status: 400, body: `{"error":"before is invalid"}`,
			call: reviewApps(url.Values{"before": {"soon"}})},
		{name: "review_apps with nothing stopped 30 days ago is 400", status: 400, body: nothingToClean, call: reviewApps(nil)},
		{name: "a review app is stopped", status: 200, call: stop("review/feature-2", false), check: fields(map[string]any{"state": "stopped"})},
		{name: "an environment outside the review folder is stopped", status: 200, call: stop("preview", false),
			check: fields(map[string]any{"state": "stopped"})},
		{name: "review_apps is a dry run by default: it lists stopped review apps only", status: 200,
			call: reviewApps(url.Values{"before": {time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}}),
			check: func(t *testing.T, got any) {
				listed("review/feature-2")(t, field(got, "scheduled_entries"))
				listed()(t, field(got, "unprocessable_entries"))
			}},
		{name: "the dry run deleted nothing", status: 200, call: list(gitlab.ListEnvironmentsOptions{States: ptr("stopped")}),
			check: listed("preview", "review/feature-2")},
		{name: "review_apps with dry_run=false schedules them", status: 200,
			call:  reviewApps(url.Values{"dry_run": {"false"}, "before": {time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}}),
			check: func(t *testing.T, got any) { listed("review/feature-2")(t, field(got, "scheduled_entries")) }},
		{name: "review_apps never schedules an environment twice", status: 400, body: nothingToClean,
			call: reviewApps(url.Values{"dry_run": {"false"}, "before": {time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}})},

		// Routing.
		{name: "an unknown route under the project is 404 Not Found", status: 404, body: `{"error":"404 Not Found"}`,
			call: func(tg *target) error { return tg.raw(http.MethodGet, "projects/42/environments/1/unknown", nil, nil) }},
		{name: "a known route with another method falls to the catch-all 404", status: 404, body: `{"error":"404 Not Found"}`,
			call: func(tg *target) error { return tg.raw(http.MethodPatch, "projects/42/environments", nil, nil) }},
	}
}

// TestContract drives GitLab's Environments API through client-go against
// glenv (on each database) and the GitLab double in lockstep: every answer
// must meet the step's rule, and glenv's answer must equal the double's once
// ids and timestamps are set aside.
func TestContract(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			targets := []*target{glenvTarget(t, b), doubleTarget(t)}
			for _, tg := range targets {
				opt := &gitlab.CreateEnvironmentOptions{Name: ptr("elsewhere"), ExternalURL: ptr("https://elsewhere.example.com")}
				e, _, err := tg.c.Environments.CreateEnvironment(otherPath, opt)
				if err != nil {
					t.Fatalf("%s: seed the other project: %v", tg.name, err)
				}
				tg.ids["elsewhere"] = e.ID
			}
			for _, s := range contractSteps() {
				t.Run(s.name, func(t *testing.T) { runStep(t, s, targets) })
			}
		})
	}
}

func runStep(t *testing.T, s step, targets []*target) {
	var answers, headers []string
	for _, tg := range targets {
		_ = s.call(tg)
		status, h, body := tg.rec.last()
		got := decode(t, body)
		if status == http.StatusOK || status == http.StatusCreated {
			tg.learn(got)
		}
		if status != s.status {
			t.Errorf("%s: status %d, want %d; body %s", tg.name, status, s.status, body)
		}
		if s.body != "" {
			if want := jsonText(decode(t, []byte(s.body))); jsonText(got) != want {
				t.Errorf("%s: body\n %s\nwant\n %s", tg.name, body, want)
			}
		}
		ph := pageHeaders(h, tg.url)
		for k, v := range s.header {
			if ph[k] != v {
				t.Errorf("%s: header %s = %q, want %q", tg.name, k, ph[k], v)
			}
		}
		if s.check != nil {
			t.Run(tg.name, func(t *testing.T) { s.check(t, got) })
		}
		for _, k := range s.absent {
			if m, ok := got.(map[string]any); ok {
				if _, has := m[k]; has {
					t.Errorf("%s: key %s is present, GitLab leaves it out", tg.name, k)
				}
			}
		}
		answers = append(answers, jsonText(normalize(got)))
		headers = append(headers, jsonText(ph))
	}
	if answers[0] != answers[1] {
		t.Errorf("glenv and the double disagree:\nglenv  %s\ndouble %s", answers[0], answers[1])
	}
	if headers[0] != headers[1] {
		t.Errorf("pagination headers disagree:\nglenv  %s\ndouble %s", headers[0], headers[1])
	}
}
