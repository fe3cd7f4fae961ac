package data

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// An environment's data directory is written by its app (as its own uid)
// while glenv, often root, works on it. Anything the app controls may be
// swapped for a symlink at any moment, so glenv never passes a path below
// such a directory to the kernel: it opens the directory once, then walks
// with file descriptors, refusing symlinks (openat2 with
// RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS, O_NOFOLLOW, AT_SYMLINK_NOFOLLOW).

// ErrLink is returned when a path glenv expects to be a directory of the
// environment is a symlink (or no directory at all): glenv does not follow
// it.
var ErrLink = errors.New("is a symlink or not a directory; glenv does not follow links in an environment's data")

// openRoot opens dir itself, refusing a symlink as its last component.
// The components above dir must not be controlled by anyone but glenv.
func openRoot(dir string) (*os.File, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
			return nil, fmt.Errorf("%s %w", dir, ErrLink)
		}
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	return os.NewFile(uintptr(fd), dir), nil
}

// openDirBeneath opens rel (slash-separated, no "..") below the directory
// open at root, as a directory, following no symlink on the way.
func openDirBeneath(root *os.File, rel string) (*os.File, error) {
	how := unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
	}
	var fd int
	var err error
	// openat2 answers EAGAIN when a rename raced the lookup: try again.
	for range 100 {
		fd, err = unix.Openat2(int(root.Fd()), rel, &how)
		if !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) {
		// No openat2 here (an old kernel, or a seccomp filter that
		// answers EPERM for it).
		fd, err = openDirStepwise(int(root.Fd()), rel)
	}
	name := filepath.Join(root.Name(), rel)
	switch {
	case err == nil:
		return os.NewFile(uintptr(fd), name), nil
	case errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.EXDEV):
		return nil, fmt.Errorf("%s %w", name, ErrLink)
	default:
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
}

// openDirStepwise is openDirBeneath without openat2 (kernels before 5.6):
// one component at a time with O_NOFOLLOW, which refuses symlinks just
// the same.
func openDirStepwise(dirfd int, rel string) (int, error) {
	cur := -1
	for _, part := range strings.Split(rel, "/") {
		if part == "" || part == "." || part == ".." {
			if cur >= 0 {
				unix.Close(cur)
			}
			return -1, unix.EINVAL
		}
		from := dirfd
		if cur >= 0 {
			from = cur
		}
		next, err := unix.Openat(from, part, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if cur >= 0 {
			unix.Close(cur)
		}
		if err != nil {
			return -1, err
		}
		cur = next
	}
	return cur, nil
}

// EnsureDirs makes each directory of rels (slash-separated paths relative
// to root, e.g. "files/uploads") exist, creating missing ones 0700. A
// directory it creates is given to uid:gid when uid >= 0; existing ones
// are left as they are. It follows no symlink below root and fails with
// ErrLink where one stands in the way, so an app that swaps a directory
// for a symlink cannot make glenv create or chown anything elsewhere.
func EnsureDirs(root string, uid, gid int, rels ...string) error {
	r, err := openRoot(root)
	if err != nil {
		return err
	}
	defer r.Close()
	for _, rel := range rels {
		parts := strings.Split(rel, "/")
		for i := range parts {
			if err := ensureDir(r, strings.Join(parts[:i+1], "/"), uid, gid); err != nil {
				return err
			}
		}
	}
	return nil
}

func ensureDir(root *os.File, rel string, uid, gid int) error {
	d, err := openDirBeneath(root, rel)
	if err == nil {
		return d.Close()
	}
	var pe *os.PathError
	if !errors.As(err, &pe) || !errors.Is(pe.Err, unix.ENOENT) {
		return err
	}
	parent, name := ".", rel
	if i := strings.LastIndexByte(rel, '/'); i >= 0 {
		parent, name = rel[:i], rel[i+1:]
	}
	var p *os.File
	if parent == "." {
		// Dup so that closing p below leaves root open.
		fd, err := unix.Dup(int(root.Fd()))
		if err != nil {
			return err
		}
		unix.CloseOnExec(fd)
		p = os.NewFile(uintptr(fd), root.Name())
	} else if p, err = openDirBeneath(root, parent); err != nil {
		return err
	}
	defer p.Close()
	if err := unix.Mkdirat(int(p.Fd()), name, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
		return &os.PathError{Op: "mkdir", Path: filepath.Join(root.Name(), rel), Err: err}
	}
	// Open what is there now (the app may have swapped it meanwhile) and
	// chown through the descriptor: never a path.
	d, err = openDirBeneath(root, rel)
	if err != nil {
		return err
	}
	defer d.Close()
	if uid >= 0 {
		if err := unix.Fchown(int(d.Fd()), uid, gid); err != nil {
			return &os.PathError{Op: "chown", Path: d.Name(), Err: err}
		}
	}
	return nil
}

// ChownTree gives dir and everything below it to uid:gid without
// following a symlink: symlinks themselves are chowned, never their
// targets, and directories are entered through descriptors opened with
// O_NOFOLLOW.
func ChownTree(dir string, uid, gid int) error {
	r, err := openRoot(dir)
	if err != nil {
		return err
	}
	defer r.Close()
	if err := unix.Fchown(int(r.Fd()), uid, gid); err != nil {
		return &os.PathError{Op: "chown", Path: dir, Err: err}
	}
	return chownBelow(r, uid, gid)
}

func chownBelow(d *os.File, uid, gid int) error {
	names, err := d.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("read %s: %w", d.Name(), err)
	}
	for _, name := range names {
		// Open first and chown the descriptor: whatever is at name now is
		// what gets chowned and entered, never a symlink's target.
		fd, err := unix.Openat(int(d.Fd()), name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
			if err := unix.Fchownat(int(d.Fd()), name, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil && !errors.Is(err, unix.ENOENT) {
				return &os.PathError{Op: "chown", Path: filepath.Join(d.Name(), name), Err: err}
			}
			continue
		}
		if errors.Is(err, unix.ENOENT) {
			continue
		}
		if err != nil {
			return &os.PathError{Op: "open", Path: filepath.Join(d.Name(), name), Err: err}
		}
		sub := os.NewFile(uintptr(fd), filepath.Join(d.Name(), name))
		err = unix.Fchown(fd, uid, gid)
		if err == nil {
			err = chownBelow(sub, uid, gid)
		}
		sub.Close()
		if err != nil {
			return err
		}
	}
	return nil
}
