package replica

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestLockSQLite(t *testing.T) {
	db := filepath.Join(t.TempDir(), "glenv.db")
	t.Run("a second lock on the same SQLite file is refused with a message saying to use PostgreSQL", func(t *testing.T) {
		unlock, err := LockSQLite(db)
		if err != nil {
			t.Fatal(err)
		}
		defer unlock()
		_, err = LockSQLite(db)
		if !errors.Is(err, ErrSQLiteInUse) {
			t.Fatalf("second lock: got %v, want ErrSQLiteInUse", err)
		}
		for _, want := range []string{"single-replica", "PostgreSQL", "pid"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("message %q does not say %q", err, want)
			}
		}
	})
	t.Run("the lock is free again once its holder lets go", func(t *testing.T) {
		unlock, err := LockSQLite(db)
		if err != nil {
			t.Fatal(err)
		}
		unlock()
	})
	t.Run("a holder killed with SIGKILL leaves no lock behind", func(t *testing.T) {
		// flock(1) holds the lock in another process, which is then killed.
		if _, err := exec.LookPath("flock"); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatal("flock(1) (util-linux) is missing")
			}
			t.Skip("flock(1) (util-linux) is missing")
		}
		cmd := exec.Command("flock", "-o", "-x", db+".serve-lock", "sh", "-c", "echo locked; exec sleep 60")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its sleep dies with it
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 7)
		if _, err := out.Read(buf); err != nil { // "locked": the holder has it
			t.Fatal(err)
		}
		if _, err := LockSQLite(db); !errors.Is(err, ErrSQLiteInUse) {
			t.Fatalf("while another process holds it: got %v", err)
		}
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
		unlock, err := LockSQLite(db)
		if err != nil {
			t.Fatalf("after the holder was killed: %v", err)
		}
		unlock()
	})
}
