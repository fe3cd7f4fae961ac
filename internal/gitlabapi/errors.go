package gitlabapi

import (
	"encoding/json"
	"io"
	"net/http"
	"time"
)

// The bodies below are GitLab's own (lib/api/helpers.rb, Grape, and the
// ActiveRecord rescue in lib/api/api.rb), so that GitLab clients parse them.

// WriteJSON answers status with v as JSON; a value that does not marshal
// becomes GitLab's 500.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"message":"500 Internal Server Error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// Message is render_api_error!: {"message": msg}. msg is usually a string,
// sometimes an object (FieldErrors, a result with its entries).
func Message(w http.ResponseWriter, status int, msg any) {
	WriteJSON(w, status, map[string]any{"message": msg})
}

// GrapeError is a Grape parameter error: 400 {"error": msg}.
func GrapeError(w http.ResponseWriter, msg string) {
	WriteJSON(w, http.StatusBadRequest, map[string]string{"error": msg})
}

// Malformed is GitLab's answer to a request with a NUL byte, invalid UTF-8
// or a bad escape in its path or parameters, or a body that does not
// parse, given before the API sees it: 400 text/plain "Bad Request"
// (lib/gitlab/middleware/handle_malformed_strings.rb).
func Malformed(w http.ResponseWriter) {
	if b, ok := w.(*buffered); ok {
		b.bypass()
	}
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusBadRequest)
	io.WriteString(w, "Bad Request")
}

// RouteNotFound is Grape's answer to a path no route has: 404 {"error": …}.
func RouteNotFound(w http.ResponseWriter) {
	WriteJSON(w, http.StatusNotFound, map[string]string{"error": "404 Not Found"})
}

// Unauthorized is unauthorized!: a missing or unknown token.
func Unauthorized(w http.ResponseWriter) { Message(w, http.StatusUnauthorized, "401 Unauthorized") }

// Forbidden is forbidden!.
func Forbidden(w http.ResponseWriter) { Message(w, http.StatusForbidden, "403 Forbidden") }

// ForbiddenReason is forbidden!(reason): "403 Forbidden - <reason>"
// (lib/api/helpers.rb, render_api_error_with_reason!).
func ForbiddenReason(w http.ResponseWriter, reason string) {
	Message(w, http.StatusForbidden, "403 Forbidden - "+reason)
}

// PreconditionFailed is check_unmodified_since!'s answer (lib/api/helpers.rb:35-45).
func PreconditionFailed(w http.ResponseWriter) {
	Message(w, http.StatusPreconditionFailed, "412 Precondition Failed")
}

// NotFound is not_found!(what): "404 <what> Not Found".
func NotFound(w http.ResponseWriter, what string) {
	Message(w, http.StatusNotFound, "404 "+what+" Not Found")
}

// RecordNotFound is what an ActiveRecord find miss gives in the API
// (`user_project.environments.find`, lib/api/environments.rb:124, 195, 220,
// 278; spec/requests/api/environments_spec.rb expects '404 Not found').
func RecordNotFound(w http.ResponseWriter) { Message(w, http.StatusNotFound, "404 Not found") }

// BadRequest is bad_request!(reason).
func BadRequest(w http.ResponseWriter, reason string) {
	Message(w, http.StatusBadRequest, "400 Bad request - "+reason)
}

// ValidationError is render_validation_error!: 400 {"message": {field: [msgs]}}.
func ValidationError(w http.ResponseWriter, e FieldErrors) { Message(w, http.StatusBadRequest, e) }

// RequestTooLarge answers a body over the server's limit.
func RequestTooLarge(w http.ResponseWriter) {
	Message(w, http.StatusRequestEntityTooLarge, "413 Request Entity Too Large")
}

// InternalError is GitLab's 500.
func InternalError(w http.ResponseWriter) {
	Message(w, http.StatusInternalServerError, "500 Internal Server Error")
}

// NoContent is a 204 without a body.
func NoContent(w http.ResponseWriter) { w.WriteHeader(http.StatusNoContent) }

// ModifiedSince is check_unmodified_since!'s test (lib/api/helpers.rb:35-45):
// an If-Unmodified-Since that parses (Ruby's Time.parse; one that does not
// is ignored) and is older than the resource's last change.
func ModifiedSince(h http.Header, updated time.Time) bool {
	since, ok := ParseDateTime(h.Get("If-Unmodified-Since"))
	return ok && updated.After(since)
}
