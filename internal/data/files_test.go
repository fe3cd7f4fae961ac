package data

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCloneDirCopiesTheTreeAsItIs(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	files := map[string]string{"a.txt": "alpha", "dir/b.bin": strings.Repeat("b", 1<<20), "dir/deep/c": "", "dir/ro.txt": "read only"}
	for name, content := range files {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o640); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(src, "dir/ro.txt"), 0o444); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../a.txt", filepath.Join(src, "dir/link")); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "dst")
	st, err := CloneDir(context.Background(), src, dst)
	if err != nil {
		t.Fatal(err)
	}
	if st.Files != 4 || st.Bytes != int64(5+1<<20+9) {
		t.Fatalf("stats %+v", st)
	}
	for name, content := range files {
		b, err := os.ReadFile(filepath.Join(dst, name))
		if err != nil || string(b) != content {
			t.Fatalf("%s: %v (%d bytes)", name, err, len(b))
		}
		fi, _ := os.Stat(filepath.Join(dst, name))
		if !fi.ModTime().Equal(old) {
			t.Errorf("%s: mtime %s, want %s", name, fi.ModTime(), old)
		}
	}
	if fi, _ := os.Stat(filepath.Join(dst, "dir/ro.txt")); fi.Mode().Perm() != 0o444 {
		t.Errorf("mode %v, want 0444", fi.Mode().Perm())
	}
	if l, err := os.Readlink(filepath.Join(dst, "dir/link")); err != nil || l != "../a.txt" {
		t.Errorf("symlink %q %v", l, err)
	}
	if _, err := CloneDir(context.Background(), src, dst); err == nil {
		t.Error("cloning onto an existing directory must fail")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	gone := filepath.Join(t.TempDir(), "cancelled")
	if _, err := CloneDir(ctx, src, gone); err == nil {
		t.Error("a cancelled clone must fail")
	}
	if _, err := os.Stat(gone); !os.IsNotExist(err) {
		t.Error("a failed clone must leave nothing behind")
	}
}
