package runtime_test

import (
	"context"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/glenv/glenv/internal/runtime"
)

// unprivilegedTests are the isolation probes run again with glenv as an
// ordinary user: files, the network namespace, capabilities, and how
// limits are enforced without cgroups of its own.
var unprivilegedTests = []string{
	"TestSandboxedBuildsCannotReadGlenvOrOtherEnvironments",
	"TestAnEnvironmentReachesItsDatabaseAndNothingElseOnTheHost",
	"TestAnEnvironmentHasNoCapabilitiesAndWritableHomeTmpAndRun",
	"TestWithoutCgroupsTheLimitsHeldPerProcessAreSaidSo",
	"TestPastaJoinsTheNetworkNamespaceOwnerHoweverLateGlenvLooks",
}

// glenv also runs as an ordinary user: bubblewrap then makes a user
// namespace, pasta joins it, and no cgroup can be made. This runs this
// package's own test binary as nobody (uid 65534) for the probes above and
// requires each to pass, not skip. As a Debian host's udev does,
// /dev/net/tun is made usable by everyone, here in a mount namespace of the
// test's own so the machine is left as it is.
func TestTheSandboxHoldsWhenGlenvIsNotRoot(t *testing.T) {
	if os.Getenv("GLENV_TEST_UNPRIVILEGED") != "" {
		t.Skip("this is the unprivileged run itself")
	}
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("this test switches to an unprivileged user and needs root, as CI has")
		}
		t.Skip("needs root to switch to an unprivileged user")
	}
	t.Parallel()
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	if err := os.Mkdir(home, 0o755); err != nil {
		t.Fatal(err)
	}
	// t.TempDir is root's alone; nobody needs to pass through it.
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(home, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	// The running test binary lives where nobody may not look.
	bin := filepath.Join(dir, "runtime.test")
	copyFile(t, os.Args[0], bin)
	devDir := filepath.Join(dir, "dev")
	if err := os.Mkdir(devDir, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 8*time.Minute)
	defer cancel()
	script := `mount -t tmpfs -o mode=0755 glenv-test "$0" && mknod -m 0666 "$0/tun" c 10 200 && mount --bind "$0/tun" /dev/net/tun && ` +
		`exec setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all -- "$@"`
	cmd := exec.CommandContext(ctx, "unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script, devDir,
		bin, "-test.run", "^("+strings.Join(unprivilegedTests, "|")+")$", "-test.v", "-test.count=1", "-test.timeout=7m")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "TMPDIR=" + home, "CI=true", "GLENV_TEST_UNPRIVILEGED=1", "LANG=C.UTF-8"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the isolation probes run as nobody failed: %v\n%s", err, out)
	}
	for _, name := range unprivilegedTests {
		if !strings.Contains(string(out), "--- PASS: "+name+" ") {
			t.Errorf("%s did not pass as nobody (skipped or not run):\n%s", name, out)
		}
	}
}

// Without cgroups (glenv as an ordinary user without a delegated cgroup)
// memory and processes are held per process by rlimits and CPU not at all:
// every deploy's log says so, rather than dropping the limits silently.
func TestWithoutCgroupsTheLimitsHeldPerProcessAreSaidSo(t *testing.T) {
	t.Parallel()
	dbAddr, _ := listen(t)
	w := newWorld(t, runtime.Options{Databases: fakeDatabases{addr: dbAddr}})
	requireSandbox(t, w.rt)
	if runtime.HasCgroups(w.rt) {
		t.Skip("glenv makes cgroups here; TestTheSandboxHoldsWhenGlenvIsNotRoot runs this test as nobody, without them")
	}
	env := w.env(98, "mr-98", "mr")
	logs, err := w.deployFiles(t, env, probeFiles(t, env.Name, "limits:\n  memory: 256M\n  processes: 64\n"))
	if err != nil {
		t.Fatalf("deploy: %v\n%s", err, logs)
	}
	if !strings.Contains(logs, "warning: limits: memory 256M and processes 64 per process only (prlimit): cgroups are not usable here") ||
		!strings.Contains(logs, "cpu is not limited") {
		t.Fatalf("the deploy log does not say how the limits are held:\n%s", logs)
	}
	// And they are held: a process of the app cannot take 512M.
	got := w.probe(t, env, "/sh?cmd="+url.QueryEscape(`python3 -c "b = bytearray(512 << 20); print('allocated')"; echo status $?`))
	if strings.Contains(got, "allocated") {
		t.Fatalf("a process took 512M under a limit of 256M:\n%s", got)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}
