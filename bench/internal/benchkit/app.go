package benchkit

import (
	"net"
	"net/http"
	"os/exec"
	"slices"
	"strconv"
	"syscall"
	"time"
)

// StartDirect runs the example app's `run` command (python's http.server)
// in dir as a plain child process, and returns how long it took to answer
// its health path: the baseline a deploy or a wake is compared with.
func (t *TB) StartDirect(dir string) time.Duration {
	port := t.FreePort()
	start := time.Now()
	cmd := exec.Command("/bin/sh", "-c", "python3 -m http.server $PORT --bind 127.0.0.1")
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "PORT=" + strconv.Itoa(port)}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	t.Must(cmd.Start())
	url := "http://127.0.0.1:" + strconv.Itoa(port) + "/"
	// Probed every 5 ms, as glenv probes a starting app: the baseline is
	// then the app's start, not the probe's schedule.
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				break
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	d := time.Since(start)
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	cmd.Wait()
	return d
}

// FreePort is a TCP port free on 127.0.0.1 now.
func (t *TB) FreePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	t.Must(err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Median is the middle of ds, rounded to the millisecond.
func Median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2].Round(time.Millisecond)
}

// Verdict says whether a goal was met.
func Verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}
