package web

import (
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// Target is what a GitLab URL points at, as far as environments go.
type Target struct {
	// Scheme, Host (with port) and Project (its full path) name the project.
	Scheme, Host, Project string
	// MRIID is set for a merge request URL.
	MRIID int64
	// Refs are the branch names the URL may mean, longest first: GitLab's
	// /tree/*id and /blob/*id routes cannot tell where a branch with
	// slashes ends and a file path begins, so each prefix is a candidate.
	Refs []string
	// SHA is set for a commit URL.
	SHA string
}

// ProjectURL is the project's page in GitLab.
func (t Target) ProjectURL() string { return t.Scheme + "://" + t.Host + "/" + t.Project }

// Kind says which environment the target opens.
func (t Target) Kind() string {
	switch {
	case t.MRIID != 0:
		return "mr"
	case t.SHA != "":
		return "commit"
	case len(t.Refs) > 0:
		return "branch"
	}
	return "project"
}

var shaRE = regexp.MustCompile(`^[0-9a-f]{7,64}$`)

// ParseGitLabURL reads a GitLab project URL the way GitLab's router does:
// every project route after the project path is under "/-/" (GitLab's
// config/routes/project.rb, `scope '-'`); merge requests are
// /-/merge_requests/:id with a numeric id (config/routes/merge_requests.rb);
// branches are /-/tree/*id, /-/blob/*id and /-/commits/*id, commits
// /-/commit/:id (config/routes/repository.rb). Anything else under "/-/"
// opens the project.
func ParseGitLabURL(raw string) (Target, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return Target{}, fmt.Errorf("url: %q must be a GitLab URL such as https://gitlab.example.com/group/app/-/merge_requests/7", raw)
	}
	path := strings.Trim(u.Path, "/")
	project, rest, _ := strings.Cut(path, "/-/")
	project = strings.TrimSuffix(strings.TrimSuffix(project, "/-"), ".git")
	if project == "" || !strings.Contains(project, "/") {
		return Target{}, fmt.Errorf("url: %q names no project: give the project's URL (https://host/group/project) or a page inside it", raw)
	}
	t := Target{Scheme: u.Scheme, Host: strings.ToLower(u.Host), Project: project}
	parts := strings.Split(rest, "/")
	if rest == "" {
		return t, nil
	}
	switch parts[0] {
	case "merge_requests":
		if len(parts) > 1 {
			iid, err := strconv.ParseInt(parts[1], 10, 64)
			if err != nil || iid <= 0 {
				return Target{}, fmt.Errorf("url: merge request %q must be a number (its !iid)", parts[1])
			}
			t.MRIID = iid
		}
	case "commit":
		if len(parts) > 1 && shaRE.MatchString(strings.ToLower(parts[1])) {
			t.SHA = strings.ToLower(parts[1])
		}
	case "tree", "blob", "commits":
		for i := len(parts); i > 1; i-- {
			ref, err := url.PathUnescape(strings.Join(parts[1:i], "/"))
			if err == nil && ref != "" {
				t.Refs = append(t.Refs, ref)
			}
		}
	}
	return t, nil
}
