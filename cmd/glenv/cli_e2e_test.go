package main_test

import (
	"strings"
	"testing"
)

func TestClientCommandsFailClearly(t *testing.T) {
	g := startGlenv(t, "")
	tests := []struct {
		name string
		env  string // token
		args []string
		want string
	}{
		{"unknown format", adminToken, []string{"integration:list", "--format", "xml"}, "--format"},
		{"bad server url", adminToken, []string{"integration:list", "--server", "nope"}, "--server"},
		{"unreachable server", adminToken, []string{"integration:list", "--server", "http://127.0.0.1:1"}, "glenv serve"},
		{"wrong token", "nope", []string{"integration:list"}, "API token"},
		{"unknown integration", adminToken, []string{"integration:get", "missing"}, "not found"},
		{"unknown environment", adminToken, []string{"environment:get", "missing"}, "no environment named"},
		{"missing argument", adminToken, []string{"integration:get"}, "accepts 1 arg"},
		{"unknown command", adminToken, []string{"integration:nope"}, "unknown command"},
		{"bad activity id", adminToken, []string{"activity:get", "abc"}, "positive number"},
		{"bad token role", adminToken, []string{"token:create", "--name", "x", "--role", "root"}, "role"},
		{"token without name", adminToken, []string{"token:create"}, "name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, stderr, code := g.runAs(tt.env, "", tt.args...)
			if code == 0 {
				t.Fatalf("exit 0, want failure; stdout %s", out)
			}
			if !strings.Contains(stderr, tt.want) {
				t.Fatalf("stderr %q does not mention %q", stderr, tt.want)
			}
		})
	}
}

func TestServeRefusesBadSettings(t *testing.T) {
	g := &glenv{t: t}
	_, stderr, code := g.runAs("", "", "serve", "--public-url", "glenv.example.com", "--data-dir", t.TempDir())
	if code == 0 || !strings.Contains(stderr, "--public-url") {
		t.Fatalf("exit %d stderr %q", code, stderr)
	}
}

func TestTokensCanBeCreatedListedAndRevoked(t *testing.T) {
	g := startGlenv(t, "")
	var tok struct {
		ID    int64  `json:"id"`
		Token string `json:"token"`
	}
	g.mustJSON(&tok, "token:create", "--name", "ci", "--role", "member")
	if _, _, code := g.runAs(tok.Token, "", "integration:list"); code != 0 {
		t.Fatal("a fresh member token was refused")
	}
	if _, stderr, code := g.runAs(tok.Token, "", "token:list"); code == 0 || !strings.Contains(stderr, "admin") {
		t.Fatalf("a member listed tokens: %s", stderr)
	}
	out := g.mustRun("token:list")
	if !strings.Contains(out, "ci") || strings.Contains(out, tok.Token) {
		t.Fatalf("token:list must show names, never values:\n%s", out)
	}
	g.mustRun("token:revoke", jsonNumber(tok.ID))
	if _, _, code := g.runAs(tok.Token, "", "integration:list"); code == 0 {
		t.Fatal("a revoked token still works")
	}
}
