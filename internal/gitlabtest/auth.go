package gitlabtest

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/glenv/glenv/internal/gitlabapi"
)

// User is a GitLab user. Admins see and may change every project.
type User struct {
	ID       int64
	Username string
	Name     string
	IsAdmin  bool
}

// Token is a personal access token, or an OAuth access token when OAuth is
// set.
type Token struct {
	Value     string // the secret; generated if empty
	UserID    int64
	Name      string
	Scopes    []string // e.g. []string{"api"}, []string{"read_api"}
	ExpiresAt *time.Time
	Revoked   bool
	// OAuth marks an OAuth access token: it is accepted only as a Bearer
	// token and /personal_access_tokens/self refuses it.
	OAuth bool
}

type userRecord struct {
	User
	createdAt time.Time
}

type tokenRecord struct {
	Token
	id         int64
	createdAt  time.Time
	lastUsedAt *time.Time
}

// AddUser registers a user, assigning an ID if u.ID is 0.
func (s *Server) AddUser(u User) User {
	s.mu.Lock()
	defer s.mu.Unlock()
	u.ID = s.ids.take(&s.ids.user, u.ID)
	if u.Username == "" {
		u.Username = "user" + itoa(u.ID)
	}
	if u.Name == "" {
		u.Name = u.Username
	}
	s.users[u.ID] = &userRecord{User: u, createdAt: s.now()}
	return u
}

// AddToken registers a token and returns its secret.
func (s *Server) AddToken(tok Token) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if tok.Value == "" {
		b := make([]byte, 10)
		_, _ = rand.Read(b)
		tok.Value = "glpat-" + hex.EncodeToString(b)
	}
	tok.Scopes = slices.Clone(tok.Scopes)
	if tok.ExpiresAt != nil {
		expires := *tok.ExpiresAt
		tok.ExpiresAt = &expires
	}
	s.tokens[tok.Value] = &tokenRecord{Token: tok, id: s.ids.take(&s.ids.token, 0), createdAt: s.now()}
	return tok.Value
}

// take returns want if set (keeping the sequence ahead of it), else the
// next value of seq.
func (q *idSeq) take(seq *int64, want int64) int64 {
	if want != 0 {
		*seq = max(*seq, want)
		return want
	}
	*seq++
	return *seq
}

// scopeRule says which token scopes an endpoint accepts.
type scopeRule int

const (
	scopeAPI  scopeRule = iota // api; read_api for GET and HEAD
	scopeUser                  // api, read_api or read_user
	scopeAny                   // any scope
)

// bearer extracts the token the way GitLab's API guard finds it: a PAT from
// PRIVATE-TOKEN or private_token, an OAuth token or PAT from a Bearer header
// or access_token.
func bearer(r *http.Request) (value string, patOnly bool) {
	if v := r.Header.Get("Private-Token"); v != "" {
		return v, true
	}
	if v := r.URL.Query().Get("private_token"); v != "" {
		return v, true
	}
	if v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && v != "" {
		return strings.TrimSpace(v), false
	}
	return r.URL.Query().Get("access_token"), false
}

// authenticate resolves the caller and checks the token's validity and
// scopes, in the order of AccessTokenValidationService: expired, revoked,
// then scope.
func (s *Server) authenticate(rq *request, rule scopeRule) bool {
	value, patOnly := bearer(rq.r)
	rec := s.tokens[value]
	if value == "" || rec == nil || (patOnly && rec.OAuth) || s.users[rec.UserID] == nil {
		gitlabapi.Message(rq.w, http.StatusUnauthorized, "401 Unauthorized")
		return false
	}
	now := s.now()
	// OAuth tokens expire at their exact time, personal ones at midnight UTC.
	if rec.ExpiresAt != nil && ((rec.OAuth && !now.Before(*rec.ExpiresAt)) || (!rec.OAuth && !now.Before(midnightUTC(*rec.ExpiresAt)))) {
		invalidToken(rq, "Token is expired. You can either do re-authorization or token refresh.")
		return false
	}
	if rec.Revoked {
		invalidToken(rq, "Token was revoked. You have to re-authorize from the user.")
		return false
	}
	if allowed, names := scopesFor(rule, rq.r.Method); !hasAny(rec.Scopes, allowed) {
		gitlabapi.WriteJSON(rq.w, http.StatusForbidden, map[string]string{
			"error":             "insufficient_scope",
			"error_description": "The request requires higher privileges than provided by the access token.",
			"scope":             names,
		})
		return false
	}
	rec.lastUsedAt = &now
	rq.tok = rec
	rq.user = &s.users[rec.UserID].User
	return true
}

func invalidToken(rq *request, description string) {
	rq.w.Header().Set("WWW-Authenticate",
		`Bearer realm="Protected by OAuth 2.0", error="invalid_token", error_description="`+description+`"`)
	gitlabapi.WriteJSON(rq.w, http.StatusUnauthorized,
		map[string]string{"error": "invalid_token", "error_description": description})
}

// scopesFor returns the scopes an endpoint accepts for method and the list
// GitLab names in its insufficient_scope answer.
func scopesFor(rule scopeRule, method string) (allowed []string, names string) {
	read := method == http.MethodGet || method == http.MethodHead
	switch rule {
	case scopeAny:
		return nil, ""
	case scopeUser:
		if read {
			return []string{"api", "read_api", "read_user"}, "api read_api read_user"
		}
		return []string{"api"}, "api read_api read_user"
	default:
		if read {
			return []string{"api", "read_api"}, "api read_api"
		}
		return []string{"api"}, "api read_api"
	}
}

func hasAny(have, want []string) bool {
	if want == nil {
		return true
	}
	for _, w := range want {
		if slices.Contains(have, w) {
			return true
		}
	}
	return false
}

// midnightUTC is when a token expiring on t's date stops working: GitLab
// compares the expiry date with the current time, so the token is dead
// from the first second of that day.
func midnightUTC(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

type userJSON struct {
	ID        int64  `json:"id"`
	Username  string `json:"username"`
	Name      string `json:"name"`
	State     string `json:"state"`
	Locked    bool   `json:"locked"`
	AvatarURL string `json:"avatar_url"`
	WebURL    string `json:"web_url"`
}

// userBasic is API::Entities::UserBasic, or nil for an unknown user.
func (s *Server) userBasic(id int64) *userJSON {
	u := s.users[id]
	if u == nil {
		return nil
	}
	return &userJSON{
		ID: u.ID, Username: u.Username, Name: u.Name, State: "active",
		AvatarURL: s.URL + "/uploads/-/system/user/avatar/" + itoa(u.ID) + "/avatar.png",
		WebURL:    s.URL + "/" + u.Username,
	}
}

func (s *Server) getCurrentUser(rq *request) {
	u := s.userBasic(rq.user.ID)
	gitlabapi.WriteJSON(rq.w, http.StatusOK, struct {
		*userJSON
		CreatedAt   string  `json:"created_at"`
		Bot         bool    `json:"bot"`
		IsAdmin     bool    `json:"is_admin"`
		Email       *string `json:"email"`
		PublicEmail *string `json:"public_email"`
	}{userJSON: u, CreatedAt: gitlabapi.FormatTime(s.users[rq.user.ID].createdAt), IsAdmin: rq.user.IsAdmin})
}

func (s *Server) getTokenSelf(rq *request) {
	if rq.tok.OAuth {
		gitlabapi.BadRequest(rq.w, "This endpoint requires token type to be a personal access token")
		return
	}
	var expires *string
	if rq.tok.ExpiresAt != nil {
		d := rq.tok.ExpiresAt.Format(time.DateOnly)
		expires = &d
	}
	gitlabapi.WriteJSON(rq.w, http.StatusOK, map[string]any{
		"id":           rq.tok.id,
		"name":         rq.tok.Name,
		"description":  nil,
		"revoked":      rq.tok.Revoked,
		"created_at":   gitlabapi.FormatTime(rq.tok.createdAt),
		"scopes":       rq.tok.Scopes,
		"user_id":      rq.tok.UserID,
		"last_used_at": gitlabapi.FormatTimePtr(rq.tok.lastUsedAt),
		"active":       true,
		"expires_at":   expires,
	})
}
