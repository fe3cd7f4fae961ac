package gitlabapi

import (
	"net/http/httptest"
	"testing"
)

func TestCORS(t *testing.T) {
	tests := []struct {
		name, method string
		header       map[string]string
		answered     bool
		status       int
		want         map[string]string // "" must be absent
	}{
		{name: "no origin: nothing", method: "GET",
			want: map[string]string{"Access-Control-Allow-Origin": "", "Access-Control-Expose-Headers": ""}},
		{name: "a request from another origin may be read, pagination included", method: "GET",
			header: map[string]string{"Origin": "https://dash.example"},
			want:   map[string]string{"Access-Control-Allow-Origin": "*", "Access-Control-Expose-Headers": corsExposed, "Access-Control-Allow-Credentials": ""}},
		{name: "a preflight is answered", method: "OPTIONS", answered: true, status: 200,
			header: map[string]string{"Origin": "https://dash.example", "Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "private-token, content-type"},
			want: map[string]string{"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": corsMethods,
				"Access-Control-Allow-Headers": "private-token, content-type", "Access-Control-Max-Age": "7200", "Access-Control-Allow-Credentials": ""}},
		{name: "OPTIONS without a requested method is no preflight", method: "OPTIONS",
			header: map[string]string{"Origin": "https://dash.example"},
			want:   map[string]string{"Access-Control-Allow-Origin": "*"}},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(tt.method, "/api/v4/projects/1/environments", nil)
		for k, v := range tt.header {
			r.Header.Set(k, v)
		}
		w := httptest.NewRecorder()
		if got := CORS(w, r); got != tt.answered || (tt.answered && w.Code != tt.status) || w.Header().Get("Vary") != "Origin" {
			t.Errorf("%s: answered %v (%d)", tt.name, got, w.Code)
		}
		for k, v := range tt.want {
			if got := w.Header().Get(k); got != v {
				t.Errorf("%s: %s = %q, want %q", tt.name, k, got, v)
			}
		}
	}
}
