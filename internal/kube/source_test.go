package kube_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/glenv/glenv/internal/gitlabtest"
	"github.com/glenv/glenv/internal/kube"
)

func TestSourceServesTheExactTreeAndKeepsTheTokenOffDisk(t *testing.T) {
	gl := gitlabtest.New(t)
	t.Cleanup(gl.RemoveRepos)
	dev := gl.AddUser(gitlabtest.User{Username: "glenv-bot"})
	p := gl.AddProject(gitlabtest.Project{PathWithNamespace: "group/app", Members: map[int64]int{dev.ID: 40}})
	token := gl.AddToken(gitlabtest.Token{UserID: dev.ID, Scopes: []string{"api"}})
	hs := httptest.NewServer(gl.GitHandler())
	t.Cleanup(hs.Close)
	sha1 := gl.Commit(t, p.ID, gitlabtest.Commit{Branch: "main", Files: map[string]string{".glenv.yml": "run: x\nhealth: /\n", "a.txt": "one\n"}})
	sha2 := gl.Commit(t, p.ID, gitlabtest.Commit{Branch: "main", Files: map[string]string{"a.txt": "two\n"}})

	dir := t.TempDir()
	src := &kube.Source{Dir: dir}
	ctx := t.Context()
	url := hs.URL + "/group/app.git"
	if err := src.Archive(ctx, p.ID, sha1, io.Discard); !errors.Is(err, kube.ErrNotFetched) {
		t.Fatalf("archive of a commit never fetched: %v, want ErrNotFetched", err)
	}
	if err := src.Fetch(ctx, p.ID, url, "wrong-token", sha1); err == nil || strings.Contains(err.Error(), "wrong-token") {
		t.Fatalf("fetch with a bad token: %v; want an error that does not show the token", err)
	}
	for _, sha := range []string{sha1, sha2} {
		if err := src.Fetch(ctx, p.ID, url, token, sha); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := src.Archive(ctx, p.ID, sha1, &buf); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		files[h.Name] = string(b)
	}
	if files["a.txt"] != "one\n" || files[".glenv.yml"] == "" {
		t.Fatalf("tree of %s holds %v, want a.txt = one and .glenv.yml", sha1, files)
	}
	if _, err := src.ReadFile(ctx, p.ID, sha2, "missing.txt"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	if err := src.Fetch(ctx, p.ID, url, token, "--upload-pack=touch /tmp/x"); err == nil {
		t.Fatal("a SHA that is an option was accepted")
	}
	_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, _ := os.ReadFile(path); bytes.Contains(b, []byte(token)) {
				t.Errorf("the token is on disk in %s", path)
			}
		}
		return nil
	})
}

// A burst of deploys of one new commit: every one that Fetch lets through
// reads the commit's files, although a fetch writes a small pack's objects
// one by one (the commit before its tree) while the others look.
func TestABurstOfFetchesOfOneCommitAllReadItsFiles(t *testing.T) {
	gl := gitlabtest.New(t)
	t.Cleanup(gl.RemoveRepos)
	dev := gl.AddUser(gitlabtest.User{Username: "glenv-bot"})
	p := gl.AddProject(gitlabtest.Project{PathWithNamespace: "group/app", Members: map[int64]int{dev.ID: 40}})
	token := gl.AddToken(gitlabtest.Token{UserID: dev.ID, Scopes: []string{"api"}})
	hs := httptest.NewServer(gl.GitHandler())
	t.Cleanup(hs.Close)
	files := map[string]string{".glenv.yml": "run: x\nhealth: /\n"}
	for i := range 40 {
		files[fmt.Sprintf("f%d.txt", i)] = strings.Repeat("x", i)
	}
	sha := gl.Commit(t, p.ID, gitlabtest.Commit{Branch: "main", Files: files})
	src := &kube.Source{Dir: t.TempDir()}
	errs := make(chan error, 30)
	var wg sync.WaitGroup
	for range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := src.Fetch(t.Context(), p.ID, hs.URL+"/group/app.git", token, sha); err != nil {
				errs <- err
				return
			}
			if _, err := src.ReadFile(t.Context(), p.ID, sha, ".glenv.yml"); err != nil {
				errs <- fmt.Errorf("read .glenv.yml after Fetch returned: %w", err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
