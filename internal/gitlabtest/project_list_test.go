package gitlabtest

import (
	"testing"

	gitlab "gitlab.com/gitlab-org/api/client-go/v2"
)

func TestListingMyProjectsByAccessLevel(t *testing.T) {
	f := newFixture(t)
	mine := f.srv.AddProject(Project{PathWithNamespace: "maya/tool", Members: map[int64]int{f.maintainer.ID: 50}})
	for _, c := range []struct {
		name  string
		token string
		min   gitlab.AccessLevelValue
		want  []int64
	}{
		{"a maintainer lists where she is Maintainer or Owner, newest first", f.maintainerTok, gitlab.MaintainerPermissions, []int64{mine.ID, f.project.ID}},
		{"a developer is Maintainer nowhere", f.devTok, gitlab.MaintainerPermissions, nil},
		{"a developer lists where he is Developer", f.devTok, gitlab.DeveloperPermissions, []int64{f.project.ID}},
		{"an outsider is a member of nothing", f.outsiderTok, gitlab.GuestPermissions, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			ps, _, err := f.client(t, c.token).Projects.ListProjects(&gitlab.ListProjectsOptions{Membership: gitlab.Ptr(true), MinAccessLevel: gitlab.Ptr(c.min)})
			if err != nil {
				t.Fatal(err)
			}
			var got []int64
			for _, p := range ps {
				got = append(got, p.ID)
			}
			if len(got) != len(c.want) || (len(got) > 0 && (got[0] != c.want[0] || got[len(got)-1] != c.want[len(c.want)-1])) {
				t.Errorf("got %v, want %v", got, c.want)
			}
		})
	}
}
