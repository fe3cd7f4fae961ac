package kube

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// copyScriptIn is the copy Job's script with its mount points moved under
// dir, run here by the system's sh (dash on Debian: no pipefail).
func copyScriptIn(t *testing.T, dir string) (string, error) {
	t.Helper()
	script := strings.NewReplacer("/from", filepath.Join(dir, "from"), "/to", filepath.Join(dir, "to"), "/tmp", filepath.Join(dir, "tmp")).Replace(copyScript)
	out, err := exec.Command("sh", "-c", script).CombinedOutput()
	return string(out), err
}

// The copy is attacked with links out of the parent's volume: a link to a
// secret file and one to a directory outside. The copy must store the
// links as links and read nothing through them, and keep every mode.
func TestCopyScriptKeepsModesAndNeverFollowsALinkOut(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"from/dir", "to", "tmp", "outside/secrets"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(rel string, mode os.FileMode, body string) {
		p := filepath.Join(dir, rel)
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	write("from/a.txt", 0o640, "a")
	write("from/dir/b.sh", 0o750, "b")
	write("outside/secrets/key", 0o600, "SECRET-KEY")
	if err := os.Chmod(filepath.Join(dir, "from/dir"), 0o710); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "outside/secrets/key"), filepath.Join(dir, "from/key-link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "outside/secrets"), filepath.Join(dir, "from/dir-link")); err != nil {
		t.Fatal(err)
	}
	if out, err := copyScriptIn(t, dir); err != nil {
		t.Fatalf("copy: %v\n%s", err, out)
	}
	modes := map[string]os.FileMode{"a.txt": 0o640, "dir": fs.ModeDir | 0o710, "dir/b.sh": 0o750}
	for rel, want := range modes {
		fi, err := os.Lstat(filepath.Join(dir, "to", rel))
		if err != nil || fi.Mode() != want {
			t.Errorf("to/%s: %v %v, want mode %v", rel, fi.Mode(), err, want)
		}
	}
	for _, link := range []string{"key-link", "dir-link"} {
		fi, err := os.Lstat(filepath.Join(dir, "to", link))
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			t.Errorf("to/%s: %v %v, want a symlink, not what it points at", link, fi, err)
		}
	}
	err := filepath.WalkDir(filepath.Join(dir, "to"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink != 0 || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err == nil && strings.Contains(string(b), "SECRET-KEY") {
			t.Errorf("%s holds the secret from outside the volume", p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A source tar cannot read fails the copy though the pipe's last command
// succeeds: dash has no pipefail, so the script must see it itself. Run as
// root, the test drops to nobody (setpriv) as the Job runs non-root; a
// directory only root may read stands for a file the copy cannot read.
func TestCopyScriptFailsWhenTarCannotReadTheSource(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make a directory nobody may read and to drop to nobody")
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Fatalf("setpriv (util-linux) not found: %v", err)
	}
	dir, err := os.MkdirTemp("", "glenv-copyscript")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"from/private", "to", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "from/private/x"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, "from/private"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"to", "tmp"} {
		if err := os.Chown(filepath.Join(dir, d), 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	script := strings.NewReplacer("/from", filepath.Join(dir, "from"), "/to", filepath.Join(dir, "to"), "/tmp", filepath.Join(dir, "tmp")).Replace(copyScript)
	out, err := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c", script).CombinedOutput()
	if err == nil {
		t.Fatalf("a copy that could not read from/private succeeded:\n%s", out)
	}
	t.Logf("the copy failed as it must: %v\n%s", err, out)
}
