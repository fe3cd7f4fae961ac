package gitlabtest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	gitlab "gitlab.com/gitlab-org/api/client-go/v2"
)

const (
	shaMain    = "1111111111111111111111111111111111111111"
	shaFeature = "2222222222222222222222222222222222222222"
	shaTag     = "3333333333333333333333333333333333333333"
	shaOrphan  = "4444444444444444444444444444444444444444"
)

// fixture is a double with one private project "group/app" and the people
// the rules are about.
type fixture struct {
	srv                                        *Server
	admin, maintainer, dev, reporter, outsider User
	project                                    Project
	adminTok, maintainerTok, devTok            string
	readAPITok, reporterTok, outsiderTok       string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	srv := New(t)
	f := &fixture{srv: srv}
	f.admin = srv.AddUser(User{Username: "root", Name: "Administrator", IsAdmin: true})
	f.maintainer = srv.AddUser(User{Username: "maya", Name: "Maya Maintainer"})
	f.dev = srv.AddUser(User{Username: "dev", Name: "Dana Developer"})
	f.reporter = srv.AddUser(User{Username: "rep", Name: "Remy Reporter"})
	f.outsider = srv.AddUser(User{Username: "out", Name: "Olga Outsider"})
	f.project = srv.AddProject(Project{
		PathWithNamespace: "group/app",
		Members:           map[int64]int{f.maintainer.ID: 40, f.dev.ID: 30, f.reporter.ID: 20},
	})
	srv.SetBranch(f.project.ID, "main", shaMain)
	srv.SetBranch(f.project.ID, "feature/login", shaFeature)
	srv.SetTag(f.project.ID, "v1.0.0", shaTag)

	f.adminTok = srv.AddToken(Token{UserID: f.admin.ID, Name: "admin", Scopes: []string{"api"}})
	f.maintainerTok = srv.AddToken(Token{UserID: f.maintainer.ID, Name: "maint", Scopes: []string{"api"}})
	f.devTok = srv.AddToken(Token{UserID: f.dev.ID, Name: "glenv", Scopes: []string{"api"}})
	f.readAPITok = srv.AddToken(Token{UserID: f.dev.ID, Name: "ro", Scopes: []string{"read_api"}})
	f.reporterTok = srv.AddToken(Token{UserID: f.reporter.ID, Name: "rep", Scopes: []string{"api"}})
	f.outsiderTok = srv.AddToken(Token{UserID: f.outsider.ID, Name: "out", Scopes: []string{"api"}})
	return f
}

// client builds a client the way production does, without retries.
func (f *fixture) client(t *testing.T, token string) *gitlab.Client {
	t.Helper()
	c, err := gitlab.NewClient(token, gitlab.WithBaseURL(f.srv.URL), gitlab.WithoutRetries())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type response struct {
	status int
	header http.Header
	body   string
}

// do sends a raw request to /api/v4/<path> with a PRIVATE-TOKEN and an
// optional JSON body, for checking exact bodies and headers.
func (f *fixture) do(t *testing.T, token, method, path string, body any) response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, f.srv.URL+"/api/v4/"+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("PRIVATE-TOKEN", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: strings.TrimSpace(string(b))}
}

// expect checks a raw response's status and, when want is not empty, its
// exact JSON body.
func expect(t *testing.T, got response, status int, want string) {
	t.Helper()
	if got.status != status {
		t.Fatalf("status = %d, want %d (body %s)", got.status, status, got.body)
	}
	if want == "" {
		return
	}
	if !jsonEqual(got.body, want) {
		t.Fatalf("body = %s\nwant   %s", got.body, want)
	}
}

func jsonEqual(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return a == b
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return bytes.Equal(xb, yb)
}

// fields decodes a JSON object response.
func fields(t *testing.T, r response) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.body), &m); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
	return m
}

// statusOf extracts the HTTP status from a client-go error.
func statusOf(t *testing.T, err error) int {
	t.Helper()
	var er *gitlab.ErrorResponse
	if err == nil {
		return 0
	}
	if !asErrorResponse(err, &er) {
		t.Fatalf("not an ErrorResponse: %v", err)
	}
	return er.StatusCode
}
