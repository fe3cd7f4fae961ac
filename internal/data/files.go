// Package data clones an environment's data from its parent: directories
// (services.files) with reflinks where the filesystem has them, else a
// parallel copy in the kernel (copy_file_range), and PostgreSQL databases
// (services.postgresql) from a template, else through pg_dump | pg_restore.
// It never reads or writes anything outside the directories and databases
// it is given.
package data

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"

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
// otherwise, several at a time.
func CloneDir(ctx context.Context, src, dst string) (Stats, error) {
	var st Stats
	if _, err := os.Lstat(dst); err == nil {
		return st, fmt.Errorf("clone %s: destination %s exists", src, dst)
	}
	c := &cloner{ctx: ctx, root: os.Geteuid() == 0}
	c.reflink.Store(true)
	files := make(chan [2]string, 256)
	var wg sync.WaitGroup
	workers := max(4, 2*runtime.NumCPU())
	var firstErr error
	var errOnce sync.Once
	var failed atomic.Bool
	fail := func(err error) { errOnce.Do(func() { firstErr = err; failed.Store(true) }) }
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for f := range files {
				if failed.Load() || ctx.Err() != nil {
					continue
				}
				if err := c.copyFile(f[0], f[1], &st); err != nil {
					fail(err)
				}
			}
		}()
	}
	type dirTimes struct {
		path string
		info fs.FileInfo
	}
	var dirs []dirTimes
	walkErr := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if failed.Load() {
			return errStop
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			if err := os.Mkdir(target, info.Mode().Perm()|0o700); err != nil {
				return err
			}
			dirs = append(dirs, dirTimes{target, info})
		case info.Mode()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := os.Symlink(link, target); err != nil {
				return err
			}
			c.owner(target, info, true)
		case info.Mode().IsRegular():
			files <- [2]string{p, target}
		default:
			atomic.AddInt64(&st.Skipped, 1)
		}
		return nil
	})
	close(files)
	wg.Wait()
	if walkErr == nil || errors.Is(walkErr, errStop) {
		walkErr = firstErr
	}
	if walkErr == nil {
		walkErr = ctx.Err()
	}
	if walkErr != nil {
		_ = os.RemoveAll(dst)
		return st, fmt.Errorf("clone %s to %s: %w", src, dst, walkErr)
	}
	// Directory times last: creating entries inside changed them.
	for i := len(dirs) - 1; i >= 0; i-- {
		d := dirs[i]
		_ = os.Chmod(d.path, d.info.Mode().Perm())
		c.owner(d.path, d.info, false)
		_ = os.Chtimes(d.path, d.info.ModTime(), d.info.ModTime())
	}
	return st, nil
}

var errStop = errors.New("stopped after a copy failed")

type cloner struct {
	ctx     context.Context
	root    bool
	reflink atomic.Bool // false once the filesystem said it cannot
}

func (c *cloner) owner(path string, info fs.FileInfo, link bool) {
	if !c.root {
		return
	}
	if s, ok := info.Sys().(*syscall.Stat_t); ok {
		if link {
			_ = os.Lchown(path, int(s.Uid), int(s.Gid))
		} else {
			_ = os.Chown(path, int(s.Uid), int(s.Gid))
		}
	}
}

func (c *cloner) copyFile(src, dst string, st *Stats) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	info, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, info.Mode().Perm()|0o200)
	if err != nil {
		return err
	}
	reflinked := false
	if c.reflink.Load() && info.Size() > 0 {
		if err := unix.IoctlFileClone(int(out.Fd()), int(in.Fd())); err == nil {
			reflinked = true
		} else if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EXDEV) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOTTY) {
			c.reflink.Store(false)
		}
	}
	if !reflinked {
		// *os.File to *os.File uses copy_file_range: no copy through user space.
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
	}
	if err := out.Close(); err != nil {
		return err
	}
	if info.Mode().Perm()&0o200 == 0 {
		_ = os.Chmod(dst, info.Mode().Perm())
	}
	c.owner(dst, info, false)
	_ = os.Chtimes(dst, info.ModTime(), info.ModTime())
	atomic.AddInt64(&st.Files, 1)
	atomic.AddInt64(&st.Bytes, info.Size())
	if reflinked {
		atomic.AddInt64(&st.Reflinked, 1)
	}
	return nil
}
