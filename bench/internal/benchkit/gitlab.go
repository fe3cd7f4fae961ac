package benchkit

import (
	"net"
	"net/http"

	"github.com/glenv/glenv/internal/gitlabtest"
	"github.com/glenv/glenv/internal/runtime"
	"github.com/glenv/glenv/internal/store"
)

// GitLab is the GitLab double as the bench programs that deploy need it:
// one project, group/app, a Maintainer's token with the api scope, and its
// git served over smart HTTP at GitURL.
type GitLab struct {
	*gitlabtest.Server
	Project gitlabtest.Project
	Token   string
	// GitURL is the base URL of the git listener (an integration's BaseURL).
	GitURL string
	git    *http.Server
}

// GitLab starts the double; Close stops it and removes its repositories.
func (t *TB) GitLab() *GitLab {
	gl := &GitLab{Server: gitlabtest.NewServer()}
	bot := gl.AddUser(gitlabtest.User{Username: "bot"})
	gl.Project = gl.AddProject(gitlabtest.Project{PathWithNamespace: "group/app", Members: map[int64]int{bot.ID: 40}})
	gl.Token = gl.AddToken(gitlabtest.Token{UserID: bot.ID, Scopes: []string{"api"}})
	gl.git = &http.Server{Handler: gl.GitHandler()}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	t.Must(err)
	go gl.git.Serve(l)
	gl.GitURL = "http://" + l.Addr().String()
	return gl
}

// Close stops the git listener and the double and removes its repositories.
func (g *GitLab) Close() {
	g.git.Close()
	g.Server.Close()
	g.RemoveRepos()
}

// Request is the runtime's request to deploy sha of the project to env,
// with the token and no log (set Log to see one).
func (g *GitLab) Request(env store.Environment, sha string) runtime.DeployRequest {
	in := store.Integration{Name: "app", BaseURL: g.GitURL, ProjectPath: g.Project.PathWithNamespace, ProjectID: g.Project.ID}
	return runtime.DeployRequest{Integration: in, Token: g.Token, Env: env, SHA: sha, Log: func(string) {}}
}
