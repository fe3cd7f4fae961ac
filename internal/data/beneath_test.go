package data

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// outside is a tree that stands for the host's files: glenv must neither
// copy it into an environment nor create or chown anything in it.
func outside(t *testing.T) (dir, secret string) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "host")
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	secret = filepath.Join(dir, "shadow")
	if err := os.WriteFile(secret, []byte("host secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, secret
}

func owner(t *testing.T, p string) (int, int) {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return int(st.Uid), int(st.Gid)
}

// noHostContent fails when any regular file below dir holds the secret.
func noHostContent(t *testing.T, dir string) {
	t.Helper()
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if b, _ := os.ReadFile(p); strings.Contains(string(b), "host secret") {
				t.Errorf("%s holds the host's file", p)
			}
		}
		return nil
	})
}

func TestCloneNeverFollowsTheParentsSymlinksOutOfItsTree(t *testing.T) {
	host, secret := outside(t)
	parent := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(filepath.Join(parent, "files", "uploads", "real"), 0o755); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{"uploads/shadow": secret, "uploads/hostdir": host, "uploads/real/up": "../.."} {
		if err := os.Symlink(target, filepath.Join(parent, "files", link)); err != nil {
			t.Fatal(err)
		}
	}
	dst := filepath.Join(t.TempDir(), "child")
	if _, err := CloneDirBeneath(t.Context(), parent, "files/uploads", dst); err != nil {
		t.Fatal(err)
	}
	for link, want := range map[string]string{"shadow": secret, "hostdir": host, "real/up": "../.."} {
		if got, err := os.Readlink(filepath.Join(dst, link)); err != nil || got != want {
			t.Errorf("%s: copied as %q %v, want the symlink %q itself", link, got, err, want)
		}
	}
	noHostContent(t, dst)

	t.Run("a symlink on the way to the directory is refused", func(t *testing.T) {
		if err := os.Rename(filepath.Join(parent, "files"), filepath.Join(parent, "moved")); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(parent, "moved"), filepath.Join(parent, "files")); err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(t.TempDir(), "child")
		if _, err := CloneDirBeneath(t.Context(), parent, "files/uploads", dst); !errors.Is(err, ErrLink) {
			t.Fatalf("want ErrLink, got %v", err)
		}
		if _, err := os.Lstat(dst); !os.IsNotExist(err) {
			t.Fatal("a refused clone left a destination behind")
		}
	})
}

func TestCloneOfATreeWhoseOwnerSwapsDirectoriesForSymlinksCopiesNothingOfTheHost(t *testing.T) {
	host, _ := outside(t)
	parent := filepath.Join(t.TempDir(), "data")
	const pairs = 40
	for i := range pairs {
		d := filepath.Join(parent, "files", "d"+string(rune('a'+i%26))+string(rune('a'+i/26)))
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "shadow"), []byte("own data"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The running app: swap each directory for a symlink to the host and
	// back, as fast as it can, while glenv clones.
	ctx, stop := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		entries, _ := os.ReadDir(filepath.Join(parent, "files"))
		for ctx.Err() == nil {
			for _, e := range entries {
				p := filepath.Join(parent, "files", e.Name())
				_ = os.Rename(p, p+".away")
				_ = os.Symlink(host, p)
				_ = os.Remove(p)
				_ = os.Rename(p+".away", p)
			}
		}
	}()
	for i := range 20 {
		dst := filepath.Join(t.TempDir(), "child")
		if _, err := CloneDirBeneath(ctx, parent, "files", dst); err != nil && !strings.Contains(err.Error(), "kept changing") {
			t.Errorf("clone %d: %v", i, err)
		}
		noHostContent(t, dst)
	}
	stop()
	wg.Wait()
}

func TestEnsureDirsCreatesNothingThroughASymlink(t *testing.T) {
	host, _ := outside(t)
	data := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(host, filepath.Join(data, "files")); err != nil {
		t.Fatal(err)
	}
	uid := -1
	if os.Geteuid() == 0 {
		uid = 4242
	}
	err := EnsureDirs(data, uid, uid, "home", "files/uploads")
	if !errors.Is(err, ErrLink) || !strings.Contains(err.Error(), "files") {
		t.Fatalf("want ErrLink naming files, got %v", err)
	}
	if _, err := os.Lstat(filepath.Join(host, "uploads")); !os.IsNotExist(err) {
		t.Fatal("glenv created a directory through the symlink")
	}
	if fi, err := os.Stat(filepath.Join(data, "home")); err != nil || !fi.IsDir() {
		t.Fatalf("home was not made: %v", err)
	}
	if uid >= 0 {
		if got, _ := owner(t, filepath.Join(data, "home")); got != uid {
			t.Fatalf("home belongs to %d, want %d", got, uid)
		}
		if got, _ := owner(t, host); got != 0 {
			t.Fatalf("the host's directory now belongs to %d", got)
		}
	}
	if err := os.Remove(filepath.Join(data, "files")); err != nil {
		t.Fatal(err)
	}
	if err := EnsureDirs(data, uid, uid, "files/uploads", "files/uploads"); err != nil {
		t.Fatal(err)
	}
}

func TestChownTreeChownsSymlinksNotTheirTargets(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown to another uid needs root")
	}
	host, secret := outside(t)
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(filepath.Join(dir, "a", "b"), 0o700); err != nil {
		t.Fatal(err)
	}
	_ = os.Symlink(secret, filepath.Join(dir, "a", "shadow"))
	_ = os.Symlink(host, filepath.Join(dir, "a", "b", "host"))
	if err := ChownTree(dir, 4243, 4243); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, filepath.Join(dir, "a", "b"), filepath.Join(dir, "a", "shadow"), filepath.Join(dir, "a", "b", "host")} {
		if u, _ := owner(t, p); u != 4243 {
			t.Errorf("%s belongs to %d", p, u)
		}
	}
	for _, p := range []string{host, secret, filepath.Join(host, "sub")} {
		if u, _ := owner(t, p); u != 0 {
			t.Errorf("the host's %s now belongs to %d", p, u)
		}
	}
}

func TestTheStepwiseFallbackRefusesSymlinksToo(t *testing.T) {
	host, _ := outside(t)
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "files", "uploads"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(host, filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	r, err := openRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for rel, ok := range map[string]bool{"files/uploads": true, "link": false, "link/sub": false, "files/../link": false} {
		fd, err := openDirStepwise(int(r.Fd()), rel)
		if (err == nil) != ok {
			t.Errorf("%s: opened %v, want %v (%v)", rel, err == nil, ok, err)
		}
		if err == nil {
			syscall.Close(fd)
		}
	}
}
