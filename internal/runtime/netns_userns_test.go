package runtime

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// As an ordinary user, bwrap (for --dev) maps root in a first user
// namespace, sets up the mounts, then nests a second one to map the real
// uid back; the network namespace belongs to the first. pasta must join
// the first however late glenv looks: a glenv slowed down by load used to
// open /proc/PID/ns/user after the nesting, and pasta failed with
// "Couldn't switch to pasta namespaces". This attaches only once the
// nesting is done, which the old code failed every time.
func TestPastaJoinsTheNetworkNamespaceOwnerHoweverLateGlenvLooks(t *testing.T) {
	if os.Getenv("GLENV_TEST_UNPRIVILEGED") == "" {
		t.Skip("runs as nobody from TestTheSandboxHoldsWhenGlenvIsNotRoot")
	}
	bwrap, err1 := exec.LookPath("bwrap")
	pasta, err2 := exec.LookPath("pasta")
	if err1 != nil || err2 != nil {
		t.Fatalf("needs bubblewrap and pasta: %v %v", err1, err2)
	}
	infoR, infoW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	blockR, blockW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer blockW.Close()
	cmd := exec.Command(bwrap, "--die-with-parent", "--unshare-user", "--unshare-net", "--unshare-pid",
		"--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--info-fd", "3", "--block-fd", "4", "true")
	cmd.ExtraFiles = []*os.File{infoW, blockR}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	infoW.Close()
	blockR.Close()
	var info struct {
		ChildPid int `json:"child-pid"`
	}
	_ = infoR.SetReadDeadline(time.Now().Add(30 * time.Second))
	if err := json.NewDecoder(infoR).Decode(&info); err != nil {
		t.Fatalf("bwrap said no pid: %v", err)
	}
	pid := strconv.Itoa(info.ChildPid)
	// Wait for the nesting: the process's user namespace is no longer the
	// one that owns its network namespace.
	deadline := time.Now().Add(30 * time.Second)
	for {
		netns, err := os.Open("/proc/" + pid + "/ns/net")
		if err != nil {
			t.Fatal(err)
		}
		owner, err := ownerUserns(netns)
		netns.Close()
		if err != nil {
			t.Fatal(err)
		}
		var own, cur unix.Stat_t
		_ = unix.Fstat(int(owner.Fd()), &own)
		owner.Close()
		if err := unix.Stat("/proc/"+pid+"/ns/user", &cur); err != nil {
			t.Fatal(err)
		}
		if own.Ino != cur.Ino {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("bwrap never nested a second user namespace: this test no longer reproduces the race")
		}
		time.Sleep(time.Millisecond)
	}
	n := &network{pasta: pasta, runDir: t.TempDir()}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	stop, err := n.attach(ctx, info.ChildPid, 0, nil)
	if err != nil {
		t.Fatalf("pasta could not join the sandbox after its setup: %v", err)
	}
	stop()
}
