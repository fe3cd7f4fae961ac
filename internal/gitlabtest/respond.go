package gitlabtest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// request is one API call being answered, under the server lock.
type request struct {
	s    *Server
	w    http.ResponseWriter
	r    *http.Request
	vars map[string]string
	p    *params
	user *User
	tok  *tokenRecord
}

// timeLayout is how GitLab's API renders timestamps.
const timeLayout = "2006-01-02T15:04:05.000Z"

func apiTime(t time.Time) string { return t.UTC().Format(timeLayout) }

func apiTimePtr(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := apiTime(*t)
	return &s
}

func nullIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"message":"500 Internal Server Error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func (rq *request) json(status int, v any) { writeJSON(rq.w, status, v) }

// message answers {"message": msg}, GitLab's render_api_error! shape.
func (rq *request) message(status int, msg any) {
	rq.json(status, map[string]any{"message": msg})
}

// grapeError answers a Grape parameter error: 400 {"error": "..."}.
func (rq *request) grapeError(msg string) {
	rq.json(http.StatusBadRequest, map[string]string{"error": msg})
}

// notFound is not_found!(what): "404 <what> Not Found".
func (rq *request) notFound(what string) {
	rq.message(http.StatusNotFound, "404 "+what+" Not Found")
}

// recordNotFound is what an ActiveRecord find miss gives in the API.
func (rq *request) recordNotFound() { rq.message(http.StatusNotFound, "404 Not found") }

func (rq *request) forbidden() { rq.message(http.StatusForbidden, "403 Forbidden") }

// badRequest is bad_request!(reason).
func (rq *request) badRequest(reason string) {
	rq.message(http.StatusBadRequest, "400 Bad request - "+reason)
}

func (rq *request) noContent() { rq.w.WriteHeader(http.StatusNoContent) }

// pathInt reads an Integer path parameter; Grape rejects others with
// "<name> is invalid".
func (rq *request) pathInt(name string) (int64, bool) {
	n, err := strconv.ParseInt(rq.vars[name], 10, 64)
	if err != nil {
		rq.grapeError(name + " is invalid")
		return 0, false
	}
	return n, true
}

// fieldErrors is an ActiveRecord errors hash, keeping the order in which
// the model's validations ran (Go maps would sort the keys).
type fieldErrors struct {
	keys []string
	msgs map[string][]string
}

func (e *fieldErrors) add(field, msg string) {
	if e.msgs == nil {
		e.msgs = map[string][]string{}
	}
	if _, ok := e.msgs[field]; !ok {
		e.keys = append(e.keys, field)
	}
	e.msgs[field] = append(e.msgs[field], msg)
}

func (e *fieldErrors) empty() bool { return len(e.keys) == 0 }

func (e fieldErrors) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range e.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		vb, _ := json.Marshal(e.msgs[k])
		b.Write(kb)
		b.WriteByte(':')
		b.Write(vb)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// rubyInspect renders the errors the way Ruby's Hash#inspect does, for the
// messages GitLab builds by string interpolation ("Note {:note=>[...]}").
func (e fieldErrors) rubyInspect() string {
	var parts []string
	for _, k := range e.keys {
		var msgs []string
		for _, m := range e.msgs[k] {
			q, _ := json.Marshal(m)
			msgs = append(msgs, string(q))
		}
		parts = append(parts, ":"+k+"=>["+strings.Join(msgs, ", ")+"]")
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// validationError is render_validation_error!: 400 {"message": {field: [msgs]}}.
func (rq *request) validationError(e fieldErrors) { rq.message(http.StatusBadRequest, e) }
