package gitlabtest

import (
	"net/http"

	"github.com/glenv/glenv/internal/gitlabapi"
)

// request is one API call being answered, under the server lock.
type request struct {
	s    *Server
	w    http.ResponseWriter
	r    *http.Request
	vars map[string]string
	p    *gitlabapi.Params
	user *User
	tok  *tokenRecord
}

func (rq *request) pathInt(name string) (int64, bool) { return gitlabapi.PathInt(rq.w, rq.vars, name) }
