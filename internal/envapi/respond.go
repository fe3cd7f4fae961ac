package envapi

import (
	"bytes"
	"encoding/json"
	"net/http"
)

// The error bodies below are GitLab's own (lib/api/helpers.rb, Grape and the
// ActiveRecord rescue in lib/api/api.rb), so that GitLab clients parse them.

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"message":"500 Internal Server Error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// message is render_api_error!: {"message": msg}.
func message(w http.ResponseWriter, status int, msg any) {
	writeJSON(w, status, map[string]any{"message": msg})
}

// grapeError is a Grape parameter error: 400 {"error": "..."}.
func grapeError(w http.ResponseWriter, msg string) {
	writeJSON(w, http.StatusBadRequest, map[string]string{"error": msg})
}

func unauthorized(w http.ResponseWriter) { message(w, http.StatusUnauthorized, "401 Unauthorized") }

func forbidden(w http.ResponseWriter) { message(w, http.StatusForbidden, "403 Forbidden") }

func projectNotFound(w http.ResponseWriter) { message(w, http.StatusNotFound, "404 Project Not Found") }

// environmentNotFound answers an unknown environment id, or one of another
// project. glenv's contract (issue 6) names this body; GitLab's own rescue of
// environments.find says "404 Not found", which every client treats alike
// (client-go's ErrNotFound, python-gitlab's GitlabGetError).
func environmentNotFound(w http.ResponseWriter) {
	message(w, http.StatusNotFound, "404 Environment Not Found")
}

// badRequest is bad_request!(reason).
func badRequest(w http.ResponseWriter, reason string) {
	message(w, http.StatusBadRequest, "400 Bad request - "+reason)
}

func internalError(w http.ResponseWriter) {
	message(w, http.StatusInternalServerError, "500 Internal Server Error")
}

// fieldErrors is an ActiveRecord errors hash in the order the validations
// ran (a Go map would sort the keys).
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

// validationError is render_validation_error!: 400 {"message": {field: [msgs]}}.
func validationError(w http.ResponseWriter, e fieldErrors) { message(w, http.StatusBadRequest, e) }
