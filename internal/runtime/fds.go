package runtime

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// closeInheritedOnExec marks every descriptor above stderr close-on-exec.
// Go opens its own descriptors so, but one glenv inherited from whatever
// started it (a shell's, a supervisor's, a CI harness's: one was seen at
// fd 251 here) is passed on to every child, and bwrap passes it on into
// the sandbox: an app would hold a file or socket of the host. Marking
// them is harmless to glenv's own children: what os/exec hands a child
// (stdio, ExtraFiles) is dup'ed into place, which clears the mark.
// close_range(2) with CLOSE_RANGE_CLOEXEC does it in one call (Linux 5.11);
// older kernels get each descriptor of /proc/self/fd marked.
func closeInheritedOnExec() error {
	if err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err == nil {
		return nil
	}
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return fmt.Errorf("mark inherited descriptors close-on-exec: %w", err)
	}
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd < 3 {
			continue
		}
		// The directory's own descriptor is gone by now: EBADF is fine.
		_, _ = unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC)
	}
	return nil
}
