package runtime

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"github.com/glenv/glenv/internal/limits"
)

// DefaultDiskReserve is the free space glenv keeps on its own filesystem
// (--disk-reserve): its database and job queue need room to write, or
// every webhook fails.
const DefaultDiskReserve = 1 << 30

// CheckFree returns an error saying so when the filesystem holding dir has
// less than reserve bytes free (for /readyz and the disk watchdog).
func CheckFree(dir string, reserve int64) error {
	free, err := freeSpace(dir)
	if err != nil {
		return err
	}
	if free < reserve {
		return fmt.Errorf("only %s free on the data dir's filesystem, less than the reserve of %s (--disk-reserve); free some space", limits.FormatSize(free), limits.FormatSize(reserve))
	}
	return nil
}

func freeSpace(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("measure the free space of %s: %w", dir, err)
	}
	return int64(st.Bavail) * st.Bsize, nil
}

// dirUsage is what the files under dir occupy on disk (allocated blocks,
// so sparse files count for what they use). Symlinks are not followed.
func dirUsage(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // vanished or unreadable: the next round sees it
		}
		if fi, err := d.Info(); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				n += st.Blocks * 512
			}
		}
		return nil
	})
	return n
}

// envDisk is one environment's use of the disk right now.
type envDisk struct {
	uid      int
	bytes    int64
	limit    int64
	launches []*launch
}

// diskUse measures the writable directories of every command running now,
// by environment (uid): its data, and while it builds its checkout and
// home. Each directory counts once per environment.
func (sb *sandbox) diskUse() []*envDisk {
	by := map[int]*envDisk{}
	seen := map[string]bool{}
	sb.active.Range(func(k, _ any) bool {
		l := k.(*launch)
		u := by[l.j.uid]
		if u == nil {
			u = &envDisk{uid: l.j.uid, limit: l.lim.Disk}
			by[l.j.uid] = u
		}
		u.launches = append(u.launches, l)
		dirs := []string{l.j.dataDir, l.j.home}
		if l.j.appWritable {
			dirs = append(dirs, l.j.appDir)
		}
		for _, d := range dirs {
			key := fmt.Sprint(l.j.uid, d)
			if d == "" || seen[key] {
				continue
			}
			seen[key] = true
			u.bytes += dirUsage(d)
		}
		return true
	})
	out := make([]*envDisk, 0, len(by))
	for _, u := range by {
		out = append(out, u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].bytes > out[j].bytes })
	return out
}

// diskVerdict decides which environments to stop: those over their own
// limit, and when glenv's filesystem is under its reserve, the one using
// the most as well. Pure: use is sorted by bytes, largest first.
func diskVerdict(use []*envDisk, free, reserve int64) map[int]string {
	stop := map[int]string{}
	for _, u := range use {
		if u.limit > 0 && u.bytes > u.limit {
			stop[u.uid] = fmt.Sprintf("glenv stopped it: its disk holds %s, over its limit of %s (limits.disk in .glenv.yml); delete what it does not need to keep, or raise limits.disk",
				limits.FormatSize(u.bytes), limits.FormatSize(u.limit))
		}
	}
	if free < reserve && len(use) > 0 && use[0].bytes > 0 {
		if _, already := stop[use[0].uid]; !already {
			stop[use[0].uid] = fmt.Sprintf("glenv stopped it: its own disk has only %s free, under the reserve of %s that keeps glenv working, and this environment uses the most (%s)",
				limits.FormatSize(free), limits.FormatSize(reserve), limits.FormatSize(use[0].bytes))
		}
	}
	return stop
}

// watchDisk measures every interval until ctx ends, stopping the
// environments diskVerdict names: a command stopped this way fails with
// the reason, and an app is not started again until its next deploy.
func (r *Runtime) watchDisk(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		use := r.sb.diskUse()
		free, err := freeSpace(r.dir)
		if err != nil {
			free = r.opts.DiskReserve // unknown: judge by the limits alone
		}
		for uid, why := range diskVerdict(use, free, r.opts.DiskReserve) {
			for _, u := range use {
				if u.uid != uid {
					continue
				}
				r.log.Warn("stopping an environment over its disk", "uid", uid, "bytes", u.bytes, "why", why)
				for _, l := range u.launches {
					l.stop(why)
				}
			}
		}
	}
}
