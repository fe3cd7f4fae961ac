package web

import (
	"reflect"
	"strings"
	"testing"
)

func TestAGitLabURLOpensTheEnvironmentItNames(t *testing.T) {
	for _, c := range []struct {
		name, url string
		want      Target
		err       string
	}{
		{"a merge request opens mr-<iid>", "https://gitlab.example.com/group/app/-/merge_requests/7",
			Target{Scheme: "https", Host: "gitlab.example.com", Project: "group/app", MRIID: 7}, ""},
		{"a merge request's tab is still the merge request", "https://gitlab.example.com/group/sub/app/-/merge_requests/12/diffs",
			Target{Scheme: "https", Host: "gitlab.example.com", Project: "group/sub/app", MRIID: 12}, ""},
		{"a branch with slashes tries each prefix, longest first", "https://gitlab.example.com/group/app/-/tree/feature/login",
			Target{Scheme: "https", Host: "gitlab.example.com", Project: "group/app", Refs: []string{"feature/login", "feature"}}, ""},
		{"a file in a branch tries the branch too", "http://127.0.0.1:8080/group/app/-/blob/main/README.md",
			Target{Scheme: "http", Host: "127.0.0.1:8080", Project: "group/app", Refs: []string{"main/README.md", "main"}}, ""},
		{"a commit opens the environment that has it", "https://gitlab.example.com/group/app/-/commit/ABCDEF1234567",
			Target{Scheme: "https", Host: "gitlab.example.com", Project: "group/app", SHA: "abcdef1234567"}, ""},
		{"a project opens its default branch", "https://gitlab.example.com/group/app",
			Target{Scheme: "https", Host: "gitlab.example.com", Project: "group/app"}, ""},
		{"a clone URL is its project", "https://gitlab.example.com/group/app.git",
			Target{Scheme: "https", Host: "gitlab.example.com", Project: "group/app"}, ""},
		{"another page of a project opens the project", "https://gitlab.example.com/group/app/-/issues/3",
			Target{Scheme: "https", Host: "gitlab.example.com", Project: "group/app"}, ""},
		{"a merge request id must be a number", "https://gitlab.example.com/group/app/-/merge_requests/new", Target{}, "must be a number"},
		{"not a URL", "group/app", Target{}, "must be a GitLab URL"},
		{"a group is no project", "https://gitlab.example.com/group", Target{}, "names no project"},
		{"javascript: is refused", "javascript:alert(1)", Target{}, "must be a GitLab URL"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseGitLabURL(c.url)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) || !strings.HasPrefix(err.Error(), "url: ") {
					t.Fatalf("error %v, want one naming url and saying %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %+v, want %+v", got, c.want)
			}
		})
	}
}
