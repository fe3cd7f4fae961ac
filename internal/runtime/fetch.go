package runtime

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/glenv/glenv/internal/gitsha"
)

// git runs git in repo with no user or system configuration. token, when
// set, travels in an Authorization header configured through GIT_CONFIG_*
// variables: never on disk, never in argv, never in a log.
func (r *Runtime) git(ctx context.Context, repo, token string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, r.gitBin, args...)
	cmd.Dir = repo
	cmd.Env = []string{
		"PATH=" + r.sb.path, "HOME=" + repo, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_TERMINAL_PROMPT=0", "GIT_ASKPASS=/bin/false", "SSH_ASKPASS=/bin/false", "LC_ALL=C",
	}
	if token != "" {
		basic := base64.StdEncoding.EncodeToString([]byte("oauth2:" + token))
		cmd.Env = append(cmd.Env, "GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=http.extraHeader",
			"GIT_CONFIG_VALUE_0=Authorization: Basic "+basic)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		msg := strings.TrimSpace(redact(stderr.String(), token))
		return out, fmt.Errorf("git %s: %w: %s", args[0], err, msg)
	}
	return out, nil
}

// repoURL is the project's smart-HTTP URL, as GitLab's http_url_to_repo.
func repoURL(baseURL, projectPath string) string {
	return strings.TrimRight(baseURL, "/") + "/" + projectPath + ".git"
}

// fetch makes sure the commit is in the project's cache repository,
// fetching exactly that SHA (depth 1) when it is not. A commit it fetched
// comes with its pack open (nil otherwise), to read it without git; the
// caller closes it.
func (r *Runtime) fetch(ctx context.Context, projectID int64, url, token, sha string, log func(string)) (string, *packView, error) {
	repo := filepath.Join(r.dir, "repos", strconv.FormatInt(projectID, 10)+".git")
	unlock, err := r.locks.lock(ctx, "repo:"+repo)
	if err != nil {
		return "", nil, err
	}
	defer unlock()
	if _, err := os.Stat(filepath.Join(repo, "HEAD")); err != nil {
		if err := os.MkdirAll(repo, 0o700); err != nil {
			return "", nil, err
		}
		if _, err := r.git(ctx, repo, "", "init", "--quiet", "--bare"); err != nil {
			return "", nil, err
		}
	}
	if fetched(repo, sha) {
		log(fmt.Sprintf("commit %s is already fetched\n", gitsha.Short(sha)))
		return repo, nil, nil
	}
	log(fmt.Sprintf("fetching %s from %s\n", gitsha.Short(sha), url))
	pack, err := r.fetchPack(ctx, repo, url, token, sha)
	if err == nil || !errors.Is(err, errNoProtocolV2) {
		if err != nil && ctx.Err() != nil {
			return "", nil, context.Cause(ctx)
		}
		if err == nil {
			r.background(func() { r.maintain(repo) })
		}
		return repo, pack, err
	}
	log(fmt.Sprintf("%v: fetching with git\n", err))
	// One git process: a commit not fetched by glenv before is fetched
	// without asking git first whether it has it (a commit it had under
	// another name costs a fetch that transfers nothing).
	// The repository's upkeep (git maintenance, which fetch would run and
	// wait for) runs after the fetch instead, off the deploy's path.
	_, err = r.git(ctx, repo, token, "-c", "protocol.version=2", "fetch", "--quiet", "--no-tags",
		"--no-write-fetch-head", "--no-auto-maintenance", "--depth=1", url, "+"+sha+":refs/glenv/"+sha)
	if err != nil {
		if ctx.Err() != nil {
			return "", nil, context.Cause(ctx)
		}
		return "", nil, explainFetch(err, url, sha)
	}
	r.background(func() { r.maintain(repo) })
	return repo, nil, nil
}

// fetchPack fetches sha in process (smarthttp.go) into repo: its pack, the
// shallow boundary, then its ref, last, so that a fetch cut short is made
// again. The commit's tree and .glenv.yml go into the commit cache on the
// way.
func (r *Runtime) fetchPack(ctx context.Context, repo, url, token, sha string) (*packView, error) {
	if len(sha) != 40 {
		// SHA-256 repositories: git knows their object format.
		return nil, fmt.Errorf("%w: a SHA-256 object name", errNoProtocolV2)
	}
	fp, err := postFetch(ctx, r.http, url, token, sha)
	if err != nil {
		return nil, err
	}
	defer fp.body.Close()
	pack, err := storePack(repo, fp.pack)
	if err != nil {
		return nil, fmt.Errorf("fetch %s at %s: store the pack: %w", url, gitsha.Short(sha), err)
	}
	ok := false
	defer func() {
		if !ok {
			pack.close()
		}
	}()
	c, err := pack.commit(sha)
	if err != nil {
		return nil, fmt.Errorf("fetch %s at %s: %w", url, gitsha.Short(sha), err)
	}
	pack.sha, pack.root = sha, c.TreeHash
	if err := addShallow(ctx, repo, fp.shallow); err != nil {
		return nil, err
	}
	if err := setRef(ctx, repo, sha); err != nil {
		return nil, err
	}
	r.commits.setTree(repo, sha, c.TreeHash.String())
	if t, err := pack.tree(c.TreeHash); err == nil {
		// A missing or refused file is left to readFile, which says why.
		if b, err := pack.rootFile(t, ConfigFile); err == nil {
			r.commits.setFile(repo, sha, ConfigFile, b)
		}
	}
	ok = true
	return pack, nil
}

// background runs fn in a goroutine Close waits for; none starts once
// Close began.
func (r *Runtime) background(fn func()) {
	r.upkeepMu.Lock()
	defer r.upkeepMu.Unlock()
	if r.upkeepClosed {
		return
	}
	r.upkeep.Add(1)
	go func() {
		defer r.upkeep.Done()
		fn()
	}()
}

// maintain runs git's automatic upkeep of a cache repository (packing the
// packs and loose objects fetches leave) when it is due, one at a time per
// repository; git's own lock keeps it apart from fetches.
func (r *Runtime) maintain(repo string) {
	if !upkeepDue(upkeepCounts(repo)) {
		return // git would do nothing (upkeep.go)
	}
	if _, busy := r.maintaining.LoadOrStore(repo, true); busy {
		return
	}
	defer r.maintaining.Delete(repo)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// In this goroutine, not detached: git's detached gc left the packs
	// as they were here, and Close waits for upkeep it knows of.
	if _, err := r.git(ctx, repo, "", "-c", "maintenance.autoDetach=false", "-c", "gc.autoDetach=false",
		"maintenance", "run", "--auto", "--quiet"); err != nil {
		r.log.Warn("git maintenance of a cache repository", "repo", repo, "err", err)
	}
}

// fetched reports whether glenv fetched sha into repo before: each fetch
// names its commit refs/glenv/<sha>, a file until git packs it into
// packed-refs. Read here rather than by a git process, which costs more
// than the rest of a redeploy's fetch stage.
func fetched(repo, sha string) bool {
	if !isHex(sha) {
		return false
	}
	ref := "refs/glenv/" + sha
	if _, err := os.Stat(filepath.Join(repo, ref)); err == nil {
		return true
	}
	packed, err := os.ReadFile(filepath.Join(repo, "packed-refs"))
	return err == nil && bytes.Contains(packed, []byte(sha+" "+ref+"\n"))
}

// isHex reports whether s is a full SHA-1 or SHA-256 object name.
func isHex(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// explainFetch turns git's answer into what to do about it.
func explainFetch(err error, url, sha string) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "could not read Username") || strings.Contains(msg, "Authentication failed"):
		return fmt.Errorf("fetch %s: GitLab refused the integration's token (401); renew it with `glenv integration:update --token` and check it with `glenv integration:validate`", url)
	case strings.Contains(msg, "403"):
		return fmt.Errorf("fetch %s: GitLab forbids reading the code (403); give the token the read_repository or api scope and Reporter access or more", url)
	case strings.Contains(msg, "not our ref") || strings.Contains(msg, "couldn't find remote ref") || strings.Contains(msg, "no such remote ref"):
		return fmt.Errorf("fetch %s: commit %s is not in the repository (was it force-pushed away?)", url, gitsha.Short(sha))
	}
	return fmt.Errorf("fetch %s at %s: %w", url, gitsha.Short(sha), err)
}

// MaxRepoFile is the most glenv reads of a file in a repository (.glenv.yml):
// the code may come from anyone who can open a merge request.
const MaxRepoFile = 256 << 10

// readFile returns a regular file of the commit, os.ErrNotExist when the
// commit has no file of that name, or an error that names git's own
// answer: a commit git cannot read is not a missing file.
func (r *Runtime) readFile(ctx context.Context, repo, sha, name string) ([]byte, error) {
	out, err := r.git(ctx, repo, "", "ls-tree", "-l", "-z", sha, "--", name)
	if err != nil {
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return nil, fmt.Errorf("read %s of %s: %w", name, gitsha.Short(sha), err)
	}
	entry, err := parseTreeEntry(out)
	if err != nil {
		return nil, fmt.Errorf("read %s of %s: %w", name, gitsha.Short(sha), err)
	}
	if entry.oid == "" {
		return nil, os.ErrNotExist
	}
	if err := entry.readable(name); err != nil {
		return nil, err
	}
	out, err = r.git(ctx, repo, "", "cat-file", "blob", entry.oid)
	if err != nil {
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return nil, fmt.Errorf("read %s of %s: %w", name, gitsha.Short(sha), err)
	}
	return out, nil
}

// treeEntry is one line of `git ls-tree -l`.
type treeEntry struct {
	mode, kind, oid string
	size            int64
}

// parseTreeEntry reads `git ls-tree -l -z` output of one path: empty when
// the path is not in the tree.
func parseTreeEntry(out []byte) (treeEntry, error) {
	line := strings.TrimRight(string(out), "\x00")
	if line == "" {
		return treeEntry{}, nil
	}
	meta, _, ok := strings.Cut(line, "\t")
	f := strings.Fields(meta)
	if !ok || len(f) != 4 {
		return treeEntry{}, fmt.Errorf("unexpected git ls-tree output %q", line)
	}
	e := treeEntry{mode: f[0], kind: f[1], oid: f[2], size: -1}
	if f[3] != "-" {
		n, err := strconv.ParseInt(f[3], 10, 64)
		if err != nil {
			return treeEntry{}, fmt.Errorf("unexpected git ls-tree size %q", f[3])
		}
		e.size = n
	}
	return e, nil
}

// readable refuses what glenv does not read as a repository file: no
// regular file (a directory, a symlink, a submodule), or one over
// MaxRepoFile.
func (e treeEntry) readable(name string) error {
	if e.kind != "blob" || (e.mode != "100644" && e.mode != "100755") {
		what := map[string]string{"120000": "a symlink", "040000": "a directory", "160000": "a submodule"}[e.mode]
		if what == "" {
			what = "not a regular file (mode " + e.mode + ")"
		}
		return repoFileError(name, fmt.Sprintf("is %s; glenv reads only a regular file: commit the file itself", what))
	}
	if e.size > MaxRepoFile {
		return repoFileError(name, fmt.Sprintf("is %d bytes, over the %d KiB glenv reads from a repository; keep it under %d KiB", e.size, MaxRepoFile>>10, MaxRepoFile>>10))
	}
	return nil
}

func repoFileError(name, problem string) error {
	if name == ConfigFile {
		return &ConfigError{Problems: []string{problem}}
	}
	return fmt.Errorf("%s %s", name, problem)
}

func (r *Runtime) treeOf(ctx context.Context, repo, sha string) (string, error) {
	out, err := r.git(ctx, repo, "", "rev-parse", sha+"^{tree}")
	return strings.TrimSpace(string(out)), err
}

// checkout writes the commit's tree into dir (which must not exist yet)
// through a private index, so concurrent checkouts never share state.
func (r *Runtime) checkout(ctx context.Context, repo, sha, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	index := dir + ".index"
	defer os.Remove(index)
	cmd := func(args ...string) error {
		c := exec.CommandContext(ctx, r.gitBin, append([]string{"--git-dir=" + repo, "--work-tree=" + dir}, args...)...)
		c.Env = []string{"PATH=" + r.sb.path, "GIT_INDEX_FILE=" + index, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "HOME=" + dir}
		if out, err := c.CombinedOutput(); err != nil {
			return fmt.Errorf("check out %s: git %s: %w: %s", gitsha.Short(sha), args[0], err, out)
		}
		return nil
	}
	if err := cmd("read-tree", sha); err != nil {
		return err
	}
	return cmd("checkout-index", "--all", "--force")
}

// changedPaths lists the files that differ between two fetched commits.
func (r *Runtime) changedPaths(ctx context.Context, repo, from, to string) ([]string, error) {
	out, err := r.git(ctx, repo, "", "diff", "--name-only", "--no-renames", from, to)
	if err != nil {
		return nil, err
	}
	var files []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l != "" {
			files = append(files, l)
		}
	}
	return files, nil
}

// touches reports whether any changed file falls under the paths filter:
// a path is a directory prefix (web/ or web), a file, or a glob (*.go,
// web/**/x matches with path.Match on every prefix).
func touches(changed, paths []string) bool {
	for _, f := range changed {
		for _, p := range paths {
			p = strings.TrimPrefix(p, "./")
			dir := strings.TrimSuffix(p, "/")
			if f == dir || strings.HasPrefix(f, dir+"/") {
				return true
			}
			if ok, _ := path.Match(p, f); ok {
				return true
			}
			// A glob without a slash matches a base name anywhere (*.md).
			if !strings.Contains(p, "/") {
				if ok, _ := path.Match(p, path.Base(f)); ok {
					return true
				}
			}
			for i := strings.IndexByte(f, '/'); i > 0; i = nextSlash(f, i) {
				if ok, _ := path.Match(dir, f[:i]); ok {
					return true
				}
			}
		}
	}
	return false
}

func nextSlash(s string, i int) int {
	j := strings.IndexByte(s[i+1:], '/')
	if j < 0 {
		return -1
	}
	return i + 1 + j
}

// redact removes a secret from text that may be logged.
func redact(text, secret string) string {
	if secret == "" {
		return text
	}
	text = strings.ReplaceAll(text, secret, "[REDACTED]")
	return strings.ReplaceAll(text, base64.StdEncoding.EncodeToString([]byte("oauth2:"+secret)), "[REDACTED]")
}

// fetchSource is the deploy's first stage: the commit, fetched over smart
// HTTP with the integration's token into the project's cache repository.
func (r *Runtime) fetchSource(ctx context.Context, d *deploy) error {
	in := d.req.Integration
	url := repoURL(in.BaseURL, in.ProjectPath)
	repo, pack, err := r.fetch(ctx, in.ProjectID, url, d.req.Token, d.req.SHA, func(s string) { d.logf("%s", strings.TrimSuffix(s, "\n")) })
	if err != nil {
		return err
	}
	d.repo, d.pack = repo, pack
	return nil
}

// checkoutOf writes the commit's tree into dir: from the pack it was just
// fetched in when there is one, else with git.
func (r *Runtime) checkoutOf(ctx context.Context, pack *packView, repo, sha, dir string) error {
	if pack == nil || pack.sha != sha {
		return r.checkout(ctx, repo, sha, dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	err := pack.checkoutTree(ctx, pack.root, dir)
	if errors.Is(err, errConverts) {
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
		return r.checkout(ctx, repo, sha, dir)
	}
	if err != nil {
		return fmt.Errorf("check out %s: %w", gitsha.Short(sha), err)
	}
	return nil
}
