package benchkit

import (
	"crypto/sha1"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// PushPayload is GitLab's push payload for a created branch (the webhook
// tests' copy), for project 1, padded with distinct commits to at least
// size bytes.
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
		// Each added commit is distinct, as a real push's are: its id a
		// SHA-1's hex, its message, time and files its own. glenv stores
		// bodies compressed on SQLite, and copies of one commit would
		// compress far better than any real push does.
		commits = append(commits, commitNumber(commits[0].(map[string]any), len(commits)))
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

// commitNumber is a copy of commit as the n-th of a push: its own id,
// message, timestamp and files.
func commitNumber(commit map[string]any, n int) map[string]any {
	c := maps.Clone(commit)
	id := fmt.Sprintf("%x", sha1.Sum([]byte(strconv.Itoa(n))))
	c["id"] = id
	c["url"] = "http://example.com/mike/diaspora/commit/" + id
	sum := sha1.Sum([]byte(id))
	var title []string
	for _, b := range sum[:6+sum[0]%8] {
		title = append(title, commitWords[int(b)%len(commitWords)])
	}
	c["title"] = strings.Join(title, " ")
	c["message"] = c["title"].(string) + "\n\n" + fmt.Sprintf("Part %d of the change; see issue #%d.", n, 1000+int(sum[1])*int(sum[2]))
	c["timestamp"] = fmt.Sprintf("2011-12-12T14:%02d:%02d+02:00", n%60, (n*37)%60)
	c["added"] = []any{fmt.Sprintf("docs/change-%d.md", n)}
	return c
}

var commitWords = strings.Fields(`fix add remove update refactor rename move the a of to in for with tests docs build
	api server client cache config handler route user project merge request branch deploy environment
	preview database query index migration timeout retry error log metric webhook proxy sandbox token`)
