package gitlabtest

import (
	"errors"
	"net/http"
	"testing"
	"time"

	gitlab "gitlab.com/gitlab-org/api/client-go/v2"
)

func asErrorResponse(err error, target **gitlab.ErrorResponse) bool { return errors.As(err, target) }

func TestAuthentication(t *testing.T) {
	f := newFixture(t)
	yesterday := time.Now().AddDate(0, 0, -1)
	tomorrow := time.Now().AddDate(0, 0, 1)
	expired := f.srv.AddToken(Token{UserID: f.dev.ID, Scopes: []string{"api"}, ExpiresAt: &yesterday})
	notYetExpired := f.srv.AddToken(Token{UserID: f.dev.ID, Scopes: []string{"api"}, ExpiresAt: &tomorrow})
	revoked := f.srv.AddToken(Token{UserID: f.dev.ID, Scopes: []string{"api"}, Revoked: true})
	readUser := f.srv.AddToken(Token{UserID: f.dev.ID, Scopes: []string{"read_user"}})
	oauth := f.srv.AddToken(Token{UserID: f.dev.ID, Scopes: []string{"api"}, OAuth: true})

	const scopeErr = `{"error":"insufficient_scope","error_description":"The request requires higher privileges than provided by the access token.","scope":"api read_api"}`
	tests := []struct {
		name, token, method, path string
		body                      any
		status                    int
		want                      string
	}{
		{"a missing token is 401 Unauthorized", "", "GET", "projects/1", nil, 401, `{"message":"401 Unauthorized"}`},
		{"an unknown token is 401 Unauthorized", "nope", "GET", "projects/1", nil, 401, `{"message":"401 Unauthorized"}`},
		{"an expired token is 401 invalid_token", expired, "GET", "projects/1", nil, 401,
			`{"error":"invalid_token","error_description":"Token is expired. You can either do re-authorization or token refresh."}`},
		{"a token expiring tomorrow still works", notYetExpired, "GET", "projects/1", nil, 200, ""},
		{"a revoked token is 401 invalid_token", revoked, "GET", "projects/1", nil, 401,
			`{"error":"invalid_token","error_description":"Token was revoked. You have to re-authorize from the user."}`},
		{"read_api may read a project", f.readAPITok, "GET", "projects/1", nil, 200, ""},
		{"read_api writing is 403 insufficient_scope", f.readAPITok, "POST", "projects/1/statuses/" + shaMain,
			map[string]any{"state": "pending"}, 403, scopeErr},
		{"read_api deleting is 403 insufficient_scope", f.readAPITok, "DELETE", "projects/1/hooks/1", nil, 403, scopeErr},
		{"read_user reading a project is 403 insufficient_scope", readUser, "GET", "projects/1", nil, 403, scopeErr},
		{"read_user may read the current user", readUser, "GET", "user", nil, 200, ""},
		{"an OAuth token is not a PRIVATE-TOKEN", oauth, "GET", "user", nil, 401, `{"message":"401 Unauthorized"}`},
		{"unknown routes are 404 before authentication", "", "GET", "nothing/here", nil, 404, `{"error":"404 Not Found"}`},
		{"a known path with another method falls to the catch-all 404", f.devTok, "PATCH", "projects/1", nil, 404, `{"error":"404 Not Found"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			expect(t, f.do(t, tt.token, tt.method, tt.path, tt.body), tt.status, tt.want)
		})
	}

	t.Run("an OAuth token works as a Bearer token but is no personal access token", func(t *testing.T) {
		c, err := gitlab.NewOAuthClient(oauth, gitlab.WithBaseURL(f.srv.URL), gitlab.WithoutRetries()) //nolint:staticcheck // a static OAuth token is what we need here
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.Users.CurrentUser(); err != nil {
			t.Fatalf("current user with bearer: %v", err)
		}
		_, _, err = c.PersonalAccessTokens.GetSinglePersonalAccessToken()
		var er *gitlab.ErrorResponse
		if !errors.As(err, &er) || er.StatusCode != 400 ||
			!jsonEqual(string(er.Body), `{"message":"400 Bad request - This endpoint requires token type to be a personal access token"}`) {
			t.Fatalf("got %v", err)
		}
	})

	t.Run("personal_access_tokens/self describes the token", func(t *testing.T) {
		c := f.client(t, notYetExpired)
		tok, _, err := c.PersonalAccessTokens.GetSinglePersonalAccessToken()
		if err != nil {
			t.Fatal(err)
		}
		if tok.UserID != f.dev.ID || !tok.Active || tok.Revoked || tok.Scopes[0] != "api" ||
			tok.ExpiresAt == nil || time.Time(*tok.ExpiresAt).Format(time.DateOnly) != tomorrow.Format(time.DateOnly) {
			t.Fatalf("token = %+v", tok)
		}
	})

	t.Run("the current user is the token's owner", func(t *testing.T) {
		u, _, err := f.client(t, f.adminTok).Users.CurrentUser()
		if err != nil {
			t.Fatal(err)
		}
		if u.ID != f.admin.ID || u.Username != "root" || !u.IsAdmin || u.State != "active" || u.Bot {
			t.Fatalf("user = %+v", u)
		}
	})

	t.Run("an expired token is rejected by client-go with 401", func(t *testing.T) {
		_, _, err := f.client(t, expired).Projects.GetProject("group/app", nil)
		if statusOf(t, err) != http.StatusUnauthorized {
			t.Fatalf("err = %v", err)
		}
	})
}
