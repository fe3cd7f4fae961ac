package gitlabapi

import (
	"net/http"
	"strings"
)

// What every answer of GitLab's API carries, and its CORS.

// SecurityHeaders sets the headers GitLab's API sends on every answer
// (lib/api/api.rb, its first before block): answers are not to be framed
// or sniffed.
func SecurityHeaders(w http.ResponseWriter) {
	w.Header().Set("X-Frame-Options", "SAMEORIGIN")
	w.Header().Set("X-Content-Type-Options", "nosniff")
}

// corsExposed are the headers a cross-origin script may read: GitLab's
// pagination (config/application.rb, Rack::Cors `expose`).
const corsExposed = "Link, X-Total, X-Total-Pages, X-Per-Page, X-Page, X-Next-Page, X-Prev-Page"

// corsMethods is rack-cors' `methods: :any`.
const corsMethods = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"

// CORS answers GitLab's API's cross-origin rules (config/application.rb
// inserts Rack::Cors ahead of everything: for /api/*, any origin, any
// header, any method, without credentials, so a page elsewhere may call
// it with a token but never with a session cookie). A preflight (OPTIONS
// with Origin and Access-Control-Request-Method) is answered here, 200
// and empty, and CORS reports true; any other request with an Origin gets
// the headers a browser needs to hand the answer to the script.
func CORS(w http.ResponseWriter, r *http.Request) (answered bool) {
	// Answers differ with and without an Origin: caches must tell them apart.
	w.Header().Add("Vary", "Origin")
	if r.Header.Get("Origin") == "" {
		return false
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Allow-Methods", corsMethods)
	h.Set("Access-Control-Max-Age", "7200")
	if r.Method != http.MethodOptions || r.Header.Get("Access-Control-Request-Method") == "" {
		h.Set("Access-Control-Expose-Headers", corsExposed)
		return false
	}
	if req := strings.TrimSpace(r.Header.Get("Access-Control-Request-Headers")); req != "" {
		h.Set("Access-Control-Allow-Headers", req) // headers: :any echoes what was asked
	}
	h.Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusOK)
	return true
}

// Around runs serve for a call of GitLab's REST API inside what GitLab's
// stack puts around Grape: the security headers, Rack::Cors (a preflight
// is answered here and never reaches serve), and Rails' Rack::ETag and
// ConditionalGet on the way out (Revalidated). serve answers through the
// writer it is given.
func Around(w http.ResponseWriter, r *http.Request, serve func(http.ResponseWriter)) {
	SecurityHeaders(w)
	if CORS(w, r) {
		return
	}
	answer, finish := Revalidated(w, r)
	serve(answer)
	finish()
}
