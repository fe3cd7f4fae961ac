package main_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const zeroSHA = "0000000000000000000000000000000000000000"

// payload is one of GitLab's published webhook payloads, adjusted for a test.
type payload map[string]any

func loadPayload(t testing.TB, name string, projectID int64) payload {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "webhooks", name)) // copies of GitLab's examples (gitlab/webhooks)
	if err != nil {
		t.Fatal(err)
	}
	var p payload
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatal(err)
	}
	// Point every project id of the fixture at the test's project.
	if _, ok := p["project_id"]; ok {
		p["project_id"] = projectID
	}
	if proj, ok := p["project"].(map[string]any); ok {
		proj["id"] = projectID
	}
	if oa, ok := p["object_attributes"].(map[string]any); ok {
		for _, k := range []string{"source_project_id", "target_project_id"} {
			if _, has := oa[k]; has {
				oa[k] = projectID
			}
		}
	}
	return p
}

func (p payload) set(kv ...any) payload {
	for i := 0; i < len(kv); i += 2 {
		p[kv[i].(string)] = kv[i+1]
	}
	return p
}

// mr sets merge request attributes.
func (p payload) mr(kv ...any) payload {
	oa := p["object_attributes"].(map[string]any)
	for i := 0; i < len(kv); i += 2 {
		k := kv[i].(string)
		if k == "last_commit.id" {
			oa["last_commit"].(map[string]any)["id"] = kv[i+1]
			continue
		}
		if kv[i+1] == nil {
			delete(oa, k)
			continue
		}
		oa[k] = kv[i+1]
	}
	return p
}

func pushPayload(t testing.TB, projectID int64, branch, before, after string) payload {
	name := "push.json"
	if before == zeroSHA {
		name = "push_branch_created.json"
	}
	p := loadPayload(t, name, projectID).set("ref", "refs/heads/"+branch, "before", before, "after", after, "checkout_sha", after)
	if after == zeroSHA {
		p.set("checkout_sha", nil, "commits", []any{}, "total_commits_count", 0)
	}
	return p
}

func tagPayload(t testing.TB, projectID int64, tag, before, after string) payload {
	return loadPayload(t, "tag_push.json", projectID).set("ref", "refs/tags/"+tag, "before", before, "after", after)
}

func mrPayload(t testing.TB, projectID int64, fixture string, iid int64, sha string, updated time.Time) payload {
	p := loadPayload(t, fixture, projectID)
	delete(p, "changes")
	return p.mr("iid", iid, "source_branch", "feature-x", "target_branch", "main", "last_commit.id", sha,
		"updated_at", updated.UTC().Format("2006-01-02 15:04:05 UTC"), "draft", false, "work_in_progress", false,
		"title", fmt.Sprintf("MR %d", iid))
}

var keySeq atomic.Int64

// deliver posts a payload to glenv as GitLab would; key "" makes a fresh Idempotency-Key.
func (g *glenv) deliver(integration, secret, event string, p any, key string) (int, string) {
	g.t.Helper()
	body, err := json.Marshal(p)
	if err != nil {
		g.t.Fatal(err)
	}
	if key == "" {
		key = fmt.Sprintf("key-%d-%d", time.Now().UnixNano(), keySeq.Add(1))
	}
	req, _ := http.NewRequest(http.MethodPost, g.URL+"/hooks/gitlab/"+integration, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "GitLab/17.1.0-pre")
	req.Header.Set("X-Gitlab-Event", event)
	req.Header.Set("X-Gitlab-Token", secret)
	req.Header.Set("Idempotency-Key", key)
	req.Header.Set("X-Gitlab-Instance", "https://gitlab.example.com")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, b.String()
}

// postHook posts a payload and reports the status, or the transport error.
func postHook(url, secret, event string, p any, key string) (int, error) {
	body, err := json.Marshal(p)
	if err != nil {
		return 0, err
	}
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Gitlab-Event", event)
	req.Header.Set("X-Gitlab-Token", secret)
	req.Header.Set("Idempotency-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
