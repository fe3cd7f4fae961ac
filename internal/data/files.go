// Package data clones an environment's data from its parent: directories
// (services.files) with reflinks where the filesystem has them, else a
// parallel copy in the kernel (copy_file_range), and PostgreSQL databases
// (services.postgresql) from a template, else through pg_dump | pg_restore.
// It never reads or writes anything outside the directories and databases
// it is given: below a directory an app may change, it follows no symlink
// (see beneath.go). It also runs and supervises the services PostgreSQL
// when glenv runs its own.
package data

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Stats describe one directory clone.
type Stats struct {
	Files     int64
	Bytes     int64
	Reflinked int64 // files cloned by reflink (shared blocks, no copy)
	Skipped   int64 // sockets, devices and FIFOs, which are not copied
}

func (s Stats) String() string {
	how := "copied"
	if s.Reflinked > 0 && s.Reflinked == s.Files {
		how = "reflinked"
	} else if s.Reflinked > 0 {
		how = fmt.Sprintf("%d reflinked", s.Reflinked)
	}
	return fmt.Sprintf("%d files, %.1f MB %s", s.Files, float64(s.Bytes)/1e6, how)
}

// CloneDir copies the tree at src to dst (which must not exist), keeping
// modes, times, symlinks and, when run as root, owners. Files are
// reflinked where the filesystem supports it and copied in the kernel
// otherwise, several at a time. The path up to src must be glenv's; below
// it see CloneDirBeneath.
func CloneDir(ctx context.Context, src, dst string) (Stats, error) {
	return CloneDirBeneath(ctx, filepath.Dir(src), filepath.Base(src), dst)
}

// CloneDirBeneath copies the tree at root/rel to dst like CloneDir, where
// everything below root may belong to a running app that changes it
// meanwhile (the parent environment's data). No symlink below root is ever
// followed: rel is opened with openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS),
// every entry through its directory's descriptor with O_NOFOLLOW, and a
// file's type is taken from the descriptor it is copied from. Symlinks are
// copied as symlinks. dst must be private to the caller until it returns.
func CloneDirBeneath(ctx context.Context, root, rel, dst string) (Stats, error) {
	var st Stats
	src := filepath.Join(root, rel)
	if _, err := os.Lstat(dst); err == nil {
		return st, fmt.Errorf("clone %s: destination %s exists", src, dst)
	}
	r, err := openRoot(root)
	if err != nil {
		return st, fmt.Errorf("clone %s: %w", src, err)
	}
	top, err := openDirBeneath(r, rel)
	r.Close()
	if err != nil {
		return st, fmt.Errorf("clone %s: %w", src, err)
	}
	defer top.Close()
	c := &cloner{ctx: ctx, root: os.Geteuid() == 0, st: &st}
	c.reflink.Store(true)
	files := make(chan fileCopy, 64)
	var wg sync.WaitGroup
	workers := max(4, 2*runtime.NumCPU())
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for f := range files {
				if c.failed.Load() || ctx.Err() != nil {
					f.in.Close()
					continue
				}
				if err := c.copyFile(f); err != nil {
					c.fail(err)
				}
			}
		}()
	}
	var info unix.Stat_t
	walkErr := unix.Fstat(int(top.Fd()), &info)
	if walkErr == nil {
		walkErr = os.Mkdir(dst, os.FileMode(info.Mode&0o777)|0o700)
	}
	if walkErr == nil {
		c.dirs = append(c.dirs, dirTimes{dst, info})
		walkErr = c.walk(top, dst, files)
	}
	close(files)
	wg.Wait()
	if walkErr == nil || errors.Is(walkErr, errStop) {
		walkErr = c.firstErr
	}
	if walkErr == nil {
		walkErr = ctx.Err()
	}
	if walkErr != nil {
		_ = os.RemoveAll(dst)
		return st, fmt.Errorf("clone %s to %s: %w", src, dst, walkErr)
	}
	// Directory times last: creating entries inside changed them.
	for i := len(c.dirs) - 1; i >= 0; i-- {
		d := c.dirs[i]
		_ = os.Chmod(d.path, os.FileMode(d.info.Mode&0o777))
		c.owner(d.path, d.info, 0)
		mtime := time.Unix(d.info.Mtim.Unix())
		_ = os.Chtimes(d.path, mtime, mtime)
	}
	return st, nil
}

type fileCopy struct {
	in   *os.File
	info unix.Stat_t
	dst  string
}

type dirTimes struct {
	path string
	info unix.Stat_t
}

// walk copies the entries of the directory open at d into dst.
func (c *cloner) walk(d *os.File, dst string, files chan<- fileCopy) error {
	names, err := d.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("read %s: %w", d.Name(), err)
	}
	for _, name := range names {
		if err := c.ctx.Err(); err != nil {
			return err
		}
		if c.failed.Load() {
			return errStop
		}
		if err := c.entry(d, name, filepath.Join(dst, name), files); err != nil {
			return err
		}
	}
	return nil
}

// entry copies one entry. Its type comes from what opening it with
// O_NOFOLLOW yields; an entry the app swaps meanwhile is looked at again,
// one that disappears is not copied.
func (c *cloner) entry(d *os.File, name, target string, files chan<- fileCopy) error {
	dirfd := int(d.Fd())
	for range 8 {
		var info unix.Stat_t
		if err := unix.Fstatat(dirfd, name, &info, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if errors.Is(err, unix.ENOENT) {
				return nil
			}
			return &os.PathError{Op: "stat", Path: filepath.Join(d.Name(), name), Err: err}
		}
		switch info.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if retry(err) {
				continue
			} else if errors.Is(err, unix.ENOENT) {
				return nil
			} else if err != nil {
				return &os.PathError{Op: "open", Path: filepath.Join(d.Name(), name), Err: err}
			}
			sub := os.NewFile(uintptr(fd), filepath.Join(d.Name(), name))
			defer sub.Close()
			if err := unix.Fstat(fd, &info); err != nil {
				return err
			}
			if err := os.Mkdir(target, os.FileMode(info.Mode&0o777)|0o700); err != nil {
				return err
			}
			c.dirs = append(c.dirs, dirTimes{target, info})
			return c.walk(sub, target, files)
		case unix.S_IFLNK:
			link, err := readlinkat(dirfd, name)
			if retry(err) {
				continue
			} else if errors.Is(err, unix.ENOENT) {
				return nil
			} else if err != nil {
				return &os.PathError{Op: "readlink", Path: filepath.Join(d.Name(), name), Err: err}
			}
			if err := os.Symlink(link, target); err != nil {
				return err
			}
			c.owner(target, info, unix.AT_SYMLINK_NOFOLLOW)
			return nil
		case unix.S_IFREG:
			// O_NONBLOCK and O_NOCTTY: should the entry have become a FIFO or
			// a device, opening it neither blocks nor takes a terminal.
			fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
			if retry(err) {
				continue
			} else if errors.Is(err, unix.ENOENT) {
				return nil
			} else if err != nil {
				return &os.PathError{Op: "open", Path: filepath.Join(d.Name(), name), Err: err}
			}
			if err := unix.Fstat(fd, &info); err != nil || info.Mode&unix.S_IFMT != unix.S_IFREG {
				unix.Close(fd)
				continue
			}
			files <- fileCopy{in: os.NewFile(uintptr(fd), filepath.Join(d.Name(), name)), info: info, dst: target}
			return nil
		default:
			atomic.AddInt64(&c.st.Skipped, 1)
			return nil
		}
	}
	return fmt.Errorf("%s kept changing while it was copied", filepath.Join(d.Name(), name))
}

// retry reports an entry that changed type between its stat and its open.
func retry(err error) bool {
	return errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.EINVAL)
}

func readlinkat(dirfd int, name string) (string, error) {
	for n := 256; ; n *= 2 {
		buf := make([]byte, n)
		m, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return "", err
		}
		if m < n {
			return string(buf[:m]), nil
		}
	}
}

var errStop = errors.New("stopped after a copy failed")

type cloner struct {
	ctx     context.Context
	root    bool
	st      *Stats
	reflink atomic.Bool // false once the filesystem said it cannot
	dirs    []dirTimes  // walk's goroutine only

	errOnce  sync.Once
	firstErr error
	failed   atomic.Bool
}

func (c *cloner) fail(err error) {
	c.errOnce.Do(func() { c.firstErr = err; c.failed.Store(true) })
}

// owner gives path (private to the clone) the owner of the original, when
// glenv is root.
func (c *cloner) owner(path string, info unix.Stat_t, flags int) {
	if c.root {
		_ = unix.Fchownat(unix.AT_FDCWD, path, int(info.Uid), int(info.Gid), flags)
	}
}

func (c *cloner) copyFile(f fileCopy) error {
	in := f.in
	defer in.Close()
	perm := os.FileMode(f.info.Mode & 0o777)
	out, err := os.OpenFile(f.dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm|0o200)
	if err != nil {
		return err
	}
	size := f.info.Size
	reflinked := false
	if c.reflink.Load() && size > 0 {
		if err := unix.IoctlFileClone(int(out.Fd()), int(in.Fd())); err == nil {
			reflinked = true
		} else if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EXDEV) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOTTY) {
			c.reflink.Store(false)
		}
	}
	if !reflinked {
		// *os.File to *os.File uses copy_file_range: no copy through user space.
		n, err := io.Copy(out, in)
		if err != nil {
			out.Close()
			return err
		}
		size = n
	}
	if perm&0o200 == 0 {
		_ = out.Chmod(perm)
	}
	if c.root {
		_ = out.Chown(int(f.info.Uid), int(f.info.Gid))
	}
	if err := out.Close(); err != nil {
		return err
	}
	mtime := time.Unix(f.info.Mtim.Unix())
	_ = os.Chtimes(f.dst, mtime, mtime)
	atomic.AddInt64(&c.st.Files, 1)
	atomic.AddInt64(&c.st.Bytes, size)
	if reflinked {
		atomic.AddInt64(&c.st.Reflinked, 1)
	}
	return nil
}
