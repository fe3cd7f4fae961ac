package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/idxfile"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/filesystem/dotgit"
)

// A pack fetched in process is kept in the cache repository as git's own
// fetch keeps it: objects/pack/pack-<sum>.pack with its .idx (version 2),
// the commits the history was cut at in shallow, and the commit named
// refs/glenv/<sha>. git (maintenance, diff) reads the repository as
// before. The pack also stays open for the rest of the deploy: the
// commit's tree, its .glenv.yml and its checkout are read from it with no
// git process.

// packView is one pack of a cache repository, open for reading.
type packView struct {
	pf *packfile.Packfile
	// sha is the commit fetched, root its tree.
	sha  string
	root plumbing.Hash
}

// storePack writes the pack data into repo and opens it.
func storePack(repo string, data io.Reader) (*packView, error) {
	fs := osfs.New(repo)
	w, err := dotgit.New(fs).NewObjectPack()
	if err != nil {
		return nil, err
	}
	var sum plumbing.Hash
	var idx *idxfile.MemoryIndex
	w.Notify = func(h plumbing.Hash, iw *idxfile.Writer) {
		sum = h
		idx, _ = iw.Index()
	}
	if _, err := io.Copy(w, data); err != nil {
		_ = w.Close()
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	if idx == nil {
		return nil, errors.New("the server sent an empty or broken pack")
	}
	f, err := fs.Open(filepath.Join("objects", "pack", "pack-"+sum.String()+".pack"))
	if err != nil {
		return nil, err
	}
	return &packView{pf: packfile.NewPackfile(idx, fs, f, 0)}, nil
}

func (v *packView) close() {
	if v != nil {
		_ = v.pf.Close()
	}
}

func (v *packView) commit(sha string) (*object.Commit, error) {
	o, err := v.pf.Get(plumbing.NewHash(sha))
	if err != nil {
		return nil, fmt.Errorf("commit %s is not in the pack the server sent: %w", sha, err)
	}
	var c object.Commit
	if err := c.Decode(o); err != nil {
		return nil, err
	}
	return &c, nil
}

func (v *packView) tree(h plumbing.Hash) (*object.Tree, error) {
	o, err := v.pf.Get(h)
	if err != nil {
		return nil, err
	}
	var t object.Tree
	if err := t.Decode(o); err != nil {
		return nil, err
	}
	return &t, nil
}

// rootFile reads a regular file of the tree's top level, with the rules
// of readFile: os.ErrNotExist when there is none, refused when it is not
// a regular file or larger than MaxRepoFile.
func (v *packView) rootFile(t *object.Tree, name string) ([]byte, error) {
	for _, e := range t.Entries {
		if e.Name != name {
			continue
		}
		te := treeEntry{mode: fmt.Sprintf("%06o", uint32(e.Mode)), kind: "blob", oid: e.Hash.String(), size: -1}
		if e.Mode == filemode.Dir {
			te.kind = "tree"
		}
		var o plumbing.EncodedObject
		if te.kind == "blob" && (e.Mode == filemode.Regular || e.Mode == filemode.Executable) {
			var err error
			if o, err = v.pf.Get(e.Hash); err != nil {
				return nil, err
			}
			te.size = o.Size()
		}
		if err := te.readable(name); err != nil {
			return nil, err
		}
		rd, err := o.Reader()
		if err != nil {
			return nil, err
		}
		defer rd.Close()
		return io.ReadAll(io.LimitReader(rd, MaxRepoFile+1))
	}
	return nil, os.ErrNotExist
}

// checkoutTree writes tree into dir, which must exist and be empty, as git
// checkout-index would: files 0666 and 0777 less the umask, symlinks as
// symlinks, submodules as empty directories. Everything goes through an
// os.Root on dir, so no entry (a symlink the tree made, a name like ..)
// can make it write outside.
func (v *packView) checkoutTree(ctx context.Context, tree plumbing.Hash, dir string) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	return v.writeTree(ctx, root, tree, "")
}

func (v *packView) writeTree(ctx context.Context, root *os.Root, h plumbing.Hash, prefix string) error {
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx)
	}
	t, err := v.tree(h)
	if err != nil {
		return fmt.Errorf("tree %s: %w", prefix, err)
	}
	for _, e := range t.Entries {
		if !safeEntryName(e.Name) {
			return fmt.Errorf("the commit's tree holds an entry named %q under %q, which git itself refuses to check out", e.Name, prefix)
		}
		p := prefix + e.Name
		switch e.Mode {
		case filemode.Dir:
			if err := root.Mkdir(p, 0o777); err != nil {
				return err
			}
			if err := v.writeTree(ctx, root, e.Hash, p+"/"); err != nil {
				return err
			}
		case filemode.Regular, filemode.Deprecated, filemode.Executable:
			if e.Name == ".gitattributes" {
				if err := v.plainAttributes(e.Hash, p); err != nil {
					return err
				}
			}
			perm := os.FileMode(0o666)
			if e.Mode == filemode.Executable {
				perm = 0o777
			}
			if err := v.writeBlob(root, e.Hash, p, perm); err != nil {
				return err
			}
		case filemode.Symlink:
			target, err := v.blob(e.Hash)
			if err != nil {
				return err
			}
			if err := root.Symlink(string(target), p); err != nil {
				return err
			}
		case filemode.Submodule:
			if err := root.Mkdir(p, 0o777); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s has mode %o, which git does not check out", p, uint32(e.Mode))
		}
	}
	return nil
}

func (v *packView) writeBlob(root *os.Root, h plumbing.Hash, p string, perm os.FileMode) error {
	o, err := v.pf.Get(h)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	rd, err := o.Reader()
	if err != nil {
		return err
	}
	defer rd.Close()
	f, err := root.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, rd); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (v *packView) blob(h plumbing.Hash) ([]byte, error) {
	o, err := v.pf.Get(h)
	if err != nil {
		return nil, err
	}
	rd, err := o.Reader()
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	return io.ReadAll(io.LimitReader(rd, 4096))
}

// errConverts is a tree whose .gitattributes ask git to change content on
// checkout (line endings, encodings, $Id$): it is checked out by git.
var errConverts = errors.New("the tree's .gitattributes convert content on checkout")

// plainAttributes refuses a .gitattributes that may make git's checkout
// differ from the blobs (convert.c: eol, crlf, working-tree-encoding,
// ident). Filters need configuration glenv's git never has, so git writes
// their blobs as they are too.
func (v *packView) plainAttributes(h plumbing.Hash, p string) error {
	o, err := v.pf.Get(h)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	rd, err := o.Reader()
	if err != nil {
		return err
	}
	defer rd.Close()
	b, err := io.ReadAll(io.LimitReader(rd, 1<<20))
	if err != nil {
		return err
	}
	text := strings.ToLower(string(b))
	if int64(len(b)) < o.Size() || strings.Contains(text, "eol") || strings.Contains(text, "crlf") ||
		strings.Contains(text, "encoding") || strings.Contains(text, "ident") {
		return errConverts
	}
	return nil
}

// safeEntryName is git's verify_path for one path component (read-cache.c):
// not empty, no slash, not . or .., and not .git in any case.
func safeEntryName(n string) bool {
	return n != "" && n != "." && n != ".." && !strings.ContainsAny(n, "/\x00") && !strings.EqualFold(n, ".git")
}

// addShallow records commits whose parents the repository lacks, under
// git's own lock (shallow.lock), so that git's upkeep never looks for them.
func addShallow(ctx context.Context, repo string, shas []string) error {
	if len(shas) == 0 {
		return nil
	}
	path := filepath.Join(repo, "shallow")
	return underLock(ctx, path, func() ([]byte, error) {
		old, err := os.ReadFile(path)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		lines := strings.Fields(string(old))
		for _, s := range shas {
			if isHex(s) && !slices.Contains(lines, s) {
				lines = append(lines, s)
			}
		}
		slices.Sort(lines)
		return []byte(strings.Join(lines, "\n") + "\n"), nil
	})
}

// setRef names sha refs/glenv/<sha>, the mark fetched looks for.
func setRef(ctx context.Context, repo, sha string) error {
	path := filepath.Join(repo, "refs", "glenv", sha)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return underLock(ctx, path, func() ([]byte, error) { return []byte(sha + "\n"), nil })
}

// underLock replaces path by content() as git does: through path.lock,
// made exclusively (git's lockfile.c), and renamed into place. A lock git
// holds is waited for, briefly.
func underLock(ctx context.Context, path string, content func() ([]byte, error)) error {
	lock := path + ".lock"
	deadline := time.Now().Add(5 * time.Second)
	for {
		f, err := os.OpenFile(lock, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err == nil {
			b, err := content()
			if err == nil {
				_, err = io.Copy(f, bytes.NewReader(b))
			}
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err == nil {
				err = os.Rename(lock, path)
			}
			if err != nil {
				_ = os.Remove(lock)
			}
			return err
		}
		if !errors.Is(err, os.ErrExist) || time.Now().After(deadline) {
			return fmt.Errorf("lock %s: %w (remove it if no git process runs on the repository)", lock, err)
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(10 * time.Millisecond):
		}
	}
}
