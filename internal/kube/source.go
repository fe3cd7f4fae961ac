package kube

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/glenv/glenv/internal/gitsha"
)

// Source is glenv's cache of the commits it deploys on Kubernetes: it reads
// .glenv.yml at a SHA and streams the SHA's tree as a tarball to the init
// container. The integration token stays on glenv's side: the cluster only
// ever sees a signed, expiring URL.
type Source struct {
	Dir string // bare repositories, one per GitLab project

	mu      sync.Mutex
	locks   map[string]*sync.Mutex
	fetched map[string]struct{} // repo@sha fetched whole (known)
}

func (s *Source) lock(key string) func() {
	s.mu.Lock()
	if s.locks == nil {
		s.locks = map[string]*sync.Mutex{}
	}
	l := s.locks[key]
	if l == nil {
		l = &sync.Mutex{}
		s.locks[key] = l
	}
	s.mu.Unlock()
	l.Lock()
	return l.Unlock
}

func (s *Source) repo(projectID int64) string {
	return filepath.Join(s.Dir, strconv.FormatInt(projectID, 10)+".git")
}

// git runs git with no user or system configuration; the token travels in
// an Authorization header set through GIT_CONFIG_* variables, never on disk
// or in argv.
func (s *Source) git(ctx context.Context, repo, token string, stdout io.Writer, args ...string) error {
	cmd := exec.CommandContext(ctx, "git", append([]string{"--git-dir=" + repo}, args...)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + repo, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_TERMINAL_PROMPT=0", "GIT_ASKPASS=/bin/false", "LC_ALL=C"}
	if token != "" {
		basic := base64.StdEncoding.EncodeToString([]byte("oauth2:" + token))
		cmd.Env = append(cmd.Env, "GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=http.extraHeader",
			"GIT_CONFIG_VALUE_0=Authorization: Basic "+basic)
	}
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if token != "" {
			msg = strings.ReplaceAll(msg, token, "[REDACTED]")
		}
		return fmt.Errorf("git %s: %w: %s", args[0], err, msg)
	}
	return nil
}

// Fetch makes sure sha is in the project's cache repository (depth 1).
func (s *Source) Fetch(ctx context.Context, projectID int64, url, token, sha string) (err error) {
	if !validSHA(sha) {
		return fmt.Errorf("commit %q: must be a 40-character hex SHA", sha)
	}
	repo := s.repo(projectID)
	// A burst of deploys of one SHA would otherwise queue on the lock
	// behind each other's `git cat-file` (a process each, tens of ms on a
	// busy machine: seconds for a hundred). Not git itself, outside the
	// lock: a fetch writes a small pack's objects loose, one by one, so
	// the commit can be there before its tree.
	if s.known(repo, sha) {
		return nil
	}
	defer s.lock(repo)()
	defer func() {
		if err == nil {
			s.remember(repo, sha)
		}
	}()
	if _, err := os.Stat(filepath.Join(repo, "HEAD")); err != nil {
		if err := os.MkdirAll(repo, 0o700); err != nil {
			return err
		}
		if err := s.git(ctx, repo, "", nil, "init", "--quiet", "--bare"); err != nil {
			return err
		}
	}
	if s.has(ctx, repo, sha) {
		return nil
	}
	err = s.git(ctx, repo, token, nil, "-c", "protocol.version=2", "fetch", "--quiet", "--no-tags",
		"--no-write-fetch-head", "--depth=1", url, "+"+sha+":refs/glenv/"+sha)
	if err != nil {
		return fmt.Errorf("fetch %s at %s: %w; check the integration's token with `glenv integration:validate`", url, gitsha.Short(sha), err)
	}
	return nil
}

// maxKnown bounds the commits Source remembers as fetched; past it the
// memory starts again (a forgotten commit costs one `git cat-file`).
const maxKnown = 4096

// known reports whether this process fetched (or found) the commit.
func (s *Source) known(repo, sha string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.fetched[repo+"@"+sha]
	return ok
}

func (s *Source) remember(repo, sha string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fetched == nil || len(s.fetched) >= maxKnown {
		s.fetched = map[string]struct{}{}
	}
	s.fetched[repo+"@"+sha] = struct{}{}
}

// has reports whether the repository holds the commit.
func (s *Source) has(ctx context.Context, repo, sha string) bool {
	if _, err := os.Stat(filepath.Join(repo, "HEAD")); err != nil {
		return false
	}
	return s.git(ctx, repo, "", nil, "cat-file", "-e", sha+"^{commit}") == nil
}

// ReadFile returns a file of a fetched commit, or os.ErrNotExist.
func (s *Source) ReadFile(ctx context.Context, projectID int64, sha, name string) ([]byte, error) {
	var out bytes.Buffer
	if err := s.git(ctx, s.repo(projectID), "", &out, "cat-file", "blob", sha+":"+name); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, os.ErrNotExist
	}
	return out.Bytes(), nil
}

// ErrNotFetched is a tree glenv does not hold (never deployed, or pruned).
var ErrNotFetched = errors.New("commit not fetched")

// Archive writes the commit's tree as an uncompressed tar to w.
func (s *Source) Archive(ctx context.Context, projectID int64, sha string, w io.Writer) error {
	repo := s.repo(projectID)
	if !validSHA(sha) || s.git(ctx, repo, "", nil, "cat-file", "-e", sha+"^{commit}") != nil {
		return ErrNotFetched
	}
	return s.git(ctx, repo, "", w, "archive", "--format=tar", sha)
}

// validSHA accepts a full hex commit id (SHA-1 or SHA-256), which git then
// cannot mistake for an option or a ref expression.
func validSHA(sha string) bool {
	if len(sha) != 40 && len(sha) != 64 {
		return false
	}
	for _, c := range sha {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
