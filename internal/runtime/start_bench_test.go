package runtime

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"
)

const benchRun = "python3 -m http.server $PORT --bind 127.0.0.1"

// BenchmarkAppStart is the health phase of a deploy: from starting the
// app's command until its health path answers, alone (a plain child, as
// bench/push's baseline), in its sandbox as a deploy starts it (the
// namespace made ahead and connected, the environment's cgroup, bwrap,
// setpriv), and staged as a redeploy starts it (stage.go: the same sandbox
// set up while the commit is fetched, timed from its gate's opening). The
// three take turns in every iteration, so they see the same machine; each
// is reported as its median in ms. Run as root with bubblewrap and pasta:
//
//	go test -run '^$' -bench AppStart -benchtime 20x ./internal/runtime/
func BenchmarkAppStart(b *testing.B) {
	dir := b.TempDir()
	app := filepath.Join(dir, "app")
	data := filepath.Join(dir, "data")
	for _, d := range []string{app, filepath.Join(data, "home")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			b.Fatal(err)
		}
	}
	r, err := New(Options{Dir: filepath.Join(dir, "rt")})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	if !r.sb.enabled() || r.sb.net == nil || !r.sb.asRoot {
		b.Skip("needs root, bubblewrap and pasta")
	}
	uid := r.sb.uidFor(1)
	if err := r.sb.chown(data, uid); err != nil {
		b.Fatal(err)
	}
	healthy := func(p *proc) {
		if err := waitHealthy(context.Background(), p, "/", 20*time.Second); err != nil {
			b.Fatal(err)
		}
	}
	// sandboxed starts the app in a namespace made ahead, gated (staged) or
	// not, and returns how long it took from its start (or its gate's
	// opening) until healthy.
	sandboxed := func(gated bool) time.Duration {
		ns, port := r.netAhead(context.Background(), b.Logf).take()
		if err := ns.wait(); err != nil {
			b.Fatal(err)
		}
		defer func() { ns.close(); r.ports.free(port) }()
		out, err := newOutput(filepath.Join(dir, "app.log"))
		if err != nil {
			b.Fatal(err)
		}
		j := job{shell: benchRun, appDir: app, dataDir: data, uid: uid, port: port, net: ns, gated: gated,
			env: []string{"HOME=/data/home", "PORT=" + strconv.Itoa(port)}}
		t0 := time.Now()
		p, err := start(r.sb.command(j), out, func(s string) string { return s })
		if err != nil {
			b.Fatal(err)
		}
		defer p.stop(0)
		p.port = port
		if gated {
			if !p.cmd.waitSetUp(context.Background()) {
				b.Fatal("the staged sandbox was not set up")
			}
			t0 = time.Now()
			if err := p.cmd.open(context.Background()); err != nil {
				b.Fatal(err)
			}
		}
		healthy(p)
		return time.Since(t0)
	}
	alone := func() time.Duration {
		port, err := r.ports.take()
		if err != nil {
			b.Fatal(err)
		}
		defer r.ports.free(port)
		cmd := exec.Command("/bin/sh", "-c", benchRun)
		cmd.Dir = app
		cmd.Env = []string{"PATH=" + defaultPath, "PORT=" + strconv.Itoa(port)}
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		t0 := time.Now()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		healthy(&proc{port: port, done: make(chan struct{})})
		d := time.Since(t0)
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		return d
	}
	var a, s, g []time.Duration
	for b.Loop() {
		a = append(a, alone())
		s = append(s, sandboxed(false))
		g = append(g, sandboxed(true))
	}
	med := func(ds []time.Duration) float64 {
		slices.Sort(ds)
		return float64(ds[len(ds)/2]) / float64(time.Millisecond)
	}
	b.ReportMetric(med(a), "alone-ms")
	b.ReportMetric(med(s), "sandboxed-ms")
	b.ReportMetric(med(g), "staged-ms")
	b.ReportMetric(0, "ns/op")
}
