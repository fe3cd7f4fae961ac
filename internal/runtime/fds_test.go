package runtime_test

import (
	"net/url"
	"os"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/glenv/glenv/internal/runtime"
)

// A descriptor glenv inherited without close-on-exec (a supervisor's, a
// harness's) does not reach the app: the app's command starts without it.
func TestAnAppGetsNoDescriptorGlenvInherited(t *testing.T) {
	t.Parallel()
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// F_DUPFD (not F_DUPFD_CLOEXEC): inheritable, as an inherited one is,
	// at a number no other descriptor of the test takes.
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD, 400)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)

	w := newWorld(t, runtime.Options{})
	requireSandbox(t, w.rt)
	env := w.env(98, "mr-98", "mr")
	w.pushProbe(t, env, "", nil)
	cmd := "grep -cx " + strconv.Itoa(fd) + " $GLENV_DATA_DIR/fds || true"
	if got := w.probe(t, env, "/sh?cmd="+url.QueryEscape(cmd)); got != "exit 0\n0\n" {
		t.Fatalf("the app's command started with glenv's inherited descriptor %d: %q", fd, got)
	}
}
