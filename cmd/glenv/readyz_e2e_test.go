package main_test

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// A full disk turns every webhook into an error: /readyz says not ready
// while the data dir's filesystem has less free than --disk-reserve.
func TestReadyzIsNotReadyBelowTheDiskReserve(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	cmd := exec.Command(bin, "serve", "--listen", addr, "--data-dir", t.TempDir(), "--runtime", "record",
		"--disk-reserve", "1000000T")
	cmd.Env = append(os.Environ(), "GLENV_ADMIN_TOKEN="+adminToken)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusServiceUnavailable && strings.Contains(string(b), "less than the reserve of 1000000T (--disk-reserve)") {
				return
			}
			if resp.StatusCode == http.StatusOK {
				t.Fatalf("/readyz says ready with a reserve larger than any disk")
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz never said the disk is under its reserve:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
