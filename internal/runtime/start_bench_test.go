package runtime

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

const benchRun = "python3 -m http.server $PORT --bind 127.0.0.1"

// BenchmarkAppStart is the health phase of a deploy: from starting the
// app's command until its health path answers, alone (a plain child, as
// bench/push's baseline) and in its sandbox as a deploy starts it (the
// namespace made ahead and connected, the environment's cgroup, bwrap,
// setpriv). Run as root with bubblewrap and pasta:
//
//	go test -run '^$' -bench AppStart -benchtime 20x ./internal/runtime/
func BenchmarkAppStart(b *testing.B) {
	dir := b.TempDir()
	app := filepath.Join(dir, "app")
	if err := os.Mkdir(app, 0o755); err != nil {
		b.Fatal(err)
	}
	b.Run("alone", func(b *testing.B) {
		ps := ports{inUse: map[int]bool{}}
		for b.Loop() {
			port, err := ps.take()
			if err != nil {
				b.Fatal(err)
			}
			cmd := exec.Command("/bin/sh", "-c", benchRun)
			cmd.Dir = app
			cmd.Env = []string{"PATH=" + defaultPath, "PORT=" + strconv.Itoa(port)}
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			p := &proc{port: port, done: make(chan struct{})}
			if err := waitHealthy(context.Background(), p, "/", 20*time.Second); err != nil {
				b.Fatal(err)
			}
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			_ = cmd.Wait()
			ps.free(port)
		}
	})
	b.Run("sandboxed", func(b *testing.B) {
		r, err := New(Options{Dir: filepath.Join(dir, "rt")})
		if err != nil {
			b.Fatal(err)
		}
		defer r.Close()
		if !r.sb.enabled() || r.sb.net == nil || !r.sb.asRoot {
			b.Skip("needs root, bubblewrap and pasta")
		}
		uid := r.sb.uidFor(1)
		data := filepath.Join(dir, "data")
		if err := os.MkdirAll(filepath.Join(data, "home"), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := r.sb.chown(data, uid); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			b.StopTimer()
			ahead := r.netAhead(context.Background(), b.Logf)
			ns, port := ahead.take()
			if err := ns.wait(); err != nil {
				b.Fatal(err)
			}
			out, err := newOutput(filepath.Join(dir, "app.log"))
			if err != nil {
				b.Fatal(err)
			}
			j := job{shell: benchRun, appDir: app, dataDir: data, uid: uid, port: port, net: ns,
				env: []string{"HOME=/data/home", "PORT=" + strconv.Itoa(port)}}
			b.StartTimer()
			p, err := start(r.sb.command(j), out, func(s string) string { return s })
			if err != nil {
				b.Fatal(err)
			}
			p.port = port
			if err := waitHealthy(context.Background(), p, "/", 20*time.Second); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			p.stop(0)
			ns.close()
			r.ports.free(port)
			b.StartTimer()
		}
	})
}
