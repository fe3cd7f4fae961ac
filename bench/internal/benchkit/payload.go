package benchkit

import (
	"encoding/json"
	"os"
	"path/filepath"
)

// PushPayload is GitLab's push payload for a created branch (the webhook
// tests' copy), for project 1, padded with commits to at least size bytes.
func PushPayload(size int) ([]byte, error) {
	raw, err := os.ReadFile(filepath.Join(RepoRoot(), "internal", "webhook", "testdata", "webhooks", "push_branch_created.json"))
	if err != nil {
		return nil, err
	}
	var p map[string]any
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, err
	}
	p["project_id"] = 1
	p["project"].(map[string]any)["id"] = 1
	commits := p["commits"].([]any)
	for {
		b, err := json.Marshal(p)
		if err != nil || len(b) >= size {
			return b, err
		}
		commits = append(commits, commits[0])
		p["commits"] = commits
	}
}

// RepoRoot is the module's root: the nearest directory up from the working
// directory that holds go.mod (bench programs run from anywhere in it).
func RepoRoot() string {
	dir, _ := os.Getwd()
	for d := dir; d != "/"; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
	}
	return dir
}
