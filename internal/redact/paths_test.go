package redact

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func TestHostPathsAreReplacedByTheirNames(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	p := NewPaths(map[string]string{link: "<data-dir>", filepath.Join(link, "secret.key"): "<secret-key-file>"})
	for _, tc := range []struct{ name, in, want string }{
		{"a path under the data dir keeps only its place in it", "open " + dir + "/runtime/envs/3/src/.glenv.yml: no such file", "open <data-dir>/runtime/envs/3/src/.glenv.yml: no such file"},
		{"the symlinked spelling is hidden too", "cd " + link + "/runtime: denied", "cd <data-dir>/runtime: denied"},
		{"a file inside the data dir keeps its own name", "read " + dir + "/secret.key: permission denied", "read <secret-key-file>: permission denied"},
		{"every occurrence is replaced", dir + " and " + dir, "<data-dir> and <data-dir>"},
		{"other text is left alone", "build failed: exit status 2", "build failed: exit status 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := p.Text(tc.in); got != tc.want {
				t.Fatalf("Text(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestARedactedErrorIsStillTheSameError(t *testing.T) {
	dir := t.TempDir()
	p := NewPaths(map[string]string{dir: "<data-dir>"})
	err := p.Error(fmt.Errorf("build in %s: %w", dir, context.Canceled))
	if err.Error() != "build in <data-dir>: context canceled" || !errors.Is(err, context.Canceled) {
		t.Fatalf("got %q (is canceled: %v)", err, errors.Is(err, context.Canceled))
	}
	if p.Error(nil) != nil {
		t.Fatal("nil became an error")
	}
}
