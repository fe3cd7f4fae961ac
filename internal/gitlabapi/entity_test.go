package gitlabapi

import (
	"encoding/json"
	"testing"
	"time"
)

func TestBasicProjectAndNamespace(t *testing.T) {
	created := time.Date(2025, 3, 1, 12, 0, 0, 5e6, time.FixedZone("CET", 3600))
	main := "main"
	tests := []struct {
		path, project, namespace string
	}{
		{"group/sub/app",
			`{"id":7,"description":null,"name":"app","name_with_namespace":"group / sub / app","path":"app","path_with_namespace":"group/sub/app","created_at":"2025-03-01T11:00:00.005Z","default_branch":"main","tag_list":[],"topics":[],"ssh_url_to_repo":"git@gitlab.example.com:group/sub/app.git","http_url_to_repo":"https://gitlab.example.com/group/sub/app.git","web_url":"https://gitlab.example.com/group/sub/app","readme_url":null,"forks_count":0,"avatar_url":null,"star_count":0,"last_activity_at":"2025-03-01T11:00:00.005Z","namespace":{"id":null,"name":"sub","path":"sub","kind":"group","full_path":"group/sub","parent_id":null,"avatar_url":null,"web_url":"https://gitlab.example.com/groups/group/sub"}}`,
			`{"id":null,"name":"sub","path":"sub","kind":"group","full_path":"group/sub","parent_id":null,"avatar_url":null,"web_url":"https://gitlab.example.com/groups/group/sub"}`},
		{"solo",
			`{"id":7,"description":null,"name":"solo","name_with_namespace":"solo","path":"solo","path_with_namespace":"solo","created_at":"2025-03-01T11:00:00.005Z","default_branch":"main","tag_list":[],"topics":[],"ssh_url_to_repo":"git@gitlab.example.com:solo.git","http_url_to_repo":"https://gitlab.example.com/solo.git","web_url":"https://gitlab.example.com/solo","readme_url":null,"forks_count":0,"avatar_url":null,"star_count":0,"last_activity_at":"2025-03-01T11:00:00.005Z","namespace":{"id":null,"name":"","path":"","kind":"user","full_path":"","parent_id":null,"avatar_url":null,"web_url":"https://gitlab.example.com"}}`,
			`{"id":null,"name":"","path":"","kind":"user","full_path":"","parent_id":null,"avatar_url":null,"web_url":"https://gitlab.example.com"}`},
	}
	for _, tt := range tests {
		p, _ := json.Marshal(NewBasicProject(7, tt.path, "https://gitlab.example.com", "gitlab.example.com", created, &main))
		ns, _ := json.Marshal(NamespaceOf(tt.path, "https://gitlab.example.com"))
		if string(p) != tt.project {
			t.Errorf("%s: project %s\nwant %s", tt.path, p, tt.project)
		}
		if string(ns) != tt.namespace {
			t.Errorf("%s: namespace %s\nwant %s", tt.path, ns, tt.namespace)
		}
	}
}

func TestEnvironmentEntity(t *testing.T) {
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	type project struct {
		ID int64 `json:"id"`
	}
	e := Environment[project]{EnvironmentBasic: NewEnvironmentBasic(3, "review/a", "review-a-xyz", "", at, at),
		Tier: "development", Project: &project{ID: 7}, State: "available", AutoStopSetting: "always"}
	base := `"id":3,"name":"review/a","slug":"review-a-xyz","external_url":null,"created_at":"2025-03-01T12:00:00.000Z","updated_at":"2025-03-01T12:00:00.000Z","tier":"development",`
	// No cluster agent: cluster_agent, kubernetes_namespace and
	// flux_resource_path are left out (lib/api/entities/environment.rb:13-15).
	rest := `"state":"available","auto_stop_at":null,"description":null,"auto_stop_setting":"always"}`
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"with project", e, `{` + base + `"project":{"id":7},` + rest},
		{"detail without deployment", e.Detail(nil), `{` + base + `"last_deployment":null,` + rest},
		{"detail with deployment", e.Detail([]byte(`{"id":1}`)), `{` + base + `"last_deployment":{"id":1},` + rest},
		{"deployment without environment", Deployment{ID: 1, IID: 1, Status: "success"},
			`{"id":1,"iid":1,"ref":"","sha":"","created_at":"","updated_at":"","user":null,"deployable":null,"status":"success"}`},
		{"deployment with environment", Deployment{ID: 1, Environment: &e.EnvironmentBasic},
			`{"id":1,"iid":0,"ref":"","sha":"","created_at":"","updated_at":"","user":null,` +
				`"environment":{"id":3,"name":"review/a","slug":"review-a-xyz","external_url":null,` +
				`"created_at":"2025-03-01T12:00:00.000Z","updated_at":"2025-03-01T12:00:00.000Z"},"deployable":null,"status":""}`},
	}
	for _, tt := range tests {
		b, err := json.Marshal(tt.v)
		if err != nil || string(b) != tt.want {
			t.Errorf("%s: %s %v\nwant %s", tt.name, b, err, tt.want)
		}
	}
	if e.Project == nil {
		t.Error("Detail changed the entity it was called on")
	}
}

func TestNullIfEmpty(t *testing.T) {
	if NullIfEmpty("") != nil || *NullIfEmpty("x") != "x" {
		t.Error("NullIfEmpty")
	}
}

func TestABlankExternalURLIsNull(t *testing.T) {
	for _, s := range []string{"", " ", "\t\n"} {
		if b := NewEnvironmentBasic(1, "a", "a", s, time.Time{}, time.Time{}); b.ExternalURL != nil {
			t.Errorf("external_url %q shows %q, want null (nullify_if_blank)", s, *b.ExternalURL)
		}
	}
}
