package gitlabapi

import (
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestErrorBodies(t *testing.T) {
	var errs FieldErrors
	errs.Add("name", "can't be blank")
	tests := []struct {
		name   string
		answer func(w http.ResponseWriter)
		status int
		body   string
		allow  string
	}{
		{"unauthorized", Unauthorized, 401, `{"message":"401 Unauthorized"}`, ""},
		{"forbidden", Forbidden, 403, `{"message":"403 Forbidden"}`, ""},
		{"not_found!", func(w http.ResponseWriter) { NotFound(w, "Project") }, 404, `{"message":"404 Project Not Found"}`, ""},
		{"record not found", RecordNotFound, 404, `{"message":"404 Not found"}`, ""},
		{"bad_request!", func(w http.ResponseWriter) { BadRequest(w, "Invalid Date") }, 400, `{"message":"400 Bad request - Invalid Date"}`, ""},
		{"validation", func(w http.ResponseWriter) { ValidationError(w, errs) }, 400, `{"message":{"name":["can't be blank"]}}`, ""},
		{"grape", func(w http.ResponseWriter) { GrapeError(w, "name is missing") }, 400, `{"error":"name is missing"}`, ""},
		{"no route", RouteNotFound, 404, `{"error":"404 Not Found"}`, ""},
		{"too large", RequestTooLarge, 413, `{"message":"413 Request Entity Too Large"}`, ""},
		{"internal", InternalError, 500, `{"message":"500 Internal Server Error"}`, ""},
		{"message object", func(w http.ResponseWriter) { Message(w, 400, map[string]int{"a": 1}) }, 400, `{"message":{"a":1}}`, ""},
		{"unmarshallable", func(w http.ResponseWriter) { WriteJSON(w, 200, math.Inf(1)) }, 500, `{"message":"500 Internal Server Error"}`, ""},
	}
	for _, tt := range tests {
		w := httptest.NewRecorder()
		tt.answer(w)
		if w.Code != tt.status || w.Body.String() != tt.body || w.Header().Get("Allow") != tt.allow ||
			w.Header().Get("Content-Type") != "application/json" {
			t.Errorf("%s: %d %s (Allow %q, Content-Type %q); want %d %s", tt.name, w.Code, w.Body,
				w.Header().Get("Allow"), w.Header().Get("Content-Type"), tt.status, tt.body)
		}
	}
	w := httptest.NewRecorder()
	Malformed(w)
	if w.Code != 400 || w.Body.String() != "Bad Request" || w.Header().Get("Content-Type") != "text/plain" {
		t.Errorf("malformed: %d %q %q", w.Code, w.Body, w.Header().Get("Content-Type"))
	}
	w = httptest.NewRecorder()
	NoContent(w)
	if w.Code != 204 || w.Body.Len() != 0 {
		t.Errorf("no content: %d %q", w.Code, w.Body)
	}
}
