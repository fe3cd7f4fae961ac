package auth

import (
	"net/http/httptest"
	"net/url"
	"testing"
)

func TestFindV4Tokens(t *testing.T) {
	cases := []struct {
		name   string
		params url.Values
		header map[string]string
		want   v4Tokens
	}{
		{name: "nothing sent", want: v4Tokens{}},
		{name: "JOB-TOKEN header", header: map[string]string{"Job-Token": "glcbt-h"}, want: v4Tokens{Job: "glcbt-h"}},
		{name: "job_token parameter before the header", params: url.Values{"job_token": {"glcbt-p"}},
			header: map[string]string{"JOB-TOKEN": "glcbt-h"}, want: v4Tokens{Job: "glcbt-p", JobFromParam: true}},
		{name: "token parameter is a job token too, after job_token", params: url.Values{"token": {"glcbt-t"}},
			header: map[string]string{"JOB-TOKEN": "glcbt-h"}, want: v4Tokens{Job: "glcbt-t", JobFromParam: true}},
		{name: "job_token before token", params: url.Values{"token": {"glcbt-t"}, "job_token": {"glcbt-j"}}, want: v4Tokens{Job: "glcbt-j", JobFromParam: true}},
		{name: "a blank parameter is not sent", params: url.Values{"job_token": {" "}},
			header: map[string]string{"JOB-TOKEN": "glcbt-h"}, want: v4Tokens{Job: "glcbt-h"}},
		{name: "bearer header is also the access token", header: map[string]string{"Authorization": "Bearer  glcbt-b "},
			want: v4Tokens{Bearer: "glcbt-b", Private: "glcbt-b"}},
		{name: "bearer scheme in any case", header: map[string]string{"Authorization": "bEaReR x"}, want: v4Tokens{Bearer: "x", Private: "x"}},
		{name: "basic auth is no bearer", header: map[string]string{"Authorization": "Basic eDp5"}, want: v4Tokens{}},
		{name: "access_token parameter before the bearer header", params: url.Values{"access_token": {"a"}},
			header: map[string]string{"Authorization": "Bearer b"}, want: v4Tokens{Bearer: "a", Private: "a"}},
		{name: "bearer_token parameter after the bearer header", params: url.Values{"bearer_token": {"p"}},
			header: map[string]string{"Authorization": "Bearer b"}, want: v4Tokens{Bearer: "b", Private: "b"}},
		{name: "bearer_token parameter alone", params: url.Values{"bearer_token": {"p"}}, want: v4Tokens{Bearer: "p", Private: "p"}},
		{name: "private_token parameter before the PRIVATE-TOKEN header", params: url.Values{"private_token": {"q"}},
			header: map[string]string{"PRIVATE-TOKEN": "h"}, want: v4Tokens{Private: "q"}},
		{name: "PRIVATE-TOKEN before the bearer token", header: map[string]string{"PRIVATE-TOKEN": "h", "Authorization": "Bearer b"},
			want: v4Tokens{Bearer: "b", Private: "h"}},
		{name: "the last of a repeated parameter", params: url.Values{"private_token": {"first", "last"}}, want: v4Tokens{Private: "last"}},
		{name: "all three kinds at once", params: url.Values{"private_token": {"q"}, "job_token": {"glcbt-j"}},
			header: map[string]string{"Authorization": "Bearer glcbt-b"}, want: v4Tokens{Bearer: "glcbt-b", Private: "q", Job: "glcbt-j", JobFromParam: true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/api/v4/projects/1/environments?"+c.params.Encode(), nil)
			for k, v := range c.header {
				r.Header.Set(k, v)
			}
			got := findV4Tokens(r, lastOf(r.URL.Query()))
			if got != c.want {
				t.Fatalf("findV4Tokens = %+v, want %+v", got, c.want)
			}
			if got.none() != (c.want == v4Tokens{}) {
				t.Fatalf("none() = %v for %+v", got.none(), got)
			}
		})
	}
}

func TestIsJobToken(t *testing.T) {
	cases := []struct {
		token string
		want  bool
	}{
		{"glcbt-64_0123456789abcdef", true},                     // a stored job token
		{"glcbt-eyJhbGciOiJSUzI1NiJ9.e30.c2ln", true},           // a JWT job token
		{"glenv_abcdefghijklmnop", false},                       // glenv's own
		{"glpat-0123456789abcdefghij", false},                   // a personal access token
		{"0123456789abcdef0123456789abcdef0123456789ab", false}, // an OAuth token
		{"GLCBT-64_x", false},                                   // GitLab's prefix check is case-sensitive
		{" glcbt-64_x", false},
		{"", false},
	}
	for _, c := range cases {
		if got := IsJobToken(c.token); got != c.want {
			t.Errorf("IsJobToken(%q) = %v, want %v", c.token, got, c.want)
		}
	}
}
